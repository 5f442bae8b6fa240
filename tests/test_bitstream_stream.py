"""StreamWriter / StreamReader / atomic_output: round trips, pipes vs files, random access, strict errors."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest

from zvc69_rt.bitstream import (
    FileHeader,
    HeaderFlags,
    IndexFlags,
    StreamReader,
    StreamWriter,
    atomic_output,
)
from zvc69_rt.codec.api import Packet
from zvc69_rt.errors import InputError, ZVC69FormatError

TYPES = [0, 1, 2, 3, 1, 0, 1, 2, 1, 0, 1]


class PipeSink(io.RawIOBase):
    """A write-only, non-seekable sink (like a pipe) that takes at most 7 bytes per write."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        n = min(len(b), 7)
        self.buf += bytes(b[:n])
        return n


class PipeSource(io.RawIOBase):
    """A read-only, non-seekable source returning short reads."""

    def __init__(self, data: bytes, chunk: int = 1000):
        self._b = io.BytesIO(data)
        self._chunk = chunk

    def readable(self):
        return True

    def readinto(self, m):
        d = self._b.read(min(len(m), self._chunk))
        m[: len(d)] = d
        return len(d)


def header(**kw) -> FileHeader:
    kw.setdefault("flags", HeaderFlags.HAS_B_FRAMES | HeaderFlags.INTEGERIZED)
    return FileHeader(width=320, height=136, model_hash=b"\x01\x02\x03\x04", **kw)


def payload(i: int) -> bytes:
    return bytes((i * 7 + k) & 0xFF for k in range(13 * i + 5))


def make_stream(types=TYPES, pipe: bool = False, **writer_kw) -> bytes:
    sink = PipeSink() if pipe else io.BytesIO()
    w = StreamWriter(sink, header(), **writer_kw)
    for i, t in enumerate(types):
        w.write_frame(t, 40 + i, 9, 20, 100 + i, payload(i))
    w.close()
    return bytes(sink.buf) if pipe else sink.getvalue()


def refresh_trailer_crc(b: bytearray) -> bytearray:
    """Recompute the trailer CRC-32 after a test mutated the body on purpose."""
    t_off = len(b) - 32
    struct.pack_into("<I", b, t_off + 12, zlib.crc32(bytes(b[64:t_off])))
    return b


def with_index(data: bytes, index: bytes) -> bytes:
    """Replace the index table (after the last frame) and rebuild the trailer around it."""
    at = FileHeader.unpack(data).index_offset
    body = data[64:at] + index
    trailer = bytearray(data[-32:])
    struct.pack_into("<IQQ", trailer, 12, zlib.crc32(body), at, 64 + len(body))
    return data[:64] + body + bytes(trailer)


def read_all(data: bytes, mode: str) -> StreamReader:
    """Open and fully exercise a stream: 'random' (index via seeks), 'walk' (file), 'pipe'."""
    if mode == "random":
        r = StreamReader(io.BytesIO(data))
        r.keyframes()
        return r
    r = StreamReader(PipeSource(data) if mode == "pipe" else io.BytesIO(data))
    for _ in r.iter_frames():
        pass
    r.keyframes()
    return r


MODES = ["random", "walk", "pipe"]


# -- round trips -----------------------------------------------------------------------

@pytest.mark.parametrize("pipe_out", [False, True])
@pytest.mark.parametrize("pipe_in", [False, True])
def test_round_trip_frames(pipe_out, pipe_in):
    data = make_stream(pipe=pipe_out)
    r = StreamReader(PipeSource(data) if pipe_in else io.BytesIO(data))
    assert r.seekable is not pipe_in
    got = list(r.iter_frames())
    assert [fh.frame_type for fh, _ in got] == TYPES
    assert [d for _, d in got] == [payload(i) for i in range(len(TYPES))]
    assert [fh.pts for fh, _ in got] == [100 + i for i in range(len(TYPES))]
    assert [fh.quality_level for fh, _ in got] == [40 + i for i in range(len(TYPES))]
    assert all((fh.latent_height, fh.latent_width) == (9, 20) for fh, _ in got)
    assert r.verified and r.frame_count == len(TYPES) and r.stream_size == len(data)
    assert [(e.frame_number, e.flags) for e in r.index.entries] == [(0, 3), (5, 3), (9, 3)]
    assert r.trailer.frame_count == len(TYPES)


