"""Stream registry: one encoder + in-memory .zvc per stream, owned by the key that made it.

A stream's bitstream is written by the same StreamWriter the CLI uses, onto a seekable
BytesIO, so close() patches total_frames/index_offset exactly as `zvc69 encode` does on a
file, and the bytes are identical. Frame requests on one stream run one at a time in
arrival order (asyncio lock for order, thread lock for the encoder itself, so a cancelled
request can never let two threads into one encoder); at most ``queue_limit`` wait.
"""

from __future__ import annotations

import asyncio
import enum
import io
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from zvc69_rt.service.limits import LimitExceeded

from zvc69_rt.bitstream import StreamWriter
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.errors import InputError, ZVC69FormatError
from zvc69_rt.frame import Frame


def _frame_view(buf: bytearray, width: int, height: int, pts: int) -> Frame:
    """A Frame whose planes are views into ``buf`` (exactly one raw YUV420P frame), without copying."""
    a = np.frombuffer(buf, dtype=np.uint8)
    ch, cw = Frame.chroma_shape(width, height)
    ys, cs = width * height, ch * cw
    return Frame(y=a[:ys].reshape(height, width), u=a[ys : ys + cs].reshape(ch, cw),
                 v=a[ys + cs : ys + 2 * cs].reshape(ch, cw), pts=pts)


