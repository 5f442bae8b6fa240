"""Y4M reader/writer: round trips, interop with FFmpeg (PyAV) both ways, strict error paths."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.y4m import Y4MReader, Y4MWriter


def _frames(w: int, h: int, n: int, seed: int = 0, crange: str = "limited") -> list[Frame]:
    rng = np.random.default_rng(seed)
    ch, cw = Frame.chroma_shape(w, h)
    return [Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8), u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                  v=rng.integers(0, 256, (ch, cw), dtype=np.uint8), pts=i, range=crange) for i in range(n)]


def _y4m_bytes(header: str, frames: list[Frame], frame_line: bytes = b"FRAME\n") -> bytes:
    return header.encode() + b"\n" + b"".join(frame_line + f.to_bytes() for f in frames)


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream that returns short reads, like a pipe."""

    def __init__(self, data: bytes, chunk: int = 7):
        self._d, self._pos, self._chunk = data, 0, chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._chunk, len(self._d) - self._pos)
        b[:n] = self._d[self._pos : self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize("w,h", [(16, 16), (33, 17), (1, 1), (5, 2)])
@pytest.mark.parametrize("rng_name", ["limited", "full"])
def test_write_read_round_trip(tmp_path, w, h, rng_name):
    frames = _frames(w, h, 3, seed=w * h, crange=rng_name)
    path = tmp_path / "a.y4m"
    with Y4MWriter(path, w, h, 30000, 1001, range=rng_name) as wr:
        for f in frames:
            wr.write(f)
    with Y4MReader(path) as rd:
        assert (rd.width, rd.height, rd.fps_num, rd.fps_den, rd.range) == (w, h, 30000, 1001, rng_name)
        assert rd.frame_count == 3
        got = list(rd)
    assert len(got) == 3
    for a, b in zip(frames, got):
        assert a.to_bytes() == b.to_bytes() and b.pts == a.pts and b.range == rng_name


def test_header_layout():
    buf = io.BytesIO()
    Y4MWriter(buf, 33, 17, 25, 1, range="full")
    assert buf.getvalue() == b"YUV4MPEG2 W33 H17 F25:1 Ip A1:1 C420jpeg XCOLORRANGE=FULL\n"
    buf = io.BytesIO()
    Y4MWriter(buf, 4, 2, 24000, 1001)
    assert buf.getvalue() == b"YUV4MPEG2 W4 H2 F24000:1001 Ip A1:1 C420jpeg\n"


@pytest.mark.parametrize("w,h,rng_name", [(33, 17, "limited"), (64, 36, "full")])
def test_ffmpeg_reads_our_y4m_exactly(tmp_path, w, h, rng_name):
    av = pytest.importorskip("av")
    frames = _frames(w, h, 3, seed=1, crange=rng_name)
    path = tmp_path / "ours.y4m"
    with Y4MWriter(str(path), w, h, 25, 1, range=rng_name) as wr:
        for f in frames:
            wr.write(f)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (w, h)
        assert s.average_rate == 25
        got = list(c.decode(s))
    assert len(got) == 3
    for ours, theirs in zip(frames, got):
        assert theirs.format.name in ("yuv420p", "yuvj420p")
        assert int(theirs.color_range) == (2 if rng_name == "full" else 0)
        for plane, ref in zip(theirs.planes, (ours.y, ours.u, ours.v)):
            a = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            assert np.array_equal(a, ref)


@pytest.mark.parametrize("pix_fmt,expect_range", [("yuv420p", "limited"), ("yuvj420p", "full")])
def test_we_read_ffmpeg_y4m_exactly(tmp_path, pix_fmt, expect_range):
    av = pytest.importorskip("av")
    w, h = 35, 19
    path = tmp_path / "ffmpeg.y4m"
    frames = _frames(w, h, 4, seed=2)
    with av.open(str(path), "w", format="yuv4mpegpipe") as c:
        s = c.add_stream("rawvideo", rate=30)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        for i, f in enumerate(frames):
            af = av.VideoFrame(w, h, pix_fmt)
            for plane, src in zip(af.planes, (f.y, f.u, f.v)):
                np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = src
            af.pts = i
            for pkt in s.encode(af):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    rd = Y4MReader(str(path))
    assert (rd.width, rd.height, rd.fps_num, rd.fps_den, rd.range) == (w, h, 30, 1, expect_range)
    got = list(rd)
    rd.close()
    assert [g.to_bytes() for g in got] == [f.to_bytes() for f in frames]


def test_stdin_to_stdout_via_dash(tmp_path):
    frames = _frames(9, 7, 2, seed=3)
    data = _y4m_bytes("YUV4MPEG2 W9 H7 F25:1 C420jpeg", frames)
    code = ("from zvc69_rt.io.y4m import Y4MReader, Y4MWriter\n"
            "r = Y4MReader('-')\n"
            "w = Y4MWriter('-', r.width, r.height, r.fps_num, r.fps_den)\n"
            "[w.write(f) for f in r]\nw.close()\n")
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60, check=True)
    rd = Y4MReader(io.BytesIO(out.stdout))
    assert [g.to_bytes() for g in rd] == [f.to_bytes() for f in frames]


