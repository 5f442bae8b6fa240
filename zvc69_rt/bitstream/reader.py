"""Strict reader: sequential frames (file or pipe) and keyframe random access via the index.

Every check happens before the bytes it guards are used: sizes against the real remaining
length (or the 64 MiB frame cap on a pipe), CRC-16 per frame, CRC-32 over the body at the
trailer, and every index entry against the frame starts actually found.
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Self

from zvc69_rt.bitstream import frame_header as frame_mod
from zvc69_rt.bitstream import header as header_mod
from zvc69_rt.bitstream import index as index_mod
from zvc69_rt.bitstream import trailer as trailer_mod
from zvc69_rt.bitstream.crc import crc32
from zvc69_rt.bitstream.frame_header import B_TYPES, FrameHeader, FrameType
from zvc69_rt.bitstream.header import FileHeader, HeaderFlags
from zvc69_rt.bitstream.index import IndexEntry, IndexTable, flags_for_frame_type
from zvc69_rt.bitstream.source import ByteSource
from zvc69_rt.bitstream.trailer import Trailer
from zvc69_rt.errors import InputError, ZVC69FormatError

HEADER_SIZE = header_mod.SIZE
FRAME_HEADER_SIZE = frame_mod.SIZE


@dataclass
class FrameRecord:
    """One frame as found in the stream: its number, byte offset, header and verified data."""

    number: int
    offset: int
    header: FrameHeader
    data: bytes


class StreamReader:
    """Read a ZVC69 stream from a path or a binary file object (seekable or a pipe).

    ``iter_frames()`` walks frames in order, verifying each CRC-16 and, at the end, the index
    and the trailer's CRC-32. On a seekable source ``keyframes()`` / ``seek_keyframe(n)`` jump
    through the index (found via the header's index_offset or the trailer) without scanning.
    On a pipe the stream can be walked once; the index is known after the walk. One
    reader has one file position: finish (or drop) a walk before calling keyframes().
    """

    def __init__(self, source: str | os.PathLike | BinaryIO):
        self._owned = isinstance(source, (str, os.PathLike))
        try:
            self._f: BinaryIO = open(source, "rb") if self._owned else source  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{os.fspath(source)}: cannot open ({exc.strerror})") from exc
        try:
            self._src = ByteSource(self._f)
            self.header = FileHeader.unpack(self._src.read_exact(HEADER_SIZE, "file header"))
            self.trailer: Trailer | None = None
            self.index: IndexTable | None = None
            self.index_offset: int | None = None  # resolved position of the index table
            self.frame_count: int | None = None
            self.stream_size: int | None = self._src.size
            self.crc32: int | None = None  # computed body CRC-32 after a full walk
            self.verified = False  # True after a full walk checked every checksum and the index
            self._consumed = False
            self._start: tuple[int, int] | None = None
            self._limit: int | None = None  # end of the body (trailer start) on a seekable source
            self._index_hint = self.header.index_offset
            if self.header.index_offset and not self.header.flags & HeaderFlags.HAS_INDEX:
                raise ZVC69FormatError(f"file header: index_offset {self.header.index_offset} is set "
                                       "but flags lack HAS_INDEX")
            if self._src.seekable:
                self._probe_end()
        except BaseException:
            self.close()
            raise

    # -- setup -------------------------------------------------------------------------

    @property
    def seekable(self) -> bool:
        return self._src.seekable

    def _probe_end(self) -> None:
        """Seekable only: read the trailer from the end and resolve where the index is."""
        size = self._src.size
        assert size is not None
        limit = size
        hdr = self.header
        if hdr.flags & HeaderFlags.HAS_TRAILER:
            if size < HEADER_SIZE + trailer_mod.SIZE:
                raise ZVC69FormatError(f"trailer: missing: the stream is only {size} bytes (HAS_TRAILER is set)")
            self._src.seek(size - trailer_mod.SIZE)
            t = Trailer.unpack(self._src.read_exact(trailer_mod.SIZE, "trailer"))
            if t.trailer_offset != size - trailer_mod.SIZE:
                raise ZVC69FormatError(f"trailer: trailer_offset {t.trailer_offset} does not match its position "
                                       f"{size - trailer_mod.SIZE} (stream truncated or extended)")
            if t.index_offset and not hdr.flags & HeaderFlags.HAS_INDEX:
                raise ZVC69FormatError(f"trailer: index_offset {t.index_offset} is set but flags lack HAS_INDEX")
            if hdr.flags & HeaderFlags.HAS_INDEX and not t.index_offset:
                raise ZVC69FormatError("trailer: index_offset is 0 but the file header flags HAS_INDEX")
            if hdr.index_offset and hdr.index_offset != t.index_offset:
                raise ZVC69FormatError(f"file header: index_offset {hdr.index_offset} disagrees with the "
                                       f"trailer's {t.index_offset}")
            if hdr.total_frames and hdr.total_frames != t.frame_count:
                raise ZVC69FormatError(f"file header: total_frames {hdr.total_frames} disagrees with the "
                                       f"trailer's frame_count {t.frame_count}")
            self.trailer = t
            limit = t.trailer_offset
            self._index_hint = t.index_offset
            self._src.seek(HEADER_SIZE)
        if self._index_hint and not HEADER_SIZE <= self._index_hint <= limit - index_mod.HEADER_SIZE:
            raise ZVC69FormatError(f"file header: index_offset {self._index_hint} points outside the stream "
                                   f"body {HEADER_SIZE}..{limit}")
        if hdr.total_frames > (limit - HEADER_SIZE) // FRAME_HEADER_SIZE:
            raise ZVC69FormatError(f"file header: total_frames {hdr.total_frames} cannot fit in the "
                                   f"{limit - HEADER_SIZE} bytes after the header")
        self._limit = limit

    # -- sequential walk ---------------------------------------------------------------

    def iter_frames(self) -> Iterator[tuple[FrameHeader, bytes]]:
        """Yield (FrameHeader, data) with the CRC-16 verified; after seek_keyframe(), from there."""
        for rec in self.iter_records():
            yield rec.header, rec.data

    def iter_records(self) -> Iterator[FrameRecord]:
        """Like iter_frames() but with frame numbers and byte offsets (for `zvc69 info`)."""
        if self._src.seekable:
            start, number = self._start or (HEADER_SIZE, 0)
            self._start = None
            self._src.seek(start)
        else:
            if self._consumed:
                raise InputError("the stream was already read; a pipe cannot be rewound")
            start, number = HEADER_SIZE, 0
        self._consumed = True
        return self._walk(start, number)

    def _walk(self, start: int, n: int) -> Iterator[FrameRecord]:
        src = self._src
        hdr = self.header
        flags = hdr.flags
        full = start == HEADER_SIZE
        limit = self._limit
        crc = 0
        offsets = array("Q")
        ftypes = bytearray()
        index: IndexTable | None = None
        index_pos: int | None = None
        frames_before_index = 0
        trailer: Trailer | None = None
        trailer_pos: int | None = None
        while True:
            pos = src.pos
            if index is None and self._index_hint and pos == self._index_hint:
                head = src.read_exact(4, "index: header")
                if head in (frame_mod.MAGIC, trailer_mod.MAGIC):
                    raise ZVC69FormatError(f"file header: index_offset {pos} points at a {head.decode()} record, "
                                           "not at the index table")
                index, crc = self._read_index(head, n, crc)
                index_pos, frames_before_index = pos, n
                continue
            head = src.read_upto(4)
            if not head:
                break
            if len(head) < 4:
                raise ZVC69FormatError(f"frame {n}: truncated at offset {pos}: {len(head)} bytes left, too few for "
                                       "a frame header, index or trailer")
            if head == frame_mod.MAGIC and (limit is None or pos < limit):
                if index is not None and frames_before_index > 0:
                    raise ZVC69FormatError(f"frame {n}: frame record at offset {pos} after the index "
                                           f"(the index follows the last frame)")
                raw = head + src.read_exact(FRAME_HEADER_SIZE - 4, f"frame {n}: header")
                fh = FrameHeader.unpack(raw, n)
                if n == 0 and fh.frame_type != FrameType.I:
                    raise ZVC69FormatError(f"frame 0: frame_type {fh.type_name} must be I (a stream starts "
                                           "with a keyframe)")
                if fh.frame_type in B_TYPES and not flags & HeaderFlags.HAS_B_FRAMES:
                    raise ZVC69FormatError(f"frame {n}: frame_type {fh.type_name} but the file header flags "
                                           "lack HAS_B_FRAMES")
                if limit is not None and fh.frame_size > limit - src.pos:
                    raise ZVC69FormatError(f"frame {n}: frame_size {fh.frame_size} exceeds the "
                                           f"{limit - src.pos} bytes left in the file")
                data = src.read_exact(fh.frame_size, f"frame {n}: data (frame_size {fh.frame_size})")
                fh.check_data(data, n)
                crc = crc32(data, crc32(raw, crc))
                if n >= 0xFFFFFFFF:
                    raise ZVC69FormatError(f"frame {n}: more frames than a u32 frame_count can hold")
                if full:
                    offsets.append(pos)
                    ftypes.append(fh.frame_type)
                yield FrameRecord(n, pos, fh, data)
                n += 1
                continue
            if head == trailer_mod.MAGIC and flags & HeaderFlags.HAS_TRAILER:
                trailer = Trailer.unpack(head + src.read_exact(trailer_mod.SIZE - 4, "trailer"))
                trailer_pos = pos
                if src.read_upto(1):
                    raise ZVC69FormatError(f"trailer: data follows the trailer at offset {pos}")
                break
            if index is None and not self._index_hint and flags & HeaderFlags.HAS_INDEX:
                index, crc = self._read_index(head, n, crc)
                index_pos, frames_before_index = pos, n
                continue
            raise ZVC69FormatError(f"frame {n}: magic {head!r} at offset {pos} is not {frame_mod.MAGIC!r}")
        self._finish(full, n, crc, src.pos, index, index_pos, trailer, trailer_pos, offsets, ftypes)

    def _read_index(self, head: bytes, frames_seen: int, crc: int) -> tuple[IndexTable, int]:
        src = self._src
        raw = head + src.read_exact(index_mod.HEADER_SIZE - len(head), "index: header")
        count = index_mod.unpack_header(raw)
        if src.size is not None:
            room = (self._limit if self._limit is not None else src.size) - src.pos
            if count * index_mod.ENTRY_SIZE > room:
                raise ZVC69FormatError(f"index: entry_count {count} needs {count * index_mod.ENTRY_SIZE} bytes, "
                                       f"only {room} left before the trailer")
        if frames_seen and count > frames_seen:
            raise ZVC69FormatError(f"index: entry_count {count} exceeds the {frames_seen} frames before it")
        body = src.read_exact(count * index_mod.ENTRY_SIZE, f"index: {count} entries")
        crc = crc32(body, crc32(raw, crc))
        return IndexTable(index_mod.unpack_entries(body, count)), crc

    def _finish(self, full: bool, n: int, crc: int, end: int, index: IndexTable | None, index_pos: int | None,
                trailer: Trailer | None, trailer_pos: int | None, offsets: array, ftypes: bytearray) -> None:
        hdr = self.header
        if hdr.flags & HeaderFlags.HAS_TRAILER and trailer is None:
            raise ZVC69FormatError(f"trailer: missing: the stream ends at offset {end} (truncated?)")
        if not full and index_pos is None:
            index_pos = self.index_offset  # a walk from a keyframe may start after the index
        if hdr.flags & HeaderFlags.HAS_INDEX and index_pos is None:
            raise ZVC69FormatError(f"index: missing: HAS_INDEX is set but no index precedes offset {end}")
        if full and index is not None and index_pos not in (HEADER_SIZE, (trailer_pos if trailer else end) - index.size):
            raise ZVC69FormatError(f"index: table at offset {index_pos} is neither right after the file header "
                                   "nor right after the last frame")
        if trailer is not None:
            if trailer.trailer_offset != trailer_pos:
                raise ZVC69FormatError(f"trailer: trailer_offset {trailer.trailer_offset} but it starts at {trailer_pos}")
            if trailer.frame_count != n:
                raise ZVC69FormatError(f"trailer: frame_count {trailer.frame_count} but the stream holds {n} frames")
            if trailer.index_offset != (index_pos or 0):
                raise ZVC69FormatError(f"trailer: index_offset {trailer.index_offset} but the index is at "
                                       f"{index_pos or 0}")
            if full and trailer.crc32 != crc:
                raise ZVC69FormatError(f"trailer: crc32 {trailer.crc32:08x} does not match {crc:08x} computed over "
                                       "the frames and index")
        if hdr.total_frames and hdr.total_frames != n:
            raise ZVC69FormatError(f"file header: total_frames {hdr.total_frames} but the stream holds {n} frames")
        if hdr.index_offset and hdr.index_offset != index_pos:
            raise ZVC69FormatError(f"file header: index_offset {hdr.index_offset} but the index is at {index_pos}")
        if full and index is not None:
            _check_index_against_frames(index, offsets, ftypes)
        self.frame_count = n
        self.stream_size = end
        self.trailer = trailer
        self.index_offset = index_pos
        if index is not None:
            self.index = index
        if full:
            self.crc32 = crc
            self.verified = True

    # -- random access -----------------------------------------------------------------

    def keyframes(self) -> list[IndexEntry]:
        """Index entries flagged IS_KEYFRAME (empty without an index).

        Seekable: read straight from the index, each entry checked to point at a valid frame
        header of the right type. Pipe: walks (and verifies) the rest of the stream first.
        """
        if self.index is None and self.header.flags & HeaderFlags.HAS_INDEX:
            if self._src.seekable and self._index_hint:
                self.index = self._load_index_random_access()
            elif not self._consumed:
                for _ in self.iter_records():
                    pass
            else:
                raise InputError("the stream was already read without reaching its index")
        return self.index.keyframes() if self.index is not None else []

    def _load_index_random_access(self) -> IndexTable:
        src, at, limit = self._src, self._index_hint, self._limit
        assert limit is not None
        src.seek(at)
        count = index_mod.unpack_header(src.read_exact(index_mod.HEADER_SIZE, "index: header"))
        room = limit - src.pos
        if count * index_mod.ENTRY_SIZE > room:
            raise ZVC69FormatError(f"index: entry_count {count} needs {count * index_mod.ENTRY_SIZE} bytes, "
                                   f"only {room} left before the trailer")
        table = IndexTable(index_mod.unpack_entries(src.read_exact(count * index_mod.ENTRY_SIZE, "index"), count))
        end = at + table.size
        if at != HEADER_SIZE and end != limit:
            raise ZVC69FormatError(f"index: table at {at}..{end} is neither right after the file header nor "
                                   f"right before the trailer at {limit}")
        if self.trailer is not None and count > self.trailer.frame_count:
            raise ZVC69FormatError(f"index: entry_count {count} exceeds the trailer's frame_count "
                                   f"{self.trailer.frame_count}")
        for i, e in enumerate(table.entries):
            where = f"index entry {i}"
            if self.trailer is not None and e.frame_number >= self.trailer.frame_count:
                raise ZVC69FormatError(f"{where}: frame_number {e.frame_number} is beyond the "
                                       f"{self.trailer.frame_count} frames in the stream")
            if not HEADER_SIZE <= e.byte_offset <= limit - FRAME_HEADER_SIZE or at <= e.byte_offset < end:
                raise ZVC69FormatError(f"{where}: byte_offset {e.byte_offset} points outside the frames "
                                       f"(body {HEADER_SIZE}..{limit}, index {at}..{end})")
            src.seek(e.byte_offset)
            raw = src.read_exact(FRAME_HEADER_SIZE, f"{where}: frame header")
            if raw[:4] != frame_mod.MAGIC:
                raise ZVC69FormatError(f"{where}: byte_offset {e.byte_offset} is not the start of a frame")
            fh = FrameHeader.unpack(raw, e.frame_number)
            if fh.frame_size > limit - src.pos:
                raise ZVC69FormatError(f"frame {e.frame_number}: frame_size {fh.frame_size} exceeds the "
                                       f"{limit - src.pos} bytes left in the file")
            want = flags_for_frame_type(fh.frame_type)
            if e.flags != want:
                raise ZVC69FormatError(f"{where}: flags 0x{int(e.flags):x} but frame {e.frame_number} is "
                                       f"{fh.type_name} (expected 0x{int(want):x})")
        self.index_offset = at
        return table

    def seek_keyframe(self, n: int) -> IndexEntry:
        """Position the next iter_frames() at the last keyframe at or before frame ``n``."""
        if not self._src.seekable:
            raise InputError("random access needs a seekable source; this one is a pipe")
        keys = self.keyframes()
        if not keys:
            raise InputError("the stream has no index to seek with")
        total = self.trailer.frame_count if self.trailer is not None else self.frame_count
        if n < 0 or (total is not None and n >= total):
            raise InputError(f"frame {n} is outside the stream's {total} frames")
        i = bisect.bisect_right([k.frame_number for k in keys], n) - 1
        if i < 0:
            raise ZVC69FormatError(f"index: no keyframe at or before frame {n} (the first is "
                                   f"{keys[0].frame_number})")
        self._start = (keys[i].byte_offset, keys[i].frame_number)
        return keys[i]

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        if self._owned:
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_index_against_frames(index: IndexTable, offsets: array, ftypes: bytearray) -> None:
    """Every entry names a real frame start with the right number and flags; every I-frame is indexed."""
    keyframes = 0
    for i, e in enumerate(index.entries):
        k = bisect.bisect_left(offsets, e.byte_offset)
        if k == len(offsets) or offsets[k] != e.byte_offset:
            raise ZVC69FormatError(f"index entry {i}: byte_offset {e.byte_offset} is not the start of a frame")
        if k != e.frame_number:
            raise ZVC69FormatError(f"index entry {i}: frame_number {e.frame_number} but offset {e.byte_offset} "
                                   f"holds frame {k}")
        want = flags_for_frame_type(ftypes[k])
        if e.flags != want:
            raise ZVC69FormatError(f"index entry {i}: flags 0x{int(e.flags):x} but frame {k} is "
                                   f"{frame_mod.FRAME_TYPE_NAMES[ftypes[k]]} (expected 0x{int(want):x})")
        keyframes += e.is_keyframe
    n_i = ftypes.count(FrameType.I)
    if keyframes != n_i:
        missing = next(k for k, t in enumerate(ftypes) if t == FrameType.I
                       and offsets[k] not in {e.byte_offset for e in index.entries})
        raise ZVC69FormatError(f"index: frame {missing} is an I-frame without an index entry")