def test_pipe_output_differs_from_file_only_in_patched_header_fields():
    f, p = make_stream(), make_stream(pipe=True)
    assert len(f) == len(p)
    hf, hp = FileHeader.unpack(f), FileHeader.unpack(p)
    assert (hp.total_frames, hp.index_offset) == (0, 0)
    assert hf.total_frames == len(TYPES) and hf.index_offset == len(f) - 32 - (8 + 3 * 16)
    assert hf.flags == hp.flags == HeaderFlags.HAS_B_FRAMES | HeaderFlags.INTEGERIZED | HeaderFlags.HAS_INDEX \
        | HeaderFlags.HAS_TRAILER
    diff = [i for i in range(len(f)) if f[i] != p[i]]
    assert diff and all(0x14 <= i < 0x18 or 0x20 <= i < 0x28 for i in diff)


def test_write_packet_and_offsets():
    buf = io.BytesIO()
    w = StreamWriter(buf, header())
    off0 = w.write_packet(Packet(frame_type=0, pts=0, quality=57, latent_height=9, latent_width=20, data=b"abc"))
    off1 = w.write_frame(1, 57, 9, 20, 1, b"defg")
    w.close()
    assert (off0, off1) == (64, 64 + 32 + 3)
    r = StreamReader(io.BytesIO(buf.getvalue()))
    assert [d for _, d in r.iter_frames()] == [b"abc", b"defg"]


def test_empty_stream_round_trips():
    data = make_stream(types=[])
    for mode in MODES:
        r = read_all(data, mode)
        assert r.keyframes() == []
    r = StreamReader(io.BytesIO(data))
    assert list(r.iter_frames()) == [] and r.frame_count == 0


def test_index_references_option_indexes_p_and_bbi():
    data = make_stream(index_references=True)
    for mode in MODES:
        r = read_all(data, mode)
        want = [(i, 3 if t == 0 else 2) for i, t in enumerate(TYPES) if t != 2]
        assert [(e.frame_number, int(e.flags)) for e in r.index.entries] == want
        assert [e.frame_number for e in r.keyframes()] == [0, 5, 9]


def test_stream_at_nonzero_base_offset():
    buf = io.BytesIO()
    buf.write(b"PREFIX" * 5)
    w = StreamWriter(buf, header())
    w.write_frame(0, 50, 9, 20, 0, b"x" * 10)
    w.close()
    buf.seek(30)
    r = StreamReader(buf)
    assert r.header.total_frames == 1
    assert [d for _, d in r.iter_frames()] == [b"x" * 10]


@pytest.mark.parametrize("mode", ["wb", "ab"])
def test_writer_on_real_files_incl_append_mode(tmp_path, mode):
    """A file opened for appending cannot be patched (writes ignore seeks): treated like a pipe."""
    p = tmp_path / "s.zvc"
    with open(p, mode) as f:
        w = StreamWriter(f, header())
        w.write_frame(0, 50, 9, 20, 0, b"x" * 10)
        w.write_frame(1, 50, 9, 20, 1, b"y" * 10)
        w.close()
    data = p.read_bytes()
    h = FileHeader.unpack(data)
    assert (h.total_frames, h.index_offset != 0) == ((2, True) if mode == "wb" else (0, False))
    r = read_all(data, "walk")
    assert r.frame_count == 2 and r.stream_size == len(data)


def test_writer_context_manager_and_idempotent_close():
    buf = io.BytesIO()
    with StreamWriter(buf, header()) as w:
        w.write_frame(0, 50, 9, 20, 0, b"x")
    n = len(buf.getvalue())
    w.close()
    assert len(buf.getvalue()) == n
    with pytest.raises(ZVC69FormatError, match="frame 1: the writer is already closed"):
        w.write_frame(1, 50, 9, 20, 1, b"y")


# -- random access ---------------------------------------------------------------------

