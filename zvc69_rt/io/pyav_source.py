"""Any container/codec PyAV (FFmpeg) can decode (mp4, mkv, webm, mov, ...) as 8-bit YUV420P Frames.

Frames in yuv420p/yuvj420p are taken as they are; every other pixel format (4:2:2, 4:4:4,
10-bit, RGB, ...) is converted by swscale to yuv420p keeping the colour range. The matrix
and range come from the stream where it signals them; unsignalled range is limited (full
for the yuvj* formats) and unsignalled matrix follows :func:`default_matrix` (BT.709 from
720 lines up, BT.601 below). ``pts`` counts decoded frames from 0 (the codec assumes a
constant rate, the stream's average rate); the source timestamp is kept in ``meta['time']``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Self

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame, Matrix, Range
from zvc69_rt.io.color import default_matrix
from zvc69_rt.io.y4m import MAX_DIM

# AVColorSpace values -> our matrices (FCC and SMPTE 240M are close relatives of 601/709)
_MATRIX = {1: "bt709", 4: "bt601", 5: "bt601", 6: "bt601", 7: "bt709"}
_DIRECT = ("yuv420p", "yuvj420p")


def _plane(plane) -> np.ndarray:
    a = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return np.ascontiguousarray(a[:, : plane.width])


class PyAVReader:
    """Decode the first video stream of a file PyAV opens; iterate Frames.

    Attributes: ``width``, ``height``, ``fps_num``, ``fps_den``, ``frame_count`` (from the
    container, None when it does not say), ``codec`` (decoder name).
    """

    def __init__(self, path: str | os.PathLike):
        import av

        self.name = os.fspath(path)
        if "://" not in self.name and not os.path.exists(self.name):
            raise InputError(f"input file {self.name!r} does not exist")
        try:
            self._container = av.open(self.name)
        except av.FFmpegError as exc:
            raise InputError(
                f"{self.name}: FFmpeg cannot open it ({exc.strerror or exc}); is it a video file? "
                "Raw .yuv needs --size WxH --fps N"
            ) from None
        try:
            if not self._container.streams.video:
                raise InputError(f"{self.name}: the file has no video stream")
            self._stream = s = self._container.streams.video[0]
            s.thread_type = "AUTO"
            cc = s.codec_context
            self.width, self.height = int(cc.width), int(cc.height)
            if not (1 <= self.width <= MAX_DIM and 1 <= self.height <= MAX_DIM):
                raise InputError(f"{self.name}: video size {self.width}x{self.height} is outside 1..{MAX_DIM}")
            rate = s.average_rate or s.guessed_rate or s.base_rate
            if not rate or rate <= 0:
                raise InputError(
                    f"{self.name}: the video stream has no frame rate; remux it with one, e.g. "
                    "ffmpeg -i INPUT -r 25 -pix_fmt yuv420p OUTPUT.y4m"
                )
            self.fps_num, self.fps_den = int(rate.numerator), int(rate.denominator)
            self.frame_count: int | None = int(s.frames) or None
            self.codec = cc.name
        except BaseException:
            self._container.close()
            raise
        self._warned = False
        self._index = 0

    def _colour(self, f) -> tuple[Matrix, Range]:
        cr = int(f.color_range or 0)
        rng: Range = "full" if cr == 2 or (cr == 0 and f.format.name.startswith("yuvj")) else "limited"
        cs = int(f.colorspace or 0)
        matrix = _MATRIX.get(cs)
        if matrix is None:
            if cs not in (0, 2) and not self._warned:  # 2 = unspecified
                warnings.warn(f"{self.name}: colour matrix {cs} (e.g. BT.2020) is not supported; "
                              f"treating it as {default_matrix(self.width, self.height)}", stacklevel=3)
                self._warned = True
            matrix = default_matrix(self.width, self.height)
        return matrix, rng

    def _convert(self, f) -> Frame:
        n = self._index
        if (f.width, f.height) != (self.width, self.height):
            raise InputError(
                f"{self.name}: frame {n} is {f.width}x{f.height}, the stream started as {self.width}x{self.height}; "
                "the codec needs one size: scale it, e.g. ffmpeg -i INPUT -vf scale=W:H OUTPUT.y4m"
            )
        matrix, rng = self._colour(f)
        if f.format.name not in _DIRECT:
            sws_range = 2 if rng == "full" else 1
            f = f.reformat(format="yuv420p", src_color_range=sws_range, dst_color_range=sws_range)
        frame = Frame(y=_plane(f.planes[0]), u=_plane(f.planes[1]), v=_plane(f.planes[2]), pts=n,
                      matrix=matrix, range=rng, meta={"time": f.time})
        frame.validate()
        return frame

    def __iter__(self) -> Iterator[Frame]:
        import av

        try:
            for f in self._container.decode(self._stream):
                yield self._convert(f)
                self._index += 1
        except av.FFmpegError as exc:
            raise InputError(f"{self.name}: decoding failed at frame {self._index}: {exc.strerror or exc}") from None
        finally:
            self.close()

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
