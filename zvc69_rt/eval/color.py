"""RGB <-> YUV 4:2:0 conversion used by the evaluation tools (numpy only).

Why a private conversion instead of swscale: every codec under test must see exactly the
same 4:2:0 picture and be judged against the same RGB after the same upsampling, so the
conversion is part of the test harness, not of any codec. We use the full-range BT.601
equations (the JFIF/JPEG ones, also the codec's rule below 720 lines), 2x2 box
downsampling of chroma and libjpeg-style "fancy" (triangle, 3/4-1/4) upsampling.
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.color import luma_weights

# Full-range BT.601 (JFIF). Rows: Y, Cb, Cr; offsets are added after the product.
_KR, _KG, _KB = luma_weights("bt601")


def _check_rgb(rgb: np.ndarray, what: str = "image") -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise InputError(f"{what}: expected an RGB array of shape [H, W, 3], got {shape}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{what}: empty image {list(rgb.shape)}")


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H,W,3] -> float64 full-range YCbCr [H,W,3] (0..255, chroma centred on 128)."""
    _check_rgb(rgb)
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB)) + 128.0
    cr = (r - y) / (2.0 * (1.0 - _KR)) + 128.0
    return np.stack([y, cb, cr], axis=-1)


def yuv444_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """Float full-range YCbCr [H,W,3] -> uint8 RGB (rounded, clipped)."""
    y, cb, cr = yuv[..., 0], yuv[..., 1] - 128.0, yuv[..., 2] - 128.0
    r = y + 2.0 * (1.0 - _KR) * cr
    b = y + 2.0 * (1.0 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    out = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma of a uint8 RGB image as float64 (0..255)."""
    _check_rgb(rgb)
    x = rgb.astype(np.float64)
    return _KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]


def _down2(p: np.ndarray) -> np.ndarray:
    """2x2 box average; odd edges replicate the last row/column (matches Frame.chroma_shape)."""
    h, w = p.shape
    if h % 2:
        p = np.concatenate([p, p[-1:]], axis=0)
    if w % 2:
        p = np.concatenate([p, p[:, -1:]], axis=1)
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _up2_axis(p: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Triangle 2x upsampling along one axis to length n (samples at 1/4 and 3/4 offsets)."""
    p = np.moveaxis(p, axis, 0)
    prev = np.concatenate([p[:1], p[:-1]], axis=0)
    nxt = np.concatenate([p[1:], p[-1:]], axis=0)
    even = 0.75 * p + 0.25 * prev
    odd = 0.75 * p + 0.25 * nxt
    out = np.empty((2 * p.shape[0],) + p.shape[1:], dtype=np.float64)
    out[0::2] = even
    out[1::2] = odd
    return np.moveaxis(out[:n], 0, axis)


def upsample_chroma(c: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upsample a 4:2:0 chroma plane to [height, width] (float64)."""
    c = c.astype(np.float64)
    return _up2_axis(_up2_axis(c, height, 0), width, 1)


def rgb_to_frame(rgb: np.ndarray, pts: int = 0) -> Frame:
    """uint8 RGB -> YUV 4:2:0 Frame (full-range BT.601, tagged as such)."""
    yuv = rgb_to_yuv444(rgb)

    def q(a: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)

    return Frame(
        y=q(yuv[..., 0]), u=q(_down2(yuv[..., 1])), v=q(_down2(yuv[..., 2])),
        pts=pts, matrix="bt601", range="full",
    )


def frame_to_rgb(frame: Frame) -> np.ndarray:
    """YUV 4:2:0 Frame -> uint8 RGB with the inverse of :func:`rgb_to_frame`."""
    frame.validate()
    h, w = frame.height, frame.width
    yuv = np.stack(
        [frame.y.astype(np.float64), upsample_chroma(frame.u, h, w), upsample_chroma(frame.v, h, w)],
        axis=-1,
    )
    return yuv444_to_rgb(yuv)
