"""Raw YUV420P reader: whole-frame checks, truncation on pipes, argument validation."""

from __future__ import annotations

import io

import numpy as np
import pytest

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.raw import RawYUVReader


def _frames(w: int, h: int, n: int) -> list[Frame]:
    rng = np.random.default_rng(w * 1000 + h)
    ch, cw = Frame.chroma_shape(w, h)
    return [Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8), u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                  v=rng.integers(0, 256, (ch, cw), dtype=np.uint8), pts=i) for i in range(n)]


class _Pipe(io.RawIOBase):
    def __init__(self, data: bytes):
        self._d, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), 5, len(self._d) - self._pos)
        b[:n] = self._d[self._pos : self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize("w,h", [(8, 6), (33, 17), (1, 1)])
def test_reads_back_what_was_written(tmp_path, w, h):
    frames = _frames(w, h, 3)
    path = tmp_path / "a.yuv"
    path.write_bytes(b"".join(f.to_bytes() for f in frames))
    with RawYUVReader(path, w, h, 30000, 1001, range="full") as rd:
        assert (rd.width, rd.height, rd.fps_num, rd.fps_den, rd.frame_count) == (w, h, 30000, 1001, 3)
        got = list(rd)
    assert [g.to_bytes() for g in got] == [f.to_bytes() for f in frames]
    assert [g.pts for g in got] == [0, 1, 2]
    assert all(g.range == "full" and g.matrix == "bt601" for g in got)


def test_matrix_default_and_empty_file(tmp_path):
    path = tmp_path / "e.yuv"
    path.write_bytes(b"")
    rd = RawYUVReader(path, 1920, 1080, 25)
    assert rd.frame_count == 0 and rd.matrix == "bt709" and list(rd) == []


def test_not_whole_frames_says_check_size(tmp_path):
    path = tmp_path / "a.yuv"
    path.write_bytes(b"\0" * (2 * 72 + 10))
    with pytest.raises(InputError, match=r"154 bytes is not a whole number of 8x6 YUV420P frames.*--size"):
        RawYUVReader(path, 8, 6, 25)


def test_pipe_truncated_frame_named():
    frames = _frames(8, 6, 2)
    rd = RawYUVReader(_Pipe(b"".join(f.to_bytes() for f in frames)[:-3]), 8, 6, 25)
    assert rd.frame_count is None
    assert rd.read_frame().to_bytes() == frames[0].to_bytes()
    with pytest.raises(InputError, match="frame 1 is truncated: 69 of 72 bytes"):
        rd.read_frame()


@pytest.mark.parametrize("args,match", [
    ((0, 6, 25, 1), "size"), ((8, 99999, 25, 1), "size"), ((8, 6, 0, 1), "rate"), ((8, 6, 25, 0), "rate"),
])
def test_bad_arguments(args, match):
    with pytest.raises(InputError, match=match):
        RawYUVReader(io.BytesIO(b""), *args)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        RawYUVReader(tmp_path / "no.yuv", 8, 6, 25)