def test_accepts_variants_and_ignores_unknown_params():
    frames = _frames(6, 4, 2, seed=4)
    hdr = "YUV4MPEG2 W6 H4 F50:2 I? A0:0 C420mpeg2 XYSCSS=420MPEG2 Zunknown XCOLORRANGE=LIMITED XFOO=bar"
    rd = Y4MReader(_Pipe(_y4m_bytes(hdr, frames, frame_line=b"FRAME Ixyz XBAR=1\n")))
    assert (rd.fps_num, rd.fps_den, rd.colorspace, rd.range) == (50, 2, "420mpeg2", "limited")
    assert rd.frame_count is None  # a pipe: unknown
    assert [g.to_bytes() for g in rd] == [f.to_bytes() for f in frames]
    for c in ("420jpeg", "420paldv", "420"):
        assert Y4MReader(io.BytesIO(f"YUV4MPEG2 W2 H2 F1:1 C{c}\n".encode())).colorspace == c
    # C absent means 420jpeg
    assert Y4MReader(io.BytesIO(b"YUV4MPEG2 W2 H2 F1:1\n")).colorspace == "420jpeg"


def test_matrix_default_follows_height():
    assert Y4MReader(io.BytesIO(b"YUV4MPEG2 W720 H576 F25:1\n")).matrix == "bt601"
    assert Y4MReader(io.BytesIO(b"YUV4MPEG2 W1920 H1080 F25:1\n")).matrix == "bt709"


@pytest.mark.parametrize("c", ["444", "422", "411", "mono", "420p10", "444alpha", "420p12"])
def test_rejects_other_pixel_layouts_with_conversion_hint(c):
    with pytest.raises(InputError, match=rf"C{c} is not supported.*ffmpeg .*-pix_fmt yuv420p"):
        Y4MReader(io.BytesIO(f"YUV4MPEG2 W4 H4 F25:1 C{c}\n".encode()))


@pytest.mark.parametrize("i", ["t", "b", "m"])
def test_rejects_interlaced(i):
    with pytest.raises(InputError, match="interlaced.*deinterlace"):
        Y4MReader(io.BytesIO(f"YUV4MPEG2 W4 H4 F25:1 I{i} C420jpeg\n".encode()))


@pytest.mark.parametrize("header,match", [
    (b"", "empty input"),
    (b"RIFF....WAVE", "not a Y4M stream"),
    (b"YUV4MPEG2W4", "not a Y4M stream"),
    (b"YUV4MPEG2 W4 H4 F25:1", "truncated"),
    (b"YUV4MPEG2 H4 F25:1\n", "lacks W"),
    (b"YUV4MPEG2 W4 F25:1\n", "lacks H"),
    (b"YUV4MPEG2 W4 H4\n", "lacks F"),
    (b"YUV4MPEG2 W0 H4 F25:1\n", "W'0'"),
    (b"YUV4MPEG2 W99999 H4 F25:1\n", "W'99999'"),
    (b"YUV4MPEG2 W-4 H4 F25:1\n", "W'-4'"),
    (b"YUV4MPEG2 W4 H4x F25:1\n", "H'4x'"),
    (b"YUV4MPEG2 W4 H4 F25\n", "F'25'"),
    (b"YUV4MPEG2 W4 H4 F0:1\n", "positive"),
    (b"YUV4MPEG2 W4 H4 F25:0\n", "positive"),
    (b"YUV4MPEG2 W4 H4 F25:1 Axy\n", "A'xy'"),
    (b"YUV4MPEG2 W4 H4 F25:1 XCOLORRANGE=WIDE\n", "XCOLORRANGE"),
    (b"YUV4MPEG2 W4 H4 F25:1 \xff\n", "non-ASCII"),
    (b"YUV4MPEG2 W4 H4 F25:1 " + b"Xpad" * 2000 + b"\n", "longer than 4096"),
])
def test_header_errors(header, match):
    with pytest.raises(InputError, match=match):
        Y4MReader(io.BytesIO(header))


