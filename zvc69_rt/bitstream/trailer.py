"""The 32-byte trailer: the last bytes of every stream the writer closes (docs/FORMAT.md).

It lets a reader find the index from the end of the file even when the header could not
be patched (the stream went to a pipe), and carries the frame count and a CRC-32 over
everything between the file header and the trailer (frame records and index), so the
header stays patchable after the fact without invalidating the checksum.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from zvc69_rt.bitstream import header as file_header
from zvc69_rt.errors import ZVC69FormatError

MAGIC = b"ZVCT"
VERSION = 1
SIZE = 32

# magic, trailer_version, reserved[3], frame_count, crc32, index_offset, trailer_offset
_STRUCT = struct.Struct("<4sB3sIIQQ")
assert _STRUCT.size == SIZE


@dataclass
class Trailer:
    frame_count: int
    index_offset: int  # 0 = no index
    trailer_offset: int  # where this trailer starts = stream length - 32
    crc32: int  # CRC-32 of bytes [64, trailer_offset)

    def validate(self) -> None:
        if not 0 <= self.frame_count <= 0xFFFFFFFF:
            raise ZVC69FormatError(f"trailer: frame_count {self.frame_count} does not fit a u32")
        if self.trailer_offset < file_header.SIZE or self.trailer_offset > 0xFFFFFFFFFFFFFFFF:
            raise ZVC69FormatError(f"trailer: trailer_offset {self.trailer_offset} is inside the file header")
        if self.index_offset != 0 and not file_header.SIZE <= self.index_offset < self.trailer_offset:
            raise ZVC69FormatError(f"trailer: index_offset {self.index_offset} is outside the stream body "
                                   f"{file_header.SIZE}..{self.trailer_offset}")
        if self.frame_count > (self.trailer_offset - file_header.SIZE) // 32:
            raise ZVC69FormatError(f"trailer: frame_count {self.frame_count} cannot fit in "
                                   f"{self.trailer_offset - file_header.SIZE} bytes of frames")
        if not 0 <= self.crc32 <= 0xFFFFFFFF:
            raise ZVC69FormatError(f"trailer: crc32 {self.crc32} does not fit a u32")

    def pack(self) -> bytes:
        self.validate()
        return _STRUCT.pack(MAGIC, VERSION, bytes(3), self.frame_count, self.crc32, self.index_offset,
                            self.trailer_offset)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview) -> Trailer:
        if len(buf) < SIZE:
            raise ZVC69FormatError(f"trailer: truncated: {len(buf)} of {SIZE} bytes")
        magic, version, reserved, count, crc, index_offset, trailer_offset = _STRUCT.unpack_from(buf, 0)
        if magic != MAGIC:
            raise ZVC69FormatError(f"trailer: magic {bytes(magic)!r} is not {MAGIC!r}")
        if version != VERSION:
            raise ZVC69FormatError(f"trailer: trailer_version {version} is not supported (expected {VERSION})")
        if reserved != bytes(3):
            raise ZVC69FormatError("trailer: reserved bytes 0x05..0x07 must be zero")
        t = cls(frame_count=count, index_offset=index_offset, trailer_offset=trailer_offset, crc32=crc)
        t.validate()
        return t

    def to_dict(self) -> dict:
        return {"frame_count": self.frame_count, "index_offset": self.index_offset,
                "trailer_offset": self.trailer_offset, "crc32": f"{self.crc32:08x}"}
