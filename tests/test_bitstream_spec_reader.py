"""An independent reader written only from the spec tables and docs/FORMAT.md.

It imports nothing of zvc69_rt.bitstream's parsing code: struct offsets, a bitwise CRC-16
and zlib's CRC-32. It walks files our writer produced (to a seekable file and to a pipe),
including the index and the trailer, and must agree with what was written.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from zvc69_rt.bitstream import FileHeader, HeaderFlags, StreamWriter


def spec_crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)) & 0xFFFF
    return crc


def spec_read(buf: bytes) -> dict:
    """Parse a ZVC69 stream from the tables alone (little-endian everywhere)."""
    assert buf[0x00:0x06] == b"ZVC69\x00"
    h = {
        "version_major": buf[0x06], "version_minor": buf[0x07],
        "flags": struct.unpack_from("<I", buf, 0x08)[0],
        "width": struct.unpack_from("<H", buf, 0x0C)[0], "height": struct.unpack_from("<H", buf, 0x0E)[0],
        "framerate_num": struct.unpack_from("<H", buf, 0x10)[0],
        "framerate_den": struct.unpack_from("<H", buf, 0x12)[0],
        "total_frames": struct.unpack_from("<I", buf, 0x14)[0],
        "gop_size": buf[0x18], "quality_level": buf[0x19], "color_space": buf[0x1A], "bit_depth": buf[0x1B],
        "model_hash": buf[0x1C:0x20], "index_offset": struct.unpack_from("<Q", buf, 0x20)[0],
        "latent_channels": struct.unpack_from("<I", buf, 0x28)[0],
        "hyperprior_channels": struct.unpack_from("<I", buf, 0x2C)[0],
    }
    assert buf[0x30:0x40] == bytes(16)
    # Trailer (docs/FORMAT.md): the last 32 bytes.
    t_off = len(buf) - 32
    tr = buf[t_off:]
    assert tr[0:4] == b"ZVCT" and tr[4] == 1 and tr[5:8] == bytes(3)
    frame_count, crc32, index_offset, trailer_offset = struct.unpack_from("<IIQQ", tr, 8)
    assert trailer_offset == t_off
    assert zlib.crc32(buf[64:t_off]) == crc32
    if h["index_offset"]:
        assert h["index_offset"] == index_offset
    # Index table: 8-byte header + 16-byte entries.
    count, reserved = struct.unpack_from("<II", buf, index_offset)
    assert reserved == 0
    index = [struct.unpack_from("<IQI", buf, index_offset + 8 + 16 * i) for i in range(count)]
    assert index_offset + 8 + 16 * count == t_off
    # Frames: 32-byte header + frame_size bytes, from offset 64 up to the index.
    frames, pos = [], 64
    while pos < index_offset:
        assert buf[pos:pos + 4] == b"ZVC1"
        ftype, quality, flags, size, lh, lw, pts, checksum = struct.unpack_from("<BBHIIIQI", buf, pos + 4)
        assert flags == 0 or (flags == 1 and ftype == 0)  # the spec's reserved1: only REDUCED_RES, on I-frames
        data = buf[pos + 32:pos + 32 + size]
        assert len(data) == size
        assert checksum >> 16 == 0 and checksum == spec_crc16(data)
        frames.append({"offset": pos, "type": ftype, "quality": quality, "size": size, "lh": lh, "lw": lw,
                       "pts": pts, "data": data})
        pos += 32 + size
    assert pos == index_offset and len(frames) == frame_count
    return {"header": h, "frames": frames, "index": index, "frame_count": frame_count}


FRAMES = [(0, 60, 0, b"\x00" * 50), (1, 61, 1, bytes(range(200))), (2, 62, 2, b"B" * 7), (3, 63, 3, b""),
          (1, 64, 4, b"pp" * 300), (0, 65, 5, b"key2"), (1, 66, 6, b"\xff" * 33)]


class PipeSink(io.RawIOBase):
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += bytes(b)
        return len(b)


@pytest.mark.parametrize("to_pipe", [False, True])
def test_spec_reader_walks_writer_output(to_pipe):
    hdr = FileHeader(width=1280, height=720, framerate_num=25, framerate_den=1, gop_size=5, quality_level=64,
                     color_space=0, bit_depth=8, model_hash=b"\x9a\xbc\xde\xf0", latent_channels=192,
                     hyperprior_channels=128, flags=HeaderFlags.HAS_B_FRAMES | HeaderFlags.GMM_ENTROPY)
    sink = PipeSink() if to_pipe else io.BytesIO()
    w = StreamWriter(sink, hdr)
    for ftype, q, pts, data in FRAMES:
        w.write_frame(ftype, q, 45, 80, pts, data)
    w.close()
    buf = bytes(sink.buf) if to_pipe else sink.getvalue()
    got = spec_read(buf)
    h = got["header"]
    assert (h["version_major"], h["version_minor"]) == (1, 1)
    assert h["flags"] == 0b10111  # HAS_INDEX, HAS_B_FRAMES, HAS_TRAILER, GMM_ENTROPY
    assert (h["width"], h["height"], h["framerate_num"], h["framerate_den"]) == (1280, 720, 25, 1)
    assert (h["gop_size"], h["quality_level"], h["color_space"], h["bit_depth"]) == (5, 64, 0, 8)
    assert (h["model_hash"], h["latent_channels"], h["hyperprior_channels"]) == (b"\x9a\xbc\xde\xf0", 192, 128)
    if to_pipe:
        assert (h["total_frames"], h["index_offset"]) == (0, 0)
    else:
        assert h["total_frames"] == len(FRAMES) and h["index_offset"] > 64
    assert [(f["type"], f["quality"], f["pts"], f["data"]) for f in got["frames"]] == FRAMES
    assert all((f["lh"], f["lw"]) == (45, 80) for f in got["frames"])
    offsets = [f["offset"] for f in got["frames"]]
    # One entry per keyframe (I-frames 0 and 5), flags IS_KEYFRAME|IS_REFERENCE = 3.
    assert got["index"] == [(0, offsets[0], 3), (5, offsets[5], 3)]
