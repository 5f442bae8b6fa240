"""Streaming writer: frames go out as they are produced; index and trailer at close().

Works on pipes (``sys.stdout.buffer``): the header is written first with
``HAS_INDEX | HAS_TRAILER`` already set (close() always writes both), total_frames = 0 and
index_offset = 0. When the sink can seek, close() patches those two fields in place.
The trailer carries them too, so both kinds of output read the same.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Self

from zvc69_rt.bitstream.crc import crc32
from zvc69_rt.bitstream.frame_header import B_TYPES, FRAME_TYPE_NAMES, FrameHeader, FrameType
from zvc69_rt.bitstream.header import FileHeader, HeaderFlags
from zvc69_rt.bitstream.index import IndexEntry, IndexTable, flags_for_frame_type
from zvc69_rt.bitstream.limits import MAX_INDEX_ENTRIES
from zvc69_rt.bitstream.trailer import Trailer
from zvc69_rt.errors import ZVC69FormatError


def _sink_seekable(sink: BinaryIO) -> bool:
    """True when close() may seek back and patch the header (not for pipes or O_APPEND files)."""
    try:
        if not sink.seekable():
            return False
        sink.tell()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    try:  # a file opened for appending ignores seeks on write: the patch would land at the end
        import fcntl

        if fcntl.fcntl(sink.fileno(), fcntl.F_GETFL) & os.O_APPEND:
            return False
    except (ImportError, OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    return True


def _write_all(sink: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = sink.write(view)
        if n is None:  # a non-blocking raw sink that could not take anything
            raise BlockingIOError("sink refused the write")
        view = view[n:]


class StreamWriter:
    """Append frames to a ZVC69 stream on any binary sink; the caller owns (and closes) the sink.

    ``index_references=True`` also indexes P and BBi frames (flag IS_REFERENCE); by default
    the index holds one entry per keyframe (I-frame: IS_KEYFRAME | IS_REFERENCE).
    """

    def __init__(self, sink: BinaryIO, header: FileHeader, *, index_references: bool = False):
        self.sink = sink
        self.header = header.copy(
            flags=HeaderFlags(header.flags) | HeaderFlags.HAS_INDEX | HeaderFlags.HAS_TRAILER,
            total_frames=0, index_offset=0,
        )
        self.index_references = index_references
        self.seekable = _sink_seekable(sink)
        self._base = sink.tell() if self.seekable else 0
        self._entries: list[IndexEntry] = []
        self._crc32 = 0
        self.frame_count = 0
        self.closed = False
        self.trailer: Trailer | None = None
        self.pos = 0
        self._put(self.header.pack(), checksum=False)

    def _put(self, data: bytes | bytearray | memoryview, checksum: bool = True) -> None:
        _write_all(self.sink, data)
        if checksum:
            self._crc32 = crc32(data, self._crc32)
        self.pos += len(data)

    def write_frame(self, frame_type: int, quality: int, latent_height: int, latent_width: int,
                    pts: int, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """Append one frame record; returns its byte offset from the start of the stream.
        ``flags``: FrameFlags (REDUCED_RES I-frames)."""
        n = self.frame_count
        if self.closed:
            raise ZVC69FormatError(f"frame {n}: the writer is already closed")
        if n == 0 and frame_type != FrameType.I:
            raise ZVC69FormatError(f"frame 0: frame_type {FRAME_TYPE_NAMES.get(frame_type, frame_type)} "
                                   "must be I (a stream starts with a keyframe)")
        if frame_type in B_TYPES and not self.header.flags & HeaderFlags.HAS_B_FRAMES:
            raise ZVC69FormatError(f"frame {n}: frame_type {FRAME_TYPE_NAMES[frame_type]} needs HAS_B_FRAMES "
                                   "in the file header flags")
        if n >= 0xFFFFFFFF:
            raise ZVC69FormatError(f"frame {n}: a stream holds at most 2**32-1 frames")
        fh = FrameHeader.for_data(frame_type, quality, latent_height, latent_width, pts, data, flags)
        fh.validate(n)  # names the frame and field before anything is written
        head = fh.pack()
        flags = flags_for_frame_type(frame_type)
        indexed = flags and (frame_type == FrameType.I or self.index_references)
        if indexed and len(self._entries) >= MAX_INDEX_ENTRIES:
            raise ZVC69FormatError(f"frame {n}: the index is full ({MAX_INDEX_ENTRIES} entries)")
        offset = self.pos
        self._put(head)
        self._put(data)
        if indexed:
            self._entries.append(IndexEntry(n, offset, flags))
        self.frame_count += 1
        return offset

    def write_packet(self, packet) -> int:
        """Append a zvc69_rt.codec.api.Packet (same as write_frame with its fields)."""
        return self.write_frame(packet.frame_type, packet.quality, packet.latent_height,
                                packet.latent_width, packet.pts, packet.data, packet.flags)

    def close(self) -> None:
        """Write index and trailer; patch total_frames/index_offset if the sink seeks. Idempotent.

        Does not close the sink (it may be stdout, or a file atomic_output still has to fsync).
        """
        if self.closed:
            return
        self.closed = True
        index_offset = self.pos
        self._put(IndexTable(self._entries).pack())
        trailer = Trailer(frame_count=self.frame_count, index_offset=index_offset,
                          trailer_offset=self.pos, crc32=self._crc32)
        self._put(trailer.pack(), checksum=False)
        self.trailer = trailer
        if self.seekable:
            self.header = self.header.copy(total_frames=self.frame_count, index_offset=index_offset)
            end = self.sink.tell()
            self.sink.seek(self._base)
            _write_all(self.sink, self.header.pack())
            self.sink.seek(end)
        self.sink.flush()

    @property
    def index(self) -> IndexTable:
        return IndexTable(list(self._entries))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