class StreamState(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


class StreamNotFound(Exception):
    """No stream with this id for this key (other keys' streams are indistinguishable from none)."""


class StreamConflict(Exception):
    """The stream is not in a state for this request (closed, failed, or not yet closed)."""


class EncoderFailed(Exception):
    """The encoder raised; the stream is now failed. 422 for bad input, 500 for anything else."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass
class Stream:
    id: str
    owner: str
    config: EncoderConfig
    encoder: Any
    last_used: float
    state: StreamState = StreamState.OPEN
    error: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    queued: int = 0
    sink: io.BytesIO = field(default_factory=io.BytesIO)
    writer: StreamWriter | None = None
    order: asyncio.Lock = field(default_factory=asyncio.Lock)
    _encoder_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.writer = StreamWriter(self.sink, self.encoder.file_header())

    @property
    def pixels(self) -> int:
        return self.config.width * self.config.height

    @property
    def frame_bytes(self) -> int:
        return Frame.nbytes_for(self.config.width, self.config.height)

    @property
    def nbytes(self) -> int:
        return self.writer.pos

    def require(self, state: StreamState) -> None:
        if self.state is not state:
            if self.state is StreamState.FAILED:
                raise StreamConflict(f"stream {self.id} failed: {self.error}")
            want = {"open": "it is closed", "closed": "it is still open: POST /v1/streams/{id}/close first"}
            raise StreamConflict(f"stream {self.id}: " + want[state.value].replace("{id}", self.id))

    def _records_since(self, start: int) -> bytes:
        with self.sink.getbuffer() as view:
            return bytes(view[start : self.writer.pos])

    def _drain(self, on_frame: Callable[[int], None] | None) -> int:
        n = 0
        while (pkt := self.encoder.receive_packet()) is not None:
            self.writer.write_packet(pkt)
            n += 1
        self.frames_out += n
        if on_frame and n:
            on_frame(n)
        return n

    def encode_frames(self, body: bytes | bytearray | memoryview, on_frame: Callable[[int], None] | None = None
                      ) -> tuple[bytes, int]:
        """Encode whole raw frames (runs in a worker thread); returns (records ready, their count)."""
        fb = self.frame_bytes
        w, h = self.config.width, self.config.height
        view = memoryview(body)
        with self._encoder_lock:
            self.require(StreamState.OPEN)
            start = self.writer.pos
            out = 0
            try:
                n = len(view) // fb
                for i in range(n):
                    if n == 1 and isinstance(body, bytearray):  # the request's own buffer: no copy needed
                        frame = _frame_view(body, w, h, self.frames_in)
                    else:  # copies, so frames an encoder holds on to don't pin a whole multi-frame body
                        frame = Frame.from_bytes(view[i * fb : (i + 1) * fb], w, h, pts=self.frames_in)
                    self.encoder.send_frame(frame)
                    self.frames_in += 1
                    out += self._drain(on_frame)
            except Exception as exc:
                raise self._failed(f"encoder error at frame {self.frames_in}", exc) from exc
            return self._records_since(start), out

    def finish(self, on_frame: Callable[[int], None] | None = None) -> tuple[bytes, int]:
        """Flush the encoder, write index and trailer; returns the last records and their count."""
        with self._encoder_lock:
            self.require(StreamState.OPEN)
            start = self.writer.pos
            try:
                self.encoder.send_frame(None)
                out = self._drain(on_frame)
                records = self._records_since(start)
                self.writer.close()
            except Exception as exc:
                raise self._failed(f"encoder error while flushing after frame {self.frames_in}", exc) from exc
            self.state = StreamState.CLOSED
            self.encoder = None  # free the encoder's buffers; the bitstream stays until deleted
            return records, out

    def bitstream(self) -> bytes:
        self.require(StreamState.CLOSED)
        return self.sink.getvalue()

    def _failed(self, where: str, exc: Exception) -> EncoderFailed:
        self.fail(f"{where}: {type(exc).__name__}: {exc}")
        status = 422 if isinstance(exc, (InputError, ZVC69FormatError)) else 500
        return EncoderFailed(f"stream {self.id} failed: {self.error}", status)

    def fail(self, message: str) -> None:
        self.state = StreamState.FAILED
        self.error = message
        self.encoder = None

    def info(self) -> dict:
        return {"id": self.id, "state": self.state.value, "error": self.error, "width": self.config.width,
                "height": self.config.height, "frame_bytes": self.frame_bytes, "frames_in": self.frames_in,
                "frames_out": self.frames_out, "bitstream_bytes": self.nbytes}


class StreamRegistry:
    """Streams by id, with a cap on how many are held and expiry of idle ones."""

    def __init__(self, max_streams: int, idle_timeout_s: float, retry_after_s: int = 1,
                 clock: Callable[[], float] = time.monotonic):
        self.max_streams = max_streams
        self.idle_timeout_s = idle_timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._streams: dict[str, Stream] = {}
        self._pending = 0  # slots reserved by creations still building their encoder
        self.expired = 0

    def __len__(self) -> int:
        return len(self._streams)

    def reserve_slot(self) -> None:
        if len(self._streams) + self._pending >= self.max_streams:
            raise LimitExceeded(429, "max_streams",
                                f"server holds its limit of {self.max_streams} streams; close and delete one "
                                "or retry later", self.retry_after_s)
        self._pending += 1

    def release_slot(self) -> None:
        self._pending -= 1

    def add(self, owner: str, config: EncoderConfig, encoder: Any) -> Stream:
        """Register a stream in a slot reserved with reserve_slot()."""
        sid = secrets.token_urlsafe(16)
        stream = Stream(id=sid, owner=owner, config=config, encoder=encoder, last_used=self.clock())
        self._streams[sid] = stream
        return stream

    def get(self, sid: str, owner: str) -> Stream:
        s = self._streams.get(sid)
        if s is None or not secrets.compare_digest(s.owner, owner):
            raise StreamNotFound(f"no stream {sid[:64]!r} for this key (streams idle for {self.idle_timeout_s:g} s "
                                 "expire)")
        s.last_used = self.clock()
        return s

    def remove(self, sid: str) -> None:
        self._streams.pop(sid, None)

    def expire_idle(self) -> list[str]:
        """Drop streams untouched for idle_timeout_s with no request queued on them."""
        now = self.clock()
        dead = [sid for sid, s in self._streams.items() if s.queued == 0 and now - s.last_used > self.idle_timeout_s]
        for sid in dead:
            del self._streams[sid]
        self.expired += len(dead)
        return dead

    def clear(self) -> None:
        self._streams.clear()
