"""YUV4MPEG2 (Y4M) reader and writer: the raw-video interchange format of ffmpeg, x264, aomenc.

A Y4M stream is one ASCII header line ``YUV4MPEG2 W.. H.. F.. I.. A.. C.. X..`` followed by
frames, each ``FRAME[ params]\\n`` plus the raw planes. We read progressive 8-bit 4:2:0 only
(every other layout is refused with an ffmpeg command that converts it) and are strict:
header lines are length-bounded, the frame size is computed from W/H before any pixel is
read, and a truncated frame raises :class:`InputError` naming the frame (counted from 0).
The colour range comes from ``XCOLORRANGE=FULL|LIMITED`` (limited when absent); Y4M has no
matrix field, so the matrix follows :func:`zvc69_rt.io.color.default_matrix`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Self

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame, Matrix, Range
from zvc69_rt.io.color import default_matrix
from zvc69_rt.io.streams import Source, open_input, open_output, read_exact, remaining_bytes

MAGIC = b"YUV4MPEG2"
MAX_HEADER = 4096        # bytes in the stream header line, newline included
MAX_FRAME_HEADER = 1024  # bytes in one FRAME line
MAX_DIM = 16384          # largest width or height accepted
MAX_FPS_TERM = 1 << 31

# Y4M colour-space tags that are 8-bit 4:2:0 (they differ only in chroma siting).
C420 = ("420jpeg", "420mpeg2", "420paldv", "420")
_CONVERT = "convert it with: ffmpeg -i INPUT -pix_fmt yuv420p -f yuv4mpegpipe OUTPUT.y4m"


def _parse_ratio(tag: str, value: str) -> tuple[int, int]:
    num, sep, den = value.partition(":")
    if not sep or not num.isdigit() or not den.isdigit():
        raise InputError(f"Y4M header: {tag}{value!r} is not of the form {tag}N:D")
    return int(num), int(den)


class Y4MReader:
    """Iterate the frames of a Y4M stream (path, '-' for stdin, or a binary file object).

    Attributes: ``width``, ``height``, ``fps_num``, ``fps_den``, ``range``, ``matrix``,
    ``colorspace`` (the C tag), ``params`` (raw header tokens) and ``frame_count`` (known
    for seekable files whose FRAME lines carry no parameters, else None).
    """

    def __init__(self, source: Source, matrix: Matrix | None = None):
        self._f, self._own, self.name = open_input(source, "Y4M")
        try:
            self._parse_header(self._read_line(MAX_HEADER, "stream header", first=True))
        except BaseException:
            self.close()
            raise
        self.matrix: Matrix = matrix or default_matrix(self.width, self.height)
        self.frame_bytes = Frame.nbytes_for(self.width, self.height)
        self.frame_count: int | None = None
        left = remaining_bytes(self._f)
        if left is not None and left % (len(b"FRAME\n") + self.frame_bytes) == 0:
            self.frame_count = left // (len(b"FRAME\n") + self.frame_bytes)
        self._index = 0

    # -- header ------------------------------------------------------------------------
    def _read_line(self, limit: int, what: str, first: bool = False) -> bytes:
        """Read one '\\n'-terminated line of at most ``limit`` bytes ('' at clean end of input)."""
        f = self._f
        buf = bytearray()
        while True:
            c = f.read(1)
            if not c:
                if not buf and not first:
                    return b""
                if not buf:
                    raise InputError(f"{self.name}: empty input, no Y4M stream header")
                raise InputError(f"{self.name}: {what} is truncated (no newline after {bytes(buf[:40])!r})")
            if c == b"\n":
                return bytes(buf)
            buf += c
            if first and len(buf) == len(MAGIC) + 1 and not buf.startswith(MAGIC + b" "):
                raise InputError(
                    f"{self.name}: not a Y4M stream (starts with {bytes(buf)!r}, expected 'YUV4MPEG2 '); "
                    "raw .yuv needs --size WxH --fps N"
                )
            if len(buf) >= limit:
                raise InputError(f"{self.name}: {what} is longer than {limit} bytes without a newline")

    def _parse_header(self, line: bytes) -> None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise InputError(f"{self.name}: Y4M header contains non-ASCII bytes") from None
        tokens = text.split(" ")
        if tokens[0] != "YUV4MPEG2":
            raise InputError(f"{self.name}: not a Y4M stream (header starts with {tokens[0][:20]!r})")
        self.params: list[str] = [t for t in tokens[1:] if t]
        width = height = None
        fps = None
        colorspace = "420jpeg"  # the Y4M default when C is absent
        self.range: Range = "limited"
        for tok in self.params:
            tag, val = tok[0], tok[1:]
            if tag in "WH":
                if not val.isdigit() or not 1 <= int(val) <= MAX_DIM:
                    raise InputError(f"{self.name}: Y4M header {tag}{val!r} must be an integer in 1..{MAX_DIM}")
                if tag == "W":
                    width = int(val)
                else:
                    height = int(val)
            elif tag == "F":
                fps = _parse_ratio("F", val)
            elif tag == "I":
                if val not in ("p", "?"):
                    kind = {"t": "top field first", "b": "bottom field first", "m": "mixed"}.get(val, val)
                    raise InputError(
                        f"{self.name}: Y4M stream is interlaced (I{val}: {kind}); ZVC69 codes progressive "
                        "frames only: deinterlace first, e.g. ffmpeg -i INPUT -vf bwdif -pix_fmt yuv420p OUTPUT.y4m"
                    )
            elif tag == "A":
                _parse_ratio("A", val)
            elif tag == "C":
                colorspace = val
            elif tag == "X":
                key, _, v = val.partition("=")
                if key.upper() == "COLORRANGE":
                    if v.upper() == "FULL":
                        self.range = "full"
                    elif v.upper() == "LIMITED":
                        self.range = "limited"
                    else:
                        raise InputError(f"{self.name}: Y4M header XCOLORRANGE={v!r} is not FULL or LIMITED")
            # any other parameter is ignored, as the format asks
        if width is None or height is None:
            raise InputError(f"{self.name}: Y4M header lacks {'W' if width is None else 'H'} (frame size)")
        if fps is None:
            raise InputError(f"{self.name}: Y4M header lacks F (frame rate), e.g. F25:1 or F30000:1001")
        if not (1 <= fps[0] < MAX_FPS_TERM and 1 <= fps[1] < MAX_FPS_TERM):
            raise InputError(f"{self.name}: Y4M frame rate F{fps[0]}:{fps[1]} must have positive terms")
        if colorspace not in C420:
            raise InputError(
                f"{self.name}: Y4M colour space C{colorspace} is not supported (ZVC69 reads 8-bit 4:2:0 "
                f"only: C420jpeg, C420mpeg2, C420paldv); {_CONVERT}"
            )
        self.width, self.height = width, height
        self.fps_num, self.fps_den = fps
        self.colorspace = colorspace

    # -- frames --------------------------------------------------------------------------
    def read_frame(self) -> Frame | None:
        """Next frame, or None at the end of the stream."""
        n = self._index
        head = read_exact(self._f, 6)
        if not head:
            return None
        if head != b"FRAME\n":
            if len(head) < 6 and b"FRAME"[: len(head)] == head[:5]:
                raise InputError(f"{self.name}: frame {n} is truncated inside its FRAME marker")
            if head[:5] != b"FRAME" or head[5:6] != b" ":
                raise InputError(f"{self.name}: frame {n}: expected a 'FRAME' marker, found {head!r}")
            self._read_line(MAX_FRAME_HEADER, f"frame {n} FRAME line")  # frame params are ignored
        data = read_exact(self._f, self.frame_bytes)
        if len(data) != self.frame_bytes:
            raise InputError(
                f"{self.name}: frame {n} is truncated: {len(data)} of {self.frame_bytes} bytes "
                f"({self.width}x{self.height} YUV420P)"
            )
        frame = Frame.from_bytes(data, self.width, self.height, pts=n)
        frame.matrix, frame.range = self.matrix, self.range
        self._index += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read_frame()) is not None:
            yield frame

    def close(self) -> None:
        if self._own:
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Y4MWriter:
    """Write 8-bit 4:2:0 frames as progressive Y4M (C420jpeg), readable by ffmpeg/PyAV.

    ``sink`` is a path, '-' (stdout) or a binary file object (left open; only flushed).
    Full range is signalled with ``XCOLORRANGE=FULL``; frames must match the declared range.
    """

    def __init__(self, sink: Source, width: int, height: int, fps_num: int, fps_den: int = 1,
                 range: Range = "limited"):
        if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
            raise InputError(f"Y4M frame size {width}x{height} is outside 1..{MAX_DIM}")
        if not (1 <= fps_num < MAX_FPS_TERM and 1 <= fps_den < MAX_FPS_TERM):
            raise InputError(f"Y4M frame rate {fps_num}/{fps_den} must have positive terms")
        if range not in ("limited", "full"):
            raise InputError(f"Y4M colour range {range!r} is not 'limited' or 'full'")
        self.width, self.height, self.range = width, height, range
        self._f: BinaryIO
        self._f, self._own = open_output(sink, "Y4M")
        header = f"YUV4MPEG2 W{width} H{height} F{fps_num}:{fps_den} Ip A1:1 C420jpeg"
        if range == "full":
            header += " XCOLORRANGE=FULL"
        self._f.write(header.encode("ascii") + b"\n")
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        frame.validate()
        if (frame.width, frame.height) != (self.width, self.height):
            raise InputError(
                f"frame pts={frame.pts} is {frame.width}x{frame.height}, the Y4M stream is {self.width}x{self.height}"
            )
        if frame.range != self.range:
            raise InputError(
                f"frame pts={frame.pts} is {frame.range} range, the Y4M stream was opened as {self.range} range"
            )
        f = self._f
        f.write(b"FRAME\n")
        for plane in (frame.y, frame.u, frame.v):
            f.write(np.ascontiguousarray(plane).data)
        self.frames_written += 1

    def close(self) -> None:
        self._f.flush()
        if self._own:
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
