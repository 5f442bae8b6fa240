"""The 64-byte ZVC69 file header and its feature flags (spec "File Header")."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field, replace

from zvc69_rt.bitstream.limits import MAX_DIMENSION, MIN_DIMENSION
from zvc69_rt.errors import ZVC69FormatError

MAGIC = b"ZVC69\x00"
VERSION_MAJOR = 1
#: 1 since session 14: entropy payloads are ZVCP version 2 (compact slice headers) or 3 (a
#: frame's hyperprior and latent parts chained in one stream, I-frames and P/B residuals alike);
#: 1.0 streams (ZVCP version 1) still decode.
#: Readers accept any minor: payloads name their own version.
VERSION_MINOR = 1
SIZE = 64

# magic, version_major, version_minor, flags, width, height, framerate_num, framerate_den,
# total_frames, gop_size, quality_level, color_space, bit_depth, model_hash, index_offset,
# latent_channels, hyperprior_channels, reserved
_STRUCT = struct.Struct("<6sBBIHHHHIBBBB4sQII16s")
assert _STRUCT.size == SIZE

COLOR_SPACES = {0: "YUV420", 1: "YUV444", 2: "RGB"}
BIT_DEPTHS = (8, 10, 12)
MAX_CHANNELS = 65535


class HeaderFlags(enum.IntFlag):
    """File header ``flags`` bits 0..5; bits 6..31 are reserved and must be zero."""

    HAS_INDEX = 1 << 0
    HAS_B_FRAMES = 1 << 1
    HAS_TRAILER = 1 << 2
    INTEGERIZED = 1 << 3
    GMM_ENTROPY = 1 << 4
    CHECKERBOARD = 1 << 5


KNOWN_FLAGS = int(
    HeaderFlags.HAS_INDEX | HeaderFlags.HAS_B_FRAMES | HeaderFlags.HAS_TRAILER
    | HeaderFlags.INTEGERIZED | HeaderFlags.GMM_ENTROPY | HeaderFlags.CHECKERBOARD
)

NO_FLAGS = HeaderFlags(0)


def flag_names(flags: int) -> list[str]:
    """Names of the set flags in bit order (for `zvc69 info`)."""
    return [f.name for f in HeaderFlags if flags & f]


def _err(msg: str) -> ZVC69FormatError:
    return ZVC69FormatError(f"file header: {msg}")


@dataclass
class FileHeader:
    """Global stream metadata; ``pack()`` and ``unpack()`` are exact inverses of the spec table."""

    width: int
    height: int
    framerate_num: int = 30
    framerate_den: int = 1
    total_frames: int = 0  # 0 = unknown (e.g. written to a pipe)
    gop_size: int = 32
    quality_level: int = 57
    color_space: int = 0  # 0=YUV420, 1=YUV444, 2=RGB
    bit_depth: int = 8
    model_hash: bytes = field(default=bytes(4))  # first 4 bytes of the bundle's SHA-256
    index_offset: int = 0  # 0 = not known here (look in the trailer)
    latent_channels: int = 192
    hyperprior_channels: int = 128
    flags: HeaderFlags = NO_FLAGS
    version_major: int = VERSION_MAJOR
    version_minor: int = VERSION_MINOR

    def validate(self) -> None:
        """Raise ZVC69FormatError naming the first field outside what the format allows."""
        if self.version_major != VERSION_MAJOR:
            raise _err(f"version_major {self.version_major} is not supported (this reader knows {VERSION_MAJOR})")
        if not 0 <= self.version_minor <= 255:
            raise _err(f"version_minor {self.version_minor} does not fit a u8")
        if not 0 <= int(self.flags) <= 0xFFFFFFFF or int(self.flags) & ~KNOWN_FLAGS:
            raise _err(f"flags 0x{int(self.flags):08x} set reserved bits (known: 0x{KNOWN_FLAGS:02x})")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not MIN_DIMENSION <= v <= MAX_DIMENSION:
                raise _err(f"{name} {v} is outside {MIN_DIMENSION}..{MAX_DIMENSION}")
        for name in ("framerate_num", "framerate_den"):
            v = getattr(self, name)
            if not 1 <= v <= 0xFFFF:
                raise _err(f"{name} {v} is outside 1..65535")
        if not 0 <= self.total_frames <= 0xFFFFFFFF:
            raise _err(f"total_frames {self.total_frames} does not fit a u32")
        if not 1 <= self.gop_size <= 255:
            raise _err(f"gop_size {self.gop_size} is outside 1..255")
        if not 0 <= self.quality_level <= 100:
            raise _err(f"quality_level {self.quality_level} is outside 0..100")
        if self.color_space not in COLOR_SPACES:
            raise _err(f"color_space {self.color_space} is not one of 0 (YUV420), 1 (YUV444), 2 (RGB)")
        if self.bit_depth not in BIT_DEPTHS:
            raise _err(f"bit_depth {self.bit_depth} is not one of 8, 10, 12")
        if not isinstance(self.model_hash, (bytes, bytearray)) or len(self.model_hash) != 4:
            raise _err(f"model_hash must be 4 bytes, got {self.model_hash!r}")
        if self.index_offset != 0 and not SIZE <= self.index_offset <= 0xFFFFFFFFFFFFFFFF:
            raise _err(f"index_offset {self.index_offset} points into the file header (must be 0 or >= {SIZE})")
        for name in ("latent_channels", "hyperprior_channels"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_CHANNELS:
                raise _err(f"{name} {v} is outside 1..{MAX_CHANNELS}")

    def pack(self) -> bytes:
        """The 64 header bytes (validates first, so a writer cannot emit a header a reader refuses)."""
        self.validate()
        return _STRUCT.pack(
            MAGIC, self.version_major, self.version_minor, int(self.flags), self.width, self.height,
            self.framerate_num, self.framerate_den, self.total_frames, self.gop_size, self.quality_level,
            self.color_space, self.bit_depth, bytes(self.model_hash), self.index_offset,
            self.latent_channels, self.hyperprior_channels, bytes(16),
        )

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview) -> FileHeader:
        """Parse and validate 64 header bytes."""
        if len(buf) < SIZE:
            raise _err(f"truncated: {len(buf)} of {SIZE} bytes")
        (magic, vmaj, vmin, flags, width, height, fnum, fden, total, gop, quality, cs, depth, mhash,
         index_offset, lch, hch, reserved) = _STRUCT.unpack_from(buf, 0)
        if magic != MAGIC:
            raise _err(f"magic {magic!r} is not {MAGIC!r} (not a ZVC69 stream)")
        if reserved != bytes(16):
            raise _err("reserved bytes 0x30..0x3F must be zero")
        if flags & ~KNOWN_FLAGS:
            raise _err(f"flags 0x{flags:08x} set reserved bits (known: 0x{KNOWN_FLAGS:02x})")
        hdr = cls(
            width=width, height=height, framerate_num=fnum, framerate_den=fden, total_frames=total,
            gop_size=gop, quality_level=quality, color_space=cs, bit_depth=depth, model_hash=mhash,
            index_offset=index_offset, latent_channels=lch, hyperprior_channels=hch,
            flags=HeaderFlags(flags), version_major=vmaj, version_minor=vmin,
        )
        hdr.validate()
        return hdr

    def copy(self, **changes) -> FileHeader:
        """A modified copy (the writer patches its own copy, never the caller's object)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-friendly view for `zvc69 info --json`."""
        return {
            "magic": MAGIC.rstrip(b"\0").decode(),
            "version_major": self.version_major,
            "version_minor": self.version_minor,
            "flags": int(self.flags),
            "flag_names": flag_names(self.flags),
            "width": self.width,
            "height": self.height,
            "framerate_num": self.framerate_num,
            "framerate_den": self.framerate_den,
            "total_frames": self.total_frames,
            "gop_size": self.gop_size,
            "quality_level": self.quality_level,
            "color_space": self.color_space,
            "color_space_name": COLOR_SPACES[self.color_space],
            "bit_depth": self.bit_depth,
            "model_hash": bytes(self.model_hash).hex(),
            "index_offset": self.index_offset,
            "latent_channels": self.latent_channels,
            "hyperprior_channels": self.hyperprior_channels,
        }
