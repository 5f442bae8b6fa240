"""Distortion metrics for rate-distortion evaluation: PSNR variants and MS-SSIM.

numpy/scipy only (no torch) so the runtime and the evaluator agree on one definition.

Conventions
- ``psnr``: one number over all samples given (for RGB that is the MSE averaged over the
  three channels, the usual "PSNR-RGB"). Peak is 255 for uint8 input and 1.0 for float
  input (which must then lie in [0, 1]). Identical inputs give ``inf``.
- ``psnr_planes``: per-channel PSNR list.
- ``psnr_yuv``: (6 * PSNR_Y + PSNR_U + PSNR_V) / 8 on 4:2:0 frames, the JVET/VCEG
  common-test-condition weighting.
- ``ms_ssim``: Wang, Simoncelli, Bovik (2003) with an 11x11 Gaussian window (sigma 1.5),
  K1 = 0.01, K2 = 0.03, five scales weighted (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
  2x2 average-pool between scales. Statistics use only windows that fit inside the
  image ("valid"), so the single-scale term equals skimage's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
  Images smaller than the five-scale minimum (11 * 2**4 = 176 px on the short side) use
  as many scales as fit (at least one, so >= 11 px), with the weights of the scales
  kept renormalised to sum to 1. Negative contrast-structure terms (possible only for
  badly broken reconstructions) are clipped to 0 before the fractional power, as most
  implementations do, so the result is always a real number in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate a (reference, test) pair; return float64 copies and the peak value."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"{what}: reference shape {list(a.shape)} != test shape {list(b.shape)}")
    if a.size == 0:
        raise InputError(f"{what}: empty input")
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        peak = 255.0
    elif np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating):
        peak = 1.0
        for name, x in (("reference", a), ("test", b)):
            if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
                raise InputError(f"{what}: float {name} must be finite and in [0, 1]")
    else:
        raise InputError(f"{what}: need both uint8 or both float in [0,1], got {a.dtype} and {b.dtype}")
    return a.astype(np.float64), b.astype(np.float64), peak


def mse_to_psnr(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB from a mean squared error; 0 MSE gives inf."""
    if mse <= 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr(ref: np.ndarray, test: np.ndarray) -> float:
    """PSNR over all samples (uint8: peak 255; float in [0,1]: peak 1)."""
    a, b, peak = _pair(ref, test, "psnr")
    return mse_to_psnr(float(np.mean((a - b) ** 2)), peak)


def psnr_planes(ref: np.ndarray, test: np.ndarray) -> list[float]:
    """Per-channel PSNR of [H, W, C] arrays (a 2-D array counts as one channel)."""
    a, b, peak = _pair(ref, test, "psnr_planes")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3:
        raise InputError(f"psnr_planes: expected [H, W] or [H, W, C], got {list(a.shape)}")
    return [mse_to_psnr(float(np.mean((a[..., c] - b[..., c]) ** 2)), peak) for c in range(a.shape[2])]


def psnr_frame(ref: Frame, test: Frame) -> tuple[float, float, float]:
    """(PSNR_Y, PSNR_U, PSNR_V) of two 4:2:0 frames of the same size."""
    ref.validate()
    test.validate()
    if (ref.width, ref.height) != (test.width, test.height):
        raise InputError(
            f"psnr_frame: frame pts={test.pts} is {test.width}x{test.height}, "
            f"reference is {ref.width}x{ref.height}"
        )
    return (psnr(ref.y, test.y), psnr(ref.u, test.u), psnr(ref.v, test.v))


def psnr_yuv(ref: Frame, test: Frame) -> float:
    """PSNR-YUV with the 6:1:1 weighting; inf only if every plane is identical."""
    py, pu, pv = psnr_frame(ref, test)
    return (6.0 * py + pu + pv) / 8.0


def _gauss_taps() -> np.ndarray:
    r = WIN_SIZE // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * WIN_SIGMA * WIN_SIGMA))
    return g / g.sum()


_TAPS = _gauss_taps()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian over the positions where the whole window fits."""
    r = WIN_SIZE // 2
    from scipy.ndimage import correlate1d  # eval extra; PSNR alone needs only numpy (encode --psnr)

    y = correlate1d(x, _TAPS, axis=0, mode="reflect")[r:-r]
    return correlate1d(y, _TAPS, axis=1, mode="reflect")[:, r:-r]


def ssim_components(x: np.ndarray, y: np.ndarray, peak: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two float 2-D images at one scale."""
    c1 = (K1 * peak) ** 2
    c2 = (K2 * peak) ** 2
    mx, my = _filter_valid(x), _filter_valid(y)
    sxx = _filter_valid(x * x) - mx * mx
    syy = _filter_valid(y * y) - my * my
    sxy = _filter_valid(x * y) - mx * my
    cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
    l_map = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(l_map * cs_map)), float(np.mean(cs_map))


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales an image of this size supports (1..5); 0 if below 11 px."""
    n = 0
    s = min(height, width)
    while n < len(MS_SSIM_WEIGHTS) and s >= WIN_SIZE:
        n += 1
        s //= 2
    return n


def _pool2(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _ms_ssim_2d(x: np.ndarray, y: np.ndarray, peak: float) -> float:
    n = ms_ssim_scales(*x.shape)
    if n == 0:
        raise InputError(f"ms_ssim: image {x.shape[1]}x{x.shape[0]} is smaller than the {WIN_SIZE}px window")
    w = np.asarray(MS_SSIM_WEIGHTS[:n])
    if n < len(MS_SSIM_WEIGHTS):  # the standard 5 weights are used as published (sum 1.0001)
        w = w / w.sum()
    vals = []
    for s in range(n):
        ssim_val, cs = ssim_components(x, y, peak)
        vals.append(ssim_val if s == n - 1 else cs)
        if s < n - 1:
            x, y = _pool2(x), _pool2(y)
    v = np.clip(np.asarray(vals), 0.0, None)
    return float(np.prod(v**w))


def ms_ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM of 2-D (luma) images, or the mean over channels of [H, W, C] images."""
    a, b, peak = _pair(ref, test, "ms_ssim")
    if a.ndim == 2:
        return _ms_ssim_2d(a, b, peak)
    if a.ndim == 3:
        return float(np.mean([_ms_ssim_2d(a[..., c], b[..., c], peak) for c in range(a.shape[2])]))
    raise InputError(f"ms_ssim: expected [H, W] or [H, W, C], got {list(a.shape)}")


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale, -10 log10(1 - v): what BD-rate on MS-SSIM integrates over."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)
