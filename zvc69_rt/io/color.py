"""YUV 4:2:0 (8-bit) <-> RGB float32 conversion, BT.601 / BT.709, limited / full range.

Why these choices:

* Coefficients: Y' = Kr R + Kg G + Kb B with (Kr, Kb) = (0.299, 0.114) for BT.601 and
  (0.2126, 0.0722) for BT.709. Limited range codes Y' as 16 + 219 Y' and Pb/Pr as
  128 + 224 P; full range as 255 Y' and 128 + 255 P (the JFIF/ffmpeg "jpeg" convention).
* Chroma downsampling (RGB -> YUV) is a 2x2 box average; a last odd row/column averages
  the pixels it has.
* Chroma upsampling (YUV -> RGB) defaults to *replicate* (each chroma sample covers its
  2x2 luma block). Box average is the exact left inverse of replication, so
  YUV -> RGB -> YUV returns the same code values for every in-gamut picture (float32
  rounding aside). ``upsample="bilinear"`` (centre-sited, 3/4-1/4 taps) gives smoother RGB
  chroma but round-trips only within 1 code on smooth content (the error is 1/8 of the
  chroma's second difference).
* RGB is clipped to [0, 1]. YUV triples whose RGB falls outside the cube (out-of-gamut
  chroma, limited-range luma below 16 or above 235) therefore cannot round-trip: that loss is
  in the signal, not in the conversion.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame, Matrix, Range

Upsample = Literal["replicate", "bilinear"]

_KRB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
# range -> (luma offset, luma scale, chroma scale): code = offset + scale * normalized
_RANGE = {"limited": (16.0, 219.0, 224.0), "full": (0.0, 255.0, 255.0)}


def luma_weights(matrix: Matrix = "bt601") -> tuple[float, float, float]:
    """(Kr, Kg, Kb): Y' = Kr R + Kg G + Kb B for this matrix."""
    (kr, kb), _ = _check(matrix, "full")
    return kr, 1.0 - kr - kb, kb


def default_matrix(width: int, height: int) -> Matrix:
    """Matrix to assume when a source does not signal one: BT.709 from 720 lines up, else BT.601."""
    return "bt709" if height >= 720 else "bt601"


def _check(matrix: str, range: str) -> tuple[tuple[float, float], tuple[float, float, float]]:
    if matrix not in _KRB:
        raise InputError(f"colour matrix {matrix!r} is not supported; use 'bt601' or 'bt709'")
    if range not in _RANGE:
        raise InputError(f"colour range {range!r} is not supported; use 'limited' or 'full'")
    return _KRB[matrix], _RANGE[range]


