"""The 5-byte header in front of compressed motion data (spec "Motion Data Format")."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from zvc69_rt.bitstream.limits import MAX_DIMENSION
from zvc69_rt.errors import ZVC69FormatError

SIZE = 5
_STRUCT = struct.Struct("<BHH")  # precision, width, height
assert _STRUCT.size == SIZE

#: Motion is coded at 1/4 of the (padded) input size, so it is never wider than this.
MAX_MOTION_DIMENSION = MAX_DIMENSION // 4


class MotionPrecision(enum.IntEnum):
    FULL_PEL = 0
    HALF_PEL = 1
    QUARTER_PEL = 2  # the spec's default


@dataclass
class MotionHeader:
    precision: int
    width: int  # motion field width (H/4 x W/4 of the padded frame)
    height: int

    def validate(self, where: str = "motion header") -> None:
        if self.precision not in tuple(MotionPrecision):
            raise ZVC69FormatError(f"{where}: precision {self.precision} is not one of 0 (full), 1 (half), 2 (quarter)")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_MOTION_DIMENSION:
                raise ZVC69FormatError(f"{where}: {name} {v} is outside 1..{MAX_MOTION_DIMENSION}")

    def pack(self) -> bytes:
        self.validate()
        return _STRUCT.pack(int(self.precision), self.width, self.height)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, offset: int = 0,
               where: str = "motion header") -> MotionHeader:
        """Parse 5 bytes at ``offset``; ``where`` labels errors (e.g. "frame 7: motion header")."""
        if offset < 0 or len(buf) - offset < SIZE:
            raise ZVC69FormatError(f"{where}: truncated: {max(len(buf) - offset, 0)} of {SIZE} bytes")
        precision, width, height = _STRUCT.unpack_from(buf, offset)
        h = cls(precision=precision, width=width, height=height)
        h.validate(where)
        return h