def test_truncated_last_frame_names_the_frame(tmp_path):
    frames = _frames(8, 6, 3, seed=5)
    data = _y4m_bytes("YUV4MPEG2 W8 H6 F25:1", frames)
    for cut in (1, 40):  # inside the planes of frame 2
        for src in (io.BytesIO(data[:-cut]), _Pipe(data[:-cut])):
            rd = Y4MReader(src)
            assert rd.read_frame() is not None and rd.read_frame() is not None
            with pytest.raises(InputError, match="frame 2 is truncated"):
                rd.read_frame()
    marker_cut = len(data) - 72 - 3  # 'FRA' of frame 2's marker survives
    with pytest.raises(InputError, match="frame 2 is truncated inside its FRAME marker"):
        list(Y4MReader(io.BytesIO(data[:marker_cut])))
    path = tmp_path / "t.y4m"
    path.write_bytes(data[:-1])
    rd = Y4MReader(path)
    assert rd.frame_count is None  # not a whole number of frames
    with pytest.raises(InputError, match="frame 2"):
        list(rd)
    rd.close()


def test_bad_frame_marker_and_overlong_frame_line():
    frames = _frames(4, 2, 1)
    with pytest.raises(InputError, match="frame 0: expected a 'FRAME' marker"):
        list(Y4MReader(io.BytesIO(_y4m_bytes("YUV4MPEG2 W4 H2 F25:1", frames, frame_line=b"FRAMX\n"))))
    with pytest.raises(InputError, match="frame 1: expected a 'FRAME' marker"):
        list(Y4MReader(io.BytesIO(_y4m_bytes("YUV4MPEG2 W4 H2 F25:1", frames) + b"garbage!" * 4)))
    long_line = b"FRAME " + b"X" * 5000 + b"\n"
    with pytest.raises(InputError, match="frame 0 FRAME line is longer than 1024"):
        list(Y4MReader(io.BytesIO(_y4m_bytes("YUV4MPEG2 W4 H2 F25:1", frames, frame_line=long_line))))


def test_huge_declared_frame_is_not_allocated_up_front():
    """W/H say 16384x16384 (402 MB a frame) but 10 bytes follow: fail fast, small memory."""
    data = b"YUV4MPEG2 W16384 H16384 F25:1\nFRAME\n" + b"\0" * 10
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="frame 0 is truncated: 10 of 402653184 bytes"):
            list(Y4MReader(_Pipe(data, chunk=1 << 20)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_missing_file_and_bad_source_type(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Y4MReader(tmp_path / "nope.y4m")
    with pytest.raises(InputError, match="folder"):
        Y4MReader(tmp_path)
    with pytest.raises(InputError, match="binary"):
        Y4MReader(io.StringIO("YUV4MPEG2 W2 H2 F1:1\n"))


def test_writer_rejects_mismatched_frames():
    wr = Y4MWriter(io.BytesIO(), 8, 6, 25, 1)
    with pytest.raises(InputError, match="is 6x6, the Y4M stream is 8x6"):
        wr.write(_frames(6, 6, 1)[0])
    with pytest.raises(InputError, match="full range"):
        wr.write(_frames(8, 6, 1, crange="full")[0])
    bad = _frames(8, 6, 1)[0]
    bad.u = bad.u[:, :2]
    with pytest.raises(InputError, match="plane u"):
        wr.write(bad)
    for args in ((0, 6, 25, 1), (8, 6, 0, 1), (8, 6, 25, 0)):
        with pytest.raises(InputError):
            Y4MWriter(io.BytesIO(), *args)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(0, 80))
def test_mutated_streams_raise_only_input_error(junk, pos):
    """Random bytes spliced into a valid stream: either it reads, or InputError; nothing else."""
    good = _y4m_bytes("YUV4MPEG2 W4 H2 F25:1 C420jpeg", _frames(4, 2, 2))
    data = good[:pos] + junk + good[pos + len(junk) // 2 :]
    try:
        for f in Y4MReader(io.BytesIO(data)):
            f.validate()
    except InputError:
        pass