@pytest.mark.parametrize("pipe_out", [False, True])
def test_seek_keyframe(pipe_out):
    data = make_stream(pipe=pipe_out)
    r = StreamReader(io.BytesIO(data))
    keys = r.keyframes()
    assert [k.frame_number for k in keys] == [0, 5, 9]
    assert all(k.flags == IndexFlags.IS_KEYFRAME | IndexFlags.IS_REFERENCE for k in keys)
    e = r.seek_keyframe(7)
    assert e.frame_number == 5
    got = list(r.iter_frames())
    assert [fh.pts for fh, _ in got] == [100 + i for i in range(5, len(TYPES))]
    assert [d for _, d in got] == [payload(i) for i in range(5, len(TYPES))]
    assert r.seek_keyframe(9).frame_number == 9
    assert [fh.pts for fh, _ in r.iter_frames()] == [109, 110]
    assert [fh.pts for fh, _ in r.iter_frames()][:2] == [100, 101]  # without a seek: from the start
    with pytest.raises(InputError, match="frame 11 is outside"):
        r.seek_keyframe(11)


def test_pipe_reader_limits():
    data = make_stream(pipe=True)
    r = StreamReader(PipeSource(data))
    with pytest.raises(InputError, match="seekable"):
        r.seek_keyframe(0)
    assert [k.frame_number for k in r.keyframes()] == [0, 5, 9]  # drains and verifies the stream
    assert r.verified
    with pytest.raises(InputError, match="already read"):
        list(r.iter_frames())


def test_reader_opens_path_and_closes(tmp_path):
    p = tmp_path / "a.zvc"
    p.write_bytes(make_stream())
    with StreamReader(str(p)) as r:
        assert len(list(r.iter_frames())) == len(TYPES)
    assert r._f.closed


# -- writer refuses to produce malformed streams ---------------------------------------

def test_writer_refusals():
    w = StreamWriter(io.BytesIO(), header())
    with pytest.raises(ZVC69FormatError, match="frame 0: frame_type P must be I"):
        w.write_frame(1, 50, 9, 20, 0, b"x")
    w.write_frame(0, 50, 9, 20, 0, b"x")
    with pytest.raises(ZVC69FormatError, match="frame 1: quality_level 101"):
        w.write_frame(1, 101, 9, 20, 1, b"x")
    with pytest.raises(ZVC69FormatError, match="frame_type 7"):
        w.write_frame(7, 50, 9, 20, 1, b"x")
    w2 = StreamWriter(io.BytesIO(), header(flags=HeaderFlags(0)))
    w2.write_frame(0, 50, 9, 20, 0, b"x")
    with pytest.raises(ZVC69FormatError, match="frame 1: frame_type B needs HAS_B_FRAMES"):
        w2.write_frame(2, 50, 9, 20, 1, b"x")


# -- strict parsing: each malformation names frame and field ---------------------------

def _frame_offsets(data: bytes) -> list[int]:
    r = StreamReader(io.BytesIO(data))
    return [rec.offset for rec in r.iter_records()]


def _mutate(data: bytes, off: int, fmt: str, value, fix_crc: bool = True) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(refresh_trailer_crc(b) if fix_crc else b)


GOOD = make_stream()
GOOD_PIPE = make_stream(pipe=True)
OFFS = _frame_offsets(GOOD)
INDEX_AT = FileHeader.unpack(GOOD).index_offset


