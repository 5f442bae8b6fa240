"""Headerless YUV420P (I420) files: planes Y, U, V of each frame back to back.

Nothing in the file says its size or rate, so the caller supplies both (``--size WxH
--fps N``). A seekable file must hold a whole number of frames (checked at open, the usual
sign of a wrong ``--size``); on a pipe a short last frame raises :class:`InputError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Self

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame, Matrix, Range
from zvc69_rt.io.color import default_matrix
from zvc69_rt.io.streams import Source, open_input, read_exact, remaining_bytes
from zvc69_rt.io.y4m import MAX_DIM, MAX_FPS_TERM


class RawYUVReader:
    """Iterate 8-bit YUV420P frames of a raw file (path, '-' for stdin, or a binary file object)."""

    def __init__(self, source: Source, width: int, height: int, fps_num: int, fps_den: int = 1,
                 range: Range = "limited", matrix: Matrix | None = None):
        if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
            raise InputError(f"raw YUV frame size {width}x{height} is outside 1..{MAX_DIM}; check --size WxH")
        if not (1 <= fps_num < MAX_FPS_TERM and 1 <= fps_den < MAX_FPS_TERM):
            raise InputError(f"raw YUV frame rate {fps_num}/{fps_den} must have positive terms; check --fps")
        if range not in ("limited", "full"):
            raise InputError(f"colour range {range!r} is not 'limited' or 'full'")
        self.width, self.height = width, height
        self.fps_num, self.fps_den = fps_num, fps_den
        self.range: Range = range
        self.matrix: Matrix = matrix or default_matrix(width, height)
        self.frame_bytes = Frame.nbytes_for(width, height)
        self._f, self._own, self.name = open_input(source, "raw YUV")
        self.frame_count: int | None = None
        left = remaining_bytes(self._f)
        if left is not None:
            if left % self.frame_bytes:
                self.close()
                raise InputError(
                    f"{self.name}: {left} bytes is not a whole number of {width}x{height} YUV420P frames "
                    f"({self.frame_bytes} bytes each; {left // self.frame_bytes} frames and {left % self.frame_bytes} "
                    "bytes left over): check --size WxH (and that the file is 8-bit yuv420p)"
                )
            self.frame_count = left // self.frame_bytes
        self._index = 0

    def read_frame(self) -> Frame | None:
        """Next frame, or None at the end of the file."""
        data = read_exact(self._f, self.frame_bytes)
        if not data:
            return None
        if len(data) != self.frame_bytes:
            raise InputError(
                f"{self.name}: frame {self._index} is truncated: {len(data)} of {self.frame_bytes} bytes "
                f"({self.width}x{self.height} YUV420P); check --size WxH"
            )
        frame = Frame.from_bytes(data, self.width, self.height, pts=self._index)
        frame.matrix, frame.range = self.matrix, self.range
        self._index += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read_frame()) is not None:
            yield frame

    def close(self) -> None:
        if self._own:
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
