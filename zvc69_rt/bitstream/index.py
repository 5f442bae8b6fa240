"""The index table: seek points (keyframes at least) for random access (spec "Index Table")."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from zvc69_rt.bitstream.frame_header import FrameType
from zvc69_rt.bitstream.limits import MAX_INDEX_ENTRIES
from zvc69_rt.errors import ZVC69FormatError

HEADER_SIZE = 8
ENTRY_SIZE = 16
_HEADER = struct.Struct("<II")  # entry_count, reserved
_ENTRY = struct.Struct("<IQI")  # frame_number, byte_offset, flags
assert _HEADER.size == HEADER_SIZE and _ENTRY.size == ENTRY_SIZE


class IndexFlags(enum.IntFlag):
    IS_KEYFRAME = 1
    IS_REFERENCE = 2


KNOWN_INDEX_FLAGS = int(IndexFlags.IS_KEYFRAME | IndexFlags.IS_REFERENCE)


def flags_for_frame_type(frame_type: int) -> IndexFlags:
    """The index flags a frame of this type must carry: I = keyframe+reference, P/BBi = reference."""
    if frame_type == FrameType.I:
        return IndexFlags.IS_KEYFRAME | IndexFlags.IS_REFERENCE
    if frame_type in (FrameType.P, FrameType.BBI):
        return IndexFlags.IS_REFERENCE
    return IndexFlags(0)


@dataclass(frozen=True)
class IndexEntry:
    frame_number: int
    byte_offset: int  # from the start of the stream (its file header)
    flags: IndexFlags

    @property
    def is_keyframe(self) -> bool:
        return bool(self.flags & IndexFlags.IS_KEYFRAME)

    def to_dict(self) -> dict:
        return {"frame_number": self.frame_number, "byte_offset": self.byte_offset, "flags": int(self.flags),
                "flag_names": [f.name for f in IndexFlags if self.flags & f]}


@dataclass
class IndexTable:
    """Entries in strictly increasing frame_number order."""

    entries: list[IndexEntry] = field(default_factory=list)

    @property
    def size(self) -> int:
        return HEADER_SIZE + ENTRY_SIZE * len(self.entries)

    def validate(self) -> None:
        if len(self.entries) > MAX_INDEX_ENTRIES:
            raise ZVC69FormatError(f"index: entry_count {len(self.entries)} exceeds {MAX_INDEX_ENTRIES}")
        prev = -1
        for i, e in enumerate(self.entries):
            validate_entry(e, i, prev)
            prev = e.frame_number

    def pack(self) -> bytes:
        self.validate()
        out = bytearray(_HEADER.pack(len(self.entries), 0))
        for e in self.entries:
            out += _ENTRY.pack(e.frame_number, e.byte_offset, int(e.flags))
        return bytes(out)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview) -> IndexTable:
        """Parse a whole table held in ``buf`` (header + exactly entry_count entries)."""
        count = unpack_header(buf)
        need = HEADER_SIZE + count * ENTRY_SIZE
        if len(buf) != need:
            raise ZVC69FormatError(f"index: entry_count {count} needs {need} bytes, table has {len(buf)}")
        return cls(unpack_entries(buf[HEADER_SIZE:], count))

    def keyframes(self) -> list[IndexEntry]:
        return [e for e in self.entries if e.is_keyframe]


def unpack_header(buf: bytes | bytearray | memoryview) -> int:
    """entry_count from the 8-byte index header (reserved must be zero, count capped)."""
    if len(buf) < HEADER_SIZE:
        raise ZVC69FormatError(f"index: header truncated: {len(buf)} of {HEADER_SIZE} bytes")
    count, reserved = _HEADER.unpack_from(buf, 0)
    if reserved != 0:
        raise ZVC69FormatError(f"index: reserved is 0x{reserved:08x}, must be zero")
    if count > MAX_INDEX_ENTRIES:
        raise ZVC69FormatError(f"index: entry_count {count} exceeds the maximum {MAX_INDEX_ENTRIES}")
    return count


def unpack_entries(buf: bytes | bytearray | memoryview, count: int, first: int = 0,
                   prev_frame: int = -1) -> list[IndexEntry]:
    """Parse ``count`` entries (numbered from ``first`` in messages) checking order and flags."""
    if len(buf) < count * ENTRY_SIZE:
        raise ZVC69FormatError(f"index: entries truncated: {len(buf)} of {count * ENTRY_SIZE} bytes")
    out = []
    for i in range(count):
        fn, off, fl = _ENTRY.unpack_from(buf, i * ENTRY_SIZE)
        if fl & ~KNOWN_INDEX_FLAGS:
            raise ZVC69FormatError(f"index entry {first + i}: flags 0x{fl:08x} set reserved bits")
        e = IndexEntry(fn, off, IndexFlags(fl))
        validate_entry(e, first + i, prev_frame)
        prev_frame = fn
        out.append(e)
    return out


def validate_entry(e: IndexEntry, i: int, prev_frame: int) -> None:
    """Structural checks of one entry (where it points is checked by the reader)."""
    if not 0 <= e.frame_number <= 0xFFFFFFFF:
        raise ZVC69FormatError(f"index entry {i}: frame_number {e.frame_number} does not fit a u32")
    if e.frame_number <= prev_frame:
        raise ZVC69FormatError(f"index entry {i}: frame_number {e.frame_number} is not above the previous "
                               f"entry's {prev_frame} (entries must be strictly increasing)")
    if not 0 <= e.byte_offset <= 0xFFFFFFFFFFFFFFFF:
        raise ZVC69FormatError(f"index entry {i}: byte_offset {e.byte_offset} does not fit a u64")
    if int(e.flags) & ~KNOWN_INDEX_FLAGS or int(e.flags) < 0:
        raise ZVC69FormatError(f"index entry {i}: flags 0x{int(e.flags):x} set reserved bits")
    if e.flags & IndexFlags.IS_KEYFRAME and not e.flags & IndexFlags.IS_REFERENCE:
        raise ZVC69FormatError(f"index entry {i}: flags IS_KEYFRAME without IS_REFERENCE (a keyframe is a reference)")