def _case(name):
    d = GOOD
    if name == "bad file magic":
        return _mutate(d, 0, "<6s", b"ZVC68\0"), r"file header: magic"
    if name == "unknown major version":
        return _mutate(d, 6, "<B", 2), r"file header: version_major 2"
    if name == "width out of range":
        return _mutate(d, 0x0C, "<H", 8200), r"file header: width 8200"
    if name == "height out of range":
        return _mutate(d, 0x0E, "<H", 10), r"file header: height 10"
    if name == "header reserved nonzero":
        return _mutate(d, 0x35, "<B", 9), r"file header: reserved"
    if name == "absurd total_frames":
        return _mutate(d, 0x14, "<I", 10**9), r"total_frames 1000000000"
    if name == "header index_offset disagrees":
        return _mutate(d, 0x20, "<Q", OFFS[3]), r"index_offset"
    if name == "bad frame magic":
        return _mutate(d, OFFS[4], "<4s", b"ZVC2"), r"frame 4: magic"
    if name == "frame flags unknown":
        return _mutate(d, OFFS[2] + 6, "<H", 4), r"frame 2: frame_flags 0x0004"
    if name == "frame_size beyond file":
        return _mutate(d, OFFS[6] + 8, "<I", 50_000_000), r"frame 6: .*(frame_size|truncated|magic)"
    if name == "frame_size above cap":
        return _mutate(d, OFFS[6] + 8, "<I", 2**32 - 1), r"frame 6: frame_size 4294967295"
    if name == "wrong crc":
        return _mutate(d, OFFS[3] + 32 + 2, "<B", d[OFFS[3] + 34] ^ 0x10), r"frame 3: checksum"
    if name == "crc high half nonzero":
        return _mutate(d, OFFS[1] + 0x1E, "<H", 1), r"frame 1: checksum"
    if name == "latent dimension":
        return _mutate(d, OFFS[5] + 0x0C, "<I", 0), r"frame 5: latent_height 0"
    if name == "first frame not I":
        return _mutate(d, OFFS[0] + 4, "<B", 1), r"frame 0: frame_type"
    if name == "index reserved nonzero":
        return _mutate(d, INDEX_AT + 4, "<I", 1), r"index: reserved"
    if name == "absurd index count":
        return _mutate(d, INDEX_AT, "<I", 2**24 - 1), r"index: entry_count"
    if name == "index outside file":
        return _mutate(d, INDEX_AT + 8 + 16 + 4, "<Q", 10**12), r"index entry 1: byte_offset 1000000000000"
    if name == "index not at frame start":
        return _mutate(d, INDEX_AT + 8 + 16 + 4, "<Q", OFFS[5] + 1), r"index entry 1: byte_offset"
    if name == "index points at wrong frame":
        return _mutate(d, INDEX_AT + 8 + 16 + 4, "<Q", OFFS[4]), r"index entry 1: .*(frame_number|flags)"
    if name == "index misses a keyframe":
        entries = d[INDEX_AT + 8:INDEX_AT + 8 + 32]  # drop the entry of frame 9
        return with_index(d, struct.pack("<II", 2, 0) + entries), r"index: frame 9 is an I-frame without"
    if name == "trailer crc":
        return _mutate(d, len(d) - 20, "<I", 0, fix_crc=False), r"trailer: crc32"
    if name == "trailer frame_count":
        return _mutate(d, len(d) - 24, "<I", 3), r"frame_count 3"
    if name == "data after trailer":
        return d + b"\0", r"trailer"
    if name == "truncated":
        return d[: OFFS[7] + 40], r"(frame 7|trailer)"
    if name == "truncated header":
        return d[:40], r"file header: (needs 64 bytes, only 40 left|truncated: got 40 of 64)"
    if name == "empty":
        return b"", r"file header"
    raise AssertionError(name)