def _up2_bilinear(c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre-sited 2x bilinear upsampling (taps 3/4, 1/4, edges replicated), cropped to h x w."""
    ch, cw = c.shape
    p = np.empty((ch + 2, cw), np.float32)
    p[1:-1] = c
    p[0] = c[0]
    p[-1] = c[-1]
    rows = np.empty((2 * ch, cw + 2), np.float32)
    v = rows[:, 1:-1]
    np.multiply(c, 0.75, out=v[0::2])
    v[0::2] += 0.25 * p[:-2]
    np.multiply(c, 0.75, out=v[1::2])
    v[1::2] += 0.25 * p[2:]
    rows[:, 0] = rows[:, 1]
    rows[:, -1] = rows[:, -2]
    out = np.empty((2 * ch, 2 * cw), np.float32)
    np.multiply(v, 0.75, out=out[:, 0::2])
    out[:, 0::2] += 0.25 * rows[:, :-2]
    np.multiply(v, 0.75, out=out[:, 1::2])
    out[:, 1::2] += 0.25 * rows[:, 2:]
    return out[:h, :w]


def yuv420_to_rgb(
    frame: Frame,
    matrix: Matrix | None = None,
    range: Range | None = None,
    *,
    upsample: Upsample = "replicate",
    clip: bool = True,
) -> np.ndarray:
    """Frame -> float32[3, H, W] RGB in [0, 1].

    ``matrix``/``range`` default to the frame's own tags; pass them to override (the codec
    uses one fixed convention). ``clip=False`` keeps out-of-gamut values (for gamut checks).
    """
    frame.validate()
    (kr, kb), (yoff, ys, cs) = _check(matrix or frame.matrix, range or frame.range)
    kg = 1.0 - kr - kb
    h, w = frame.height, frame.width
    he, we = h + (h & 1), w + (w & 1)

    yf = np.empty((he, we), np.float32)
    np.subtract(frame.y, np.float32(yoff), out=yf[:h, :w], dtype=np.float32)
    yf[:h, :w] *= np.float32(1.0 / ys)
    uf = frame.u.astype(np.float32)
    uf -= 128.0
    uf *= np.float32(1.0 / cs)
    vf = frame.v.astype(np.float32)
    vf -= 128.0
    vf *= np.float32(1.0 / cs)
    contrib = (
        vf * np.float32(2 * (1 - kr)),
        uf * np.float32(-2 * kb * (1 - kb) / kg) + vf * np.float32(-2 * kr * (1 - kr) / kg),
        uf * np.float32(2 * (1 - kb)),
    )
    if upsample == "replicate":
        if h & 1:
            yf[h, :] = 0.0
        if w & 1:
            yf[:, w] = 0.0
        out = np.empty((3, he, we), np.float32)
        yb = yf.reshape(he // 2, 2, we)
        for k, c in enumerate(contrib):  # repeat columns, broadcast over row pairs (fastest in numpy)
            np.add(yb, np.repeat(c, 2, axis=1)[:, None, :], out=out[k].reshape(he // 2, 2, we))
        if (he, we) != (h, w):
            out = np.ascontiguousarray(out[:, :h, :w])
    elif upsample == "bilinear":
        out = np.empty((3, h, w), np.float32)
        for k, c in enumerate(contrib):
            np.add(yf[:h, :w], _up2_bilinear(c, h, w), out=out[k])
    else:
        raise InputError(f"chroma upsampling {upsample!r} is not supported; use 'replicate' or 'bilinear'")
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def rgb_to_yuv420(rgb: np.ndarray, matrix: Matrix = "bt601", range: Range = "limited", pts: int = 0) -> Frame:
    """float[3, H, W] RGB (clipped to [0, 1]; NaN -> 0) -> 8-bit YUV 4:2:0 Frame, 2x2 box chroma."""
    (kr, kb), (yoff, ys, cs) = _check(matrix, range)
    kg = 1.0 - kr - kb
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.shape[1] < 1 or rgb.shape[2] < 1:
        raise InputError(f"RGB picture must be [3, H, W], got shape {list(rgb.shape)}")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise InputError(f"RGB picture must be floating point in [0, 1], got {rgb.dtype}")
    _, h, w = rgb.shape
    he, we = h + (h & 1), w + (w & 1)
    x = np.empty((3, he, we), np.float32)
    np.clip(rgb, np.float32(0.0), np.float32(1.0), out=x[:, :h, :w], dtype=np.float32)
    r, g, b = x[0, :h, :w], x[1, :h, :w], x[2, :h, :w]

    def luma() -> np.ndarray:
        yc = r * np.float32(ys * kr)
        yc += g * np.float32(ys * kg)
        yc += b * np.float32(ys * kb)
        yc += np.float32(yoff + 0.5)
        return yc

    yc = luma()
    if np.isnan(yc).any():  # a NaN anywhere in the RGB reaches the luma; make it 0 (black)
        np.nan_to_num(x, copy=False, nan=0.0)
        yc = luma()
    y = yc.astype(np.uint8)  # values lie in [yoff + 0.5, yoff + ys + 0.5]: truncation rounds

    if h & 1:
        x[:, h, :w] = x[:, h - 1, :w]
    if w & 1:
        x[:, :, w] = x[:, :, w - 1]
    rows = x[:, 0::2, :] + x[:, 1::2, :]  # pairs of rows first: contiguous inner loops
    avg = rows[:, :, 0::2] + rows[:, :, 1::2]
    ar, ag, ab = avg[0], avg[1], avg[2]
    q = 0.25 * cs  # box average folded into the scale
    su, sv = q / (2 * (1 - kb)), q / (2 * (1 - kr))
    u = ar * np.float32(-kr * su)
    u += ag * np.float32(-kg * su)
    u += ab * np.float32((1 - kb) * su)
    u += np.float32(128.5)
    v = ar * np.float32((1 - kr) * sv)
    v += ag * np.float32(-kg * sv)
    v += ab * np.float32(-kb * sv)
    v += np.float32(128.5)
    np.clip(u, 0.0, 255.0, out=u)
    np.clip(v, 0.0, 255.0, out=v)
    return Frame(y=y, u=u.astype(np.uint8), v=v.astype(np.uint8), pts=pts, matrix=matrix, range=range)
