"""The 32-byte frame header that precedes every frame's data (spec "Frame Header")."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from zvc69_rt.bitstream.crc import crc16_ccitt_false
from zvc69_rt.bitstream.limits import MAX_FRAME_SIZE, MAX_LATENT_DIMENSION
from zvc69_rt.errors import ZVC69FormatError

MAGIC = b"ZVC1"
SIZE = 32

# magic, frame_type, quality_level, frame_flags (the spec's reserved1), frame_size, latent_height,
# latent_width, pts, checksum
_STRUCT = struct.Struct("<4sBBHIIIQI")
assert _STRUCT.size == SIZE


class FrameType(enum.IntEnum):
    I = 0
    P = 1
    B = 2
    BBI = 3  # a B-frame that is itself a reference


class FrameFlags(enum.IntFlag):
    """Bits of the u16 at 0x06 (the spec's reserved1; zero in every stream before session 10)."""

    REDUCED_RES = 0x0001  # an I-frame coded at half width and height (zvc69_rt/codec/reduced_res.py)
    RESIDUAL_LAYER = 0x0002  # an I-frame followed by a residual layer (zvc69_rt/codec/residual_layer.py)


KNOWN_FRAME_FLAGS = int(FrameFlags.REDUCED_RES | FrameFlags.RESIDUAL_LAYER)
I_ONLY_FRAME_FLAGS = {"REDUCED_RES": FrameFlags.REDUCED_RES, "RESIDUAL_LAYER": FrameFlags.RESIDUAL_LAYER}

FRAME_TYPE_NAMES = {0: "I", 1: "P", 2: "B", 3: "BBi"}
B_TYPES = (FrameType.B, FrameType.BBI)


def _where(frame_number: int | None) -> str:
    return "frame header" if frame_number is None else f"frame {frame_number}"


@dataclass
class FrameHeader:
    """Per-frame fields; ``checksum`` is the CRC-16/CCITT-FALSE of the frame data."""

    frame_type: int
    quality_level: int
    frame_size: int
    latent_height: int
    latent_width: int
    pts: int
    checksum: int = 0
    flags: int = 0  # FrameFlags

    @classmethod
    def for_data(cls, frame_type: int, quality_level: int, latent_height: int, latent_width: int,
                 pts: int, data: bytes | bytearray | memoryview, flags: int = 0) -> FrameHeader:
        """Header describing ``data`` (size and CRC computed here, so they cannot disagree)."""
        return cls(frame_type=int(frame_type), quality_level=quality_level, frame_size=len(data),
                   latent_height=latent_height, latent_width=latent_width, pts=pts,
                   checksum=crc16_ccitt_false(data), flags=int(flags))

    @classmethod
    def for_packet(cls, packet) -> FrameHeader:
        """Header describing a zvc69_rt.codec.api.Packet."""
        return cls.for_data(packet.frame_type, packet.quality, packet.latent_height, packet.latent_width,
                            packet.pts, packet.data, packet.flags)

    @property
    def reduced_res(self) -> bool:
        return bool(self.flags & FrameFlags.REDUCED_RES)

    @property
    def type_name(self) -> str:
        return FRAME_TYPE_NAMES.get(self.frame_type, str(self.frame_type))

    def validate(self, frame_number: int | None = None) -> None:
        """Raise ZVC69FormatError naming the frame and the first bad field."""
        w = _where(frame_number)
        if self.frame_type not in FRAME_TYPE_NAMES:
            raise ZVC69FormatError(f"{w}: frame_type {self.frame_type} is not one of 0 (I), 1 (P), 2 (B), 3 (BBi)")
        if not 0 <= self.quality_level <= 100:
            raise ZVC69FormatError(f"{w}: quality_level {self.quality_level} is outside 0..100")
        if not 0 <= self.flags <= 0xFFFF or self.flags & ~KNOWN_FRAME_FLAGS:
            raise ZVC69FormatError(f"{w}: frame_flags 0x{self.flags:04x} sets bits this reader does not know "
                                   f"(known: 0x{KNOWN_FRAME_FLAGS:04x}); a newer encoder wrote it, or it is corrupt")
        for name, bit in I_ONLY_FRAME_FLAGS.items():
            if self.flags & bit and self.frame_type != FrameType.I:
                raise ZVC69FormatError(f"{w}: {name} on a {self.type_name}-frame (only I-frames may carry it)")
        if not 0 <= self.frame_size <= MAX_FRAME_SIZE:
            raise ZVC69FormatError(f"{w}: frame_size {self.frame_size} is outside 0..{MAX_FRAME_SIZE} (64 MiB)")
        for name in ("latent_height", "latent_width"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_LATENT_DIMENSION:
                raise ZVC69FormatError(f"{w}: {name} {v} is outside 1..{MAX_LATENT_DIMENSION}")
        if not 0 <= self.pts <= 0xFFFFFFFFFFFFFFFF:
            raise ZVC69FormatError(f"{w}: pts {self.pts} does not fit a u64")
        if not 0 <= self.checksum <= 0xFFFF:
            raise ZVC69FormatError(f"{w}: checksum 0x{self.checksum:x} is not a CRC-16 (high two bytes must be zero)")

    def pack(self) -> bytes:
        """The 32 header bytes; the checksum's high half is zero."""
        self.validate()
        return _STRUCT.pack(MAGIC, self.frame_type, self.quality_level, self.flags, self.frame_size,
                            self.latent_height, self.latent_width, self.pts, self.checksum)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, frame_number: int | None = None) -> FrameHeader:
        """Parse and validate 32 bytes; ``frame_number`` only labels error messages."""
        w = _where(frame_number)
        if len(buf) < SIZE:
            raise ZVC69FormatError(f"{w}: header truncated: {len(buf)} of {SIZE} bytes")
        magic, ftype, quality, flags, size, lh, lw, pts, checksum = _STRUCT.unpack_from(buf, 0)
        if magic != MAGIC:
            raise ZVC69FormatError(f"{w}: magic {bytes(magic)!r} is not {MAGIC!r}")
        hdr = cls(frame_type=ftype, quality_level=quality, frame_size=size, latent_height=lh,
                  latent_width=lw, pts=pts, checksum=checksum, flags=flags)
        hdr.validate(frame_number)
        return hdr

    def check_data(self, data: bytes | bytearray | memoryview, frame_number: int | None = None) -> None:
        """Verify ``data`` against frame_size and the CRC-16."""
        w = _where(frame_number)
        if len(data) != self.frame_size:
            raise ZVC69FormatError(f"{w}: data is {len(data)} bytes, frame_size says {self.frame_size}")
        crc = crc16_ccitt_false(data)
        if crc != self.checksum:
            raise ZVC69FormatError(f"{w}: checksum 0x{self.checksum:04x} does not match the data's CRC-16 0x{crc:04x}")

    def to_dict(self) -> dict:
        return {
            "frame_type": self.frame_type, "type": self.type_name, "quality_level": self.quality_level,
            "frame_size": self.frame_size, "latent_height": self.latent_height,
            "latent_width": self.latent_width, "pts": self.pts, "checksum": self.checksum,
            "flags": self.flags, "reduced_res": self.reduced_res,
        }