CASES = [
    "bad file magic", "unknown major version", "width out of range", "height out of range",
    "header reserved nonzero", "absurd total_frames", "header index_offset disagrees", "bad frame magic",
    "frame flags unknown", "frame_size beyond file", "frame_size above cap", "wrong crc",
    "crc high half nonzero", "latent dimension", "first frame not I", "index reserved nonzero",
    "absurd index count", "index outside file", "index not at frame start", "index points at wrong frame",
    "index misses a keyframe", "trailer crc", "trailer frame_count", "data after trailer", "truncated",
    "truncated header", "empty",
]
WALK_ONLY = {"bad frame magic", "frame flags unknown", "frame_size beyond file", "frame_size above cap",
             "wrong crc", "crc high half nonzero", "latent dimension", "first frame not I", "trailer crc",
             "index misses a keyframe"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_malformed_streams_raise_format_error_naming_the_field(name, mode):
    data, pattern = _case(name)
    if mode == "random" and name in WALK_ONLY:
        # random access reads only the header, trailer, index and the indexed frame headers;
        # the error shows on the full walk. Where the mutation touches an indexed frame it shows here too.
        try:
            read_all(data, "random")
        except ZVC69FormatError:
            pass
        mode = "walk"
    with pytest.raises(ZVC69FormatError, match=pattern):
        read_all(data, mode)


def test_stream_without_trailer_or_index_and_its_truncation():
    """An independent writer may omit both (flags clear): the reader walks to EOF."""
    b = bytearray(GOOD[:INDEX_AT])
    struct.pack_into("<I", b, 8, int(HeaderFlags.HAS_B_FRAMES))
    struct.pack_into("<Q", b, 0x20, 0)
    for mode in ("walk", "pipe"):
        r = read_all(bytes(b), mode)
        assert r.frame_count == len(TYPES) and r.index is None and r.trailer is None
        assert r.keyframes() == []
    cut = bytes(b[: OFFS[8] + 40])
    with pytest.raises(ZVC69FormatError, match=r"frame 8: frame_size \d+ exceeds the \d+ bytes left"):
        read_all(cut, "walk")
    with pytest.raises(ZVC69FormatError, match=r"frame 8: data .*truncated"):
        read_all(cut, "pipe")


def test_b_frame_without_flag_is_rejected():
    b = bytearray(GOOD)
    struct.pack_into("<I", b, 8, int(HeaderFlags.HAS_INDEX | HeaderFlags.HAS_TRAILER))
    with pytest.raises(ZVC69FormatError, match="frame 2: frame_type B but the file header flags lack HAS_B_FRAMES"):
        read_all(bytes(b), "walk")


def test_index_before_frames_is_accepted():
    """The spec's diagram puts the index right after the header; a writer may do that."""
    frames = GOOD[64:INDEX_AT]
    index = bytearray(GOOD[INDEX_AT:-32])
    count = struct.unpack_from("<I", index, 0)[0]
    shift = len(index)
    for i in range(count):
        fn, off, fl = struct.unpack_from("<IQI", index, 8 + 16 * i)
        struct.pack_into("<IQI", index, 8 + 16 * i, fn, off + shift, fl)
    body = bytes(index) + frames
    hdr = bytearray(GOOD[:64])
    struct.pack_into("<Q", hdr, 0x20, 64)
    trailer = bytearray(GOOD[-32:])
    struct.pack_into("<IQQ", trailer, 12, zlib.crc32(body), 64, 64 + len(body))
    data = bytes(hdr) + body + bytes(trailer)
    for mode in MODES:
        r = read_all(data, mode)
        assert [k.frame_number for k in r.keyframes()] == [0, 5, 9]
    r = StreamReader(io.BytesIO(data))
    r.seek_keyframe(6)
    assert [d for _, d in r.iter_frames()] == [payload(i) for i in range(5, len(TYPES))]


# -- atomic_output ---------------------------------------------------------------------

def test_atomic_output_success(tmp_path):
    p = tmp_path / "out.zvc"
    with atomic_output(p) as f:
        f.write(b"hello")
        assert not p.exists()
    assert p.read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["out.zvc"]
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_atomic_output_failure_leaves_nothing_and_keeps_old_file(tmp_path):
    p = tmp_path / "out.zvc"
    with pytest.raises(RuntimeError), atomic_output(p) as f:
        f.write(b"partial")
        raise RuntimeError("encoder died")
    assert os.listdir(tmp_path) == []
    p.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(p) as f:
        w = StreamWriter(f, header())
        w.write_frame(0, 50, 9, 20, 0, b"x")
        raise KeyboardInterrupt
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.zvc"]


def test_atomic_output_dash_is_stdout(monkeypatch):
    class Out:
        buffer = io.BytesIO()

    monkeypatch.setattr("sys.stdout", Out)
    with atomic_output("-") as f:
        w = StreamWriter(f, header())
        w.write_frame(0, 50, 9, 20, 0, b"x")
        w.close()
    assert f is Out.buffer
    assert FileHeader.unpack(Out.buffer.getvalue()).total_frames == 1  # BytesIO seeks: header patched
