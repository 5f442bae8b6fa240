"""The unit that flows between I/O, codec and service: one 8-bit YUV 4:2:0 picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Matrix = Literal["bt601", "bt709"]
Range = Literal["limited", "full"]


@dataclass
class Frame:
    """Planar YUV 4:2:0 frame at its display size (any width/height, odd included).

    ``y`` is ``uint8[height, width]``; ``u`` and ``v`` are
    ``uint8[(height + 1) // 2, (width + 1) // 2]``. ``pts`` counts frame durations.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    pts: int = 0
    matrix: Matrix = "bt601"
    range: Range = "limited"
    meta: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def chroma_shape(width: int, height: int) -> tuple[int, int]:
        return ((height + 1) // 2, (width + 1) // 2)

    @staticmethod
    def nbytes_for(width: int, height: int) -> int:
        """Bytes of one raw YUV420P frame of this size (the service's body unit)."""
        ch, cw = Frame.chroma_shape(width, height)
        return width * height + 2 * ch * cw

    def validate(self) -> None:
        from zvc69_rt.errors import InputError

        h, w = self.y.shape
        cs = self.chroma_shape(w, h)
        for name, plane, shape in (("y", self.y, (h, w)), ("u", self.u, cs), ("v", self.v, cs)):
            if plane.dtype != np.uint8 or plane.shape != shape:
                raise InputError(
                    f"frame pts={self.pts}: plane {name} is {plane.dtype}{list(plane.shape)}, "
                    f"expected uint8{list(shape)} for a {w}x{h} YUV420P frame"
                )

    def to_bytes(self) -> bytes:
        return self.y.tobytes() + self.u.tobytes() + self.v.tobytes()

    @classmethod
    def from_bytes(cls, buf: bytes | memoryview, width: int, height: int, pts: int = 0) -> Frame:
        from zvc69_rt.errors import InputError

        n = cls.nbytes_for(width, height)
        if len(buf) != n:
            raise InputError(f"raw YUV420P frame of {width}x{height} needs {n} bytes, got {len(buf)}")
        a = np.frombuffer(buf, dtype=np.uint8)
        ch, cw = cls.chroma_shape(width, height)
        ys = width * height
        cs = ch * cw
        return cls(
            y=a[:ys].reshape(height, width).copy(),
            u=a[ys : ys + cs].reshape(ch, cw).copy(),
            v=a[ys + cs :].reshape(ch, cw).copy(),
            pts=pts,
        )
