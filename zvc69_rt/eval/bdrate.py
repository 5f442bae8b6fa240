"""Bjontegaard delta rate and delta PSNR between two rate-distortion curves.

BD-rate: the average rate difference (in %) of the test codec against the anchor at
equal quality. Each curve is turned into log(rate) as a function of quality by
piecewise cubic Hermite interpolation (scipy ``PchipInterpolator``, the monotone
interpolation used by current VCEG/JVET BD-rate tools instead of the original cubic
polynomial fit); both are integrated exactly over the quality interval the two curves
share, and the mean log-rate gap is turned back into a ratio: negative = the test codec
needs fewer bits. BD-PSNR swaps the axes: mean quality gap over the shared log-rate
interval, positive = better.

Curves need >= 2 points (4 or more is usual). Points are sorted by the interpolation
variable; points that share the same value are averaged. Quality can be PSNR, or any
quality on a dB-like scale (e.g. ``metrics.ms_ssim_db``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from zvc69_rt.errors import InputError


def _curve(xs: Sequence[float], ys: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate, sort by x, average duplicates; x is the interpolation variable."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise InputError(f"{what}: rate and quality lists must be 1-D and equally long")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(f"{what}: rates and qualities must be finite (a lossless point has inf PSNR)")
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    if ux.size < 2:
        raise InputError(f"{what}: need at least 2 distinct points, got {ux.size}")
    return ux, uy


def _log_rates(rates: Sequence[float], what: str) -> np.ndarray:
    r = np.asarray(rates, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise InputError(f"{what}: rates must be finite and > 0")
    return np.log(r)


def _mean_gap(
    xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, what: str
) -> float:
    """Mean of (test - anchor) of y(x) over the shared x interval, by exact integration."""
    lo = max(xa.min(), xt.min())
    hi = min(xa.max(), xt.max())
    if not hi > lo:
        raise InputError(
            f"{what}: the curves do not overlap (anchor {xa.min():.3f}..{xa.max():.3f}, "
            f"test {xt.min():.3f}..{xt.max():.3f}); extend the quality sweep"
        )
    ia = PchipInterpolator(xa, ya).antiderivative()
    it = PchipInterpolator(xt, yt).antiderivative()
    return float(((it(hi) - it(lo)) - (ia(hi) - ia(lo))) / (hi - lo))


def bd_rate(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
) -> float:
    """BD-rate of test vs anchor in percent (e.g. -20.0 = 20 % fewer bits at equal quality)."""
    la = _log_rates(rate_anchor, "bd_rate anchor")
    lt = _log_rates(rate_test, "bd_rate test")
    qa, la = _curve(quality_anchor, la, "bd_rate anchor")
    qt, lt = _curve(quality_test, lt, "bd_rate test")
    gap = _mean_gap(qa, la, qt, lt, "bd_rate")
    return (math.exp(gap) - 1.0) * 100.0


def bd_psnr(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
) -> float:
    """BD-PSNR (or BD-quality) of test vs anchor in dB at equal rate; positive = better."""
    la, qa = _curve(_log_rates(rate_anchor, "bd_psnr anchor"), quality_anchor, "bd_psnr anchor")
    lt, qt = _curve(_log_rates(rate_test, "bd_psnr test"), quality_test, "bd_psnr test")
    return _mean_gap(la, qa, lt, qt, "bd_psnr")
