"""Header dataclasses: round trips of every field and flag, exact byte offsets from the spec tables."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zvc69_rt.bitstream import (
    FileHeader,
    FrameFlags,
    FrameHeader,
    HeaderFlags,
    IndexEntry,
    IndexFlags,
    IndexTable,
    MotionHeader,
    Trailer,
    crc16_ccitt_false,
    crc32,
    flags_for_frame_type,
)
from zvc69_rt.errors import ZVC69FormatError

FAST = settings(max_examples=150, deadline=500)


def crc16_reference(data: bytes) -> int:
    """Bitwise CRC-16/CCITT-FALSE straight from its definition (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


# -- CRCs ------------------------------------------------------------------------------

def test_crc16_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_crc32_check_value():
    assert crc32(b"123456789") == 0xCBF43926


@FAST
@given(st.binary(max_size=300), st.integers(0, 300))
def test_crc16_matches_definition_and_chains(data, cut):
    assert crc16_ccitt_false(data) == crc16_reference(data)
    cut = min(cut, len(data))
    assert crc16_ccitt_false(data[cut:], crc16_ccitt_false(data[:cut])) == crc16_ccitt_false(data)
    assert crc32(data[cut:], crc32(data[:cut])) == zlib.crc32(data)


# -- file header -----------------------------------------------------------------------

def _full_header() -> FileHeader:
    return FileHeader(
        width=1920, height=1080, framerate_num=30000, framerate_den=1001, total_frames=0x01020304,
        gop_size=250, quality_level=99, color_space=2, bit_depth=12, model_hash=b"\xde\xad\xbe\xef",
        index_offset=0x0102030405060708, latent_channels=192, hyperprior_channels=128,
        flags=HeaderFlags.HAS_INDEX | HeaderFlags.CHECKERBOARD, version_major=1, version_minor=7,
    )


# (offset, size, field) straight from the spec's "File Header (64 bytes)" table.
FILE_HEADER_TABLE = [
    (0x0C, 2, "width"), (0x0E, 2, "height"), (0x10, 2, "framerate_num"), (0x12, 2, "framerate_den"),
    (0x14, 4, "total_frames"), (0x18, 1, "gop_size"), (0x19, 1, "quality_level"), (0x1A, 1, "color_space"),
    (0x1B, 1, "bit_depth"), (0x20, 8, "index_offset"), (0x28, 4, "latent_channels"),
    (0x2C, 4, "hyperprior_channels"), (0x06, 1, "version_major"), (0x07, 1, "version_minor"),
]


def test_file_header_byte_offsets_match_spec_table():
    h = _full_header()
    b = h.pack()
    assert len(b) == 64
    assert b[0:6] == b"ZVC69\x00"
    for off, size, name in FILE_HEADER_TABLE:
        assert int.from_bytes(b[off:off + size], "little") == getattr(h, name), name
    assert int.from_bytes(b[0x08:0x0C], "little") == 0b100001  # HAS_INDEX (bit 0) | CHECKERBOARD (bit 5)
    assert b[0x1C:0x20] == b"\xde\xad\xbe\xef"
    assert b[0x30:0x40] == bytes(16)


@pytest.mark.parametrize("flag,bit", [
    (HeaderFlags.HAS_INDEX, 0), (HeaderFlags.HAS_B_FRAMES, 1), (HeaderFlags.HAS_TRAILER, 2),
    (HeaderFlags.INTEGERIZED, 3), (HeaderFlags.GMM_ENTROPY, 4), (HeaderFlags.CHECKERBOARD, 5),
])
def test_each_flag_has_its_spec_bit_and_round_trips(flag, bit):
    h = FileHeader(width=64, height=64, flags=flag)
    b = h.pack()
    assert int.from_bytes(b[8:12], "little") == 1 << bit
    back = FileHeader.unpack(b)
    assert back.flags == flag and isinstance(back.flags, HeaderFlags)


@FAST
@given(
    width=st.integers(64, 8192), height=st.integers(64, 8192), fnum=st.integers(1, 65535),
    fden=st.integers(1, 65535), total=st.integers(0, 2**32 - 1), gop=st.integers(1, 255),
    quality=st.integers(0, 100), cs=st.sampled_from([0, 1, 2]), depth=st.sampled_from([8, 10, 12]),
    mhash=st.binary(min_size=4, max_size=4), index_offset=st.one_of(st.just(0), st.integers(64, 2**64 - 1)),
    lch=st.integers(1, 65535), hch=st.integers(1, 65535), flags=st.integers(0, 63), vmin=st.integers(0, 255),
)
def test_file_header_round_trip_every_field(width, height, fnum, fden, total, gop, quality, cs, depth, mhash,
                                            index_offset, lch, hch, flags, vmin):
    h = FileHeader(width=width, height=height, framerate_num=fnum, framerate_den=fden, total_frames=total,
                   gop_size=gop, quality_level=quality, color_space=cs, bit_depth=depth, model_hash=mhash,
                   index_offset=index_offset, latent_channels=lch, hyperprior_channels=hch,
                   flags=HeaderFlags(flags), version_minor=vmin)
    b = h.pack()
    assert FileHeader.unpack(b) == h
    assert FileHeader.unpack(b).pack() == b


def _patched(b: bytes, off: int, fmt: str, value) -> bytes:
    out = bytearray(b)
    struct.pack_into(fmt, out, off, value)
    return bytes(out)


def test_frame_flags_reduced_res_round_trips_on_i_frames_only():
    hdr = FrameHeader.for_data(0, 50, 4, 6, 7, b"xyz", flags=FrameFlags.REDUCED_RES)
    raw = hdr.pack()
    assert struct.unpack_from("<H", raw, 0x06)[0] == 1
    back = FrameHeader.unpack(raw)
    assert back == hdr and back.reduced_res
    assert not FrameHeader.unpack(FrameHeader.for_data(0, 50, 4, 6, 7, b"xyz").pack()).reduced_res
    p_frame = _patched(FrameHeader.for_data(1, 50, 4, 6, 7, b"xyz").pack(), 0x06, "<H", 1)
    with pytest.raises(ZVC69FormatError, match=r"^frame 3: REDUCED_RES on a P-frame"):
        FrameHeader.unpack(p_frame, frame_number=3)
    with pytest.raises(ZVC69FormatError, match="frame_flags"):
        FrameHeader.for_data(0, 50, 4, 6, 7, b"xyz", flags=0x8000).pack()


def test_frame_flags_residual_layer_is_bit_1_on_i_frames_only():
    both = FrameFlags.REDUCED_RES | FrameFlags.RESIDUAL_LAYER
    raw = FrameHeader.for_data(0, 50, 4, 6, 7, b"xyz", flags=both).pack()
    assert struct.unpack_from("<H", raw, 0x06)[0] == 3
    assert FrameHeader.unpack(raw).flags == both
    p_frame = _patched(FrameHeader.for_data(1, 50, 4, 6, 7, b"xyz").pack(), 0x06, "<H", 2)
    with pytest.raises(ZVC69FormatError, match=r"^frame 4: RESIDUAL_LAYER on a P-frame"):
        FrameHeader.unpack(p_frame, frame_number=4)


@pytest.mark.parametrize("off,fmt,value,field", [
    (0x00, "<6s", b"ZVC70\x00", "magic"),
    (0x06, "<B", 2, "version_major"),
    (0x08, "<I", 1 << 6, "flags"),
    (0x0C, "<H", 63, "width"),
    (0x0E, "<H", 8193, "height"),
    (0x10, "<H", 0, "framerate_num"),
    (0x12, "<H", 0, "framerate_den"),
    (0x18, "<B", 0, "gop_size"),
    (0x19, "<B", 101, "quality_level"),
    (0x1A, "<B", 3, "color_space"),
    (0x1B, "<B", 9, "bit_depth"),
    (0x20, "<Q", 63, "index_offset"),
    (0x28, "<I", 0, "latent_channels"),
    (0x2C, "<I", 70000, "hyperprior_channels"),
    (0x3F, "<B", 1, "reserved"),
])
def test_file_header_rejects_bad_field_and_names_it(off, fmt, value, field):
    b = _patched(_full_header().pack(), off, fmt, value)
    with pytest.raises(ZVC69FormatError, match=field) as ei:
        FileHeader.unpack(b)
    assert str(ei.value).startswith("file header:")


def test_file_header_truncated():
    with pytest.raises(ZVC69FormatError, match="truncated"):
        FileHeader.unpack(_full_header().pack()[:63])


def test_file_header_pack_refuses_invalid():
    with pytest.raises(ZVC69FormatError, match="width"):
        FileHeader(width=10, height=64).pack()
    with pytest.raises(ZVC69FormatError, match="model_hash"):
        FileHeader(width=64, height=64, model_hash=b"abc").pack()


# -- frame header ----------------------------------------------------------------------

def test_frame_header_byte_offsets_match_spec_table():
    data = b"123456789"
    fh = FrameHeader.for_data(3, 77, 68, 120, 0x0102030405060708, data)
    b = fh.pack()
    assert len(b) == 32
    assert b[0:4] == b"ZVC1"
    assert b[0x04] == 3 and b[0x05] == 77
    assert b[0x06:0x08] == b"\0\0"  # frame_flags (the spec's reserved1): none
    assert int.from_bytes(b[0x08:0x0C], "little") == 9
    assert int.from_bytes(b[0x0C:0x10], "little") == 68
    assert int.from_bytes(b[0x10:0x14], "little") == 120
    assert int.from_bytes(b[0x14:0x1C], "little") == 0x0102030405060708
    assert b[0x1C:0x20] == (0x29B1).to_bytes(2, "little") + b"\0\0"  # CRC-16 low half, zero high half


@FAST
@given(ftype=st.integers(0, 3), q=st.integers(0, 100), data=st.binary(max_size=200),
       lh=st.integers(1, 8192), lw=st.integers(1, 8192), pts=st.integers(0, 2**64 - 1))
def test_frame_header_round_trip(ftype, q, data, lh, lw, pts):
    fh = FrameHeader.for_data(ftype, q, lh, lw, pts, data)
    back = FrameHeader.unpack(fh.pack(), 5)
    assert back == fh
    back.check_data(data, 5)


@pytest.mark.parametrize("off,fmt,value,field", [
    (0x00, "<4s", b"ZVC2", "magic"),
    (0x04, "<B", 4, "frame_type"),
    (0x05, "<B", 101, "quality_level"),
    (0x06, "<H", 4, "frame_flags"),
    (0x08, "<I", 64 * 1024 * 1024 + 1, "frame_size"),
    (0x0C, "<I", 0, "latent_height"),
    (0x10, "<I", 8193, "latent_width"),
    (0x1E, "<H", 1, "checksum"),
])
def test_frame_header_rejects_bad_field_naming_frame_and_field(off, fmt, value, field):
    b = _patched(FrameHeader.for_data(0, 50, 4, 4, 0, b"x").pack(), off, fmt, value)
    with pytest.raises(ZVC69FormatError, match=rf"^frame 12: .*{field}"):
        FrameHeader.unpack(b, 12)


def test_frame_header_check_data_detects_corruption():
    fh = FrameHeader.for_data(0, 50, 4, 4, 0, b"hello")
    with pytest.raises(ZVC69FormatError, match="frame 3: checksum"):
        fh.check_data(b"hellp", 3)
    with pytest.raises(ZVC69FormatError, match="frame 3: data is 4 bytes"):
        fh.check_data(b"hell", 3)


# -- index -----------------------------------------------------------------------------

def test_index_layout_matches_spec():
    t = IndexTable([IndexEntry(0, 64, IndexFlags.IS_KEYFRAME | IndexFlags.IS_REFERENCE),
                    IndexEntry(0x01020304, 0x1122334455667788, IndexFlags.IS_REFERENCE)])
    b = t.pack()
    assert len(b) == 8 + 2 * 16
    assert struct.unpack_from("<II", b, 0) == (2, 0)
    assert struct.unpack_from("<IQI", b, 8) == (0, 64, 3)
    assert struct.unpack_from("<IQI", b, 24) == (0x01020304, 0x1122334455667788, 2)
    assert IndexTable.unpack(b) == t


@FAST
@given(st.lists(st.tuples(st.integers(1, 1000), st.integers(0, 2**64 - 1), st.sampled_from([0, 2, 3])),
                max_size=40))
def test_index_round_trip(rows):
    fn = 0
    entries = []
    for step, off, fl in rows:
        fn += step
        entries.append(IndexEntry(fn, off, IndexFlags(fl)))
    t = IndexTable(entries)
    assert IndexTable.unpack(t.pack()) == t


@pytest.mark.parametrize("mutate,msg", [
    (lambda b: struct.pack_into("<I", b, 4, 1), "reserved"),
    (lambda b: struct.pack_into("<I", b, 0, 2**24 + 1), "entry_count"),
    (lambda b: struct.pack_into("<I", b, 0, 3), "entry_count 3 needs"),
    (lambda b: struct.pack_into("<I", b, 8 + 12, 4), "index entry 0: flags"),
    (lambda b: struct.pack_into("<I", b, 8 + 12, 1), "index entry 0: flags IS_KEYFRAME without IS_REFERENCE"),
    (lambda b: struct.pack_into("<I", b, 8 + 16, 0), "index entry 1: frame_number 0 is not above"),
])
def test_index_rejects(mutate, msg):
    b = bytearray(IndexTable([IndexEntry(0, 64, IndexFlags(3)), IndexEntry(5, 200, IndexFlags(3))]).pack())
    mutate(b)
    with pytest.raises(ZVC69FormatError, match=msg):
        IndexTable.unpack(bytes(b))


def test_index_flags_per_frame_type():
    assert flags_for_frame_type(0) == IndexFlags.IS_KEYFRAME | IndexFlags.IS_REFERENCE
    assert flags_for_frame_type(1) == IndexFlags.IS_REFERENCE
    assert flags_for_frame_type(2) == IndexFlags(0)
    assert flags_for_frame_type(3) == IndexFlags.IS_REFERENCE


# -- trailer ---------------------------------------------------------------------------

def test_trailer_layout_as_documented():
    t = Trailer(frame_count=7, index_offset=519, trailer_offset=559, crc32=0xA1B2C3D4)
    b = t.pack()
    assert len(b) == 32
    assert b[0:4] == b"ZVCT" and b[4] == 1 and b[5:8] == bytes(3)
    assert struct.unpack_from("<IIQQ", b, 8) == (7, 0xA1B2C3D4, 519, 559)
    assert Trailer.unpack(b) == t


@pytest.mark.parametrize("off,fmt,value,msg", [
    (0, "<4s", b"ZVCX", "magic"), (4, "<B", 2, "trailer_version"), (6, "<B", 1, "reserved"),
    (8, "<I", 100, "frame_count 100 cannot fit"), (16, "<Q", 600, "index_offset 600"),
    (24, "<Q", 10, "trailer_offset 10"),
])
def test_trailer_rejects(off, fmt, value, msg):
    b = _patched(Trailer(7, 519, 559, 1).pack(), off, fmt, value)
    with pytest.raises(ZVC69FormatError, match=msg):
        Trailer.unpack(b)


# -- motion header ---------------------------------------------------------------------

def test_motion_header_layout_and_round_trip():
    m = MotionHeader(precision=2, width=480, height=270)
    b = m.pack()
    assert b == bytes([2]) + (480).to_bytes(2, "little") + (270).to_bytes(2, "little")
    assert MotionHeader.unpack(b"xx" + b, 2) == m


@pytest.mark.parametrize("raw,msg", [
    (struct.pack("<BHH", 3, 10, 10), "precision 3"),
    (struct.pack("<BHH", 0, 0, 10), "width 0"),
    (struct.pack("<BHH", 0, 10, 2049), "height 2049"),
    (b"\x00\x01", "truncated"),
])
def test_motion_header_rejects(raw, msg):
    with pytest.raises(ZVC69FormatError, match=f"frame 4: motion header: {msg}"):
        MotionHeader.unpack(raw, where="frame 4: motion header")
