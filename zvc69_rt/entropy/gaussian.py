"""Gaussian conditional: 64 log-spaced scales and their quantized CDF tables.

SCALE_TABLE runs from SCALE_BOUND 0.11 to 64.0 (the top: a scale of 64 already spans
the whole [-128, 127] symbol range at the 1e-9 tail). Each scale's row covers
+-ceil(tail * scale) around 0 (capped to [-128, 127]); symbols beyond it are ESCAPEd.

The tables are computed once with math.erfc and shipped as gaussian_cdfs.npy, so every
machine codes with the same integers whatever its libm does in the last ulp; a test
checks that regenerating them here gives the same file.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np

from zvc69_rt.entropy.tables import CdfTable

SCALE_BOUND = 0.11
SCALE_TOP = 64.0
NUM_SCALES = 64
TAIL_MASS = 1e-9
SCALE_TABLE = np.exp(np.linspace(math.log(SCALE_BOUND), math.log(SCALE_TOP), NUM_SCALES)).astype(np.float32)
_SHIPPED = Path(__file__).with_name("gaussian_cdfs.npz")


def scale_to_index(scales: np.ndarray, table: np.ndarray = SCALE_TABLE) -> np.ndarray:
    """Index of the smallest table scale >= s (clamped to the table), as uint8."""
    s = np.asarray(scales, dtype=np.float32)
    idx = np.searchsorted(table[:-1], s, side="left")
    return idx.astype(np.uint8)


def build_gaussian_table(scales: np.ndarray = SCALE_TABLE) -> CdfTable:
    """16-bit CDF rows for these scales (the shipped ones generate gaussian_cdfs.npz;
    imported bundles bring their own scale table)."""
    z = -_norm_ppf(TAIL_MASS / 2)
    pmfs, offsets = [], []
    for s in np.asarray(scales, dtype=np.float64):
        r = min(math.ceil(z * s), 127)
        v = np.arange(-r, r + 1, dtype=np.float64)
        upper = np.array([0.5 * math.erfc(-(x + 0.5) / (s * math.sqrt(2))) for x in v])
        lower = np.array([0.5 * math.erfc(-(x - 0.5) / (s * math.sqrt(2))) for x in v])
        pmfs.append(upper - lower)
        offsets.append(-r)
    return CdfTable.from_pmfs(pmfs, np.array(offsets, dtype=np.int32))


def _norm_ppf(p: float) -> float:
    lo, hi = -40.0, 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@cache
def gaussian_table() -> CdfTable:
    if _SHIPPED.exists():
        with np.load(_SHIPPED) as f:
            return CdfTable(cdf=f["cdf"], cdf_length=f["cdf_length"], offset=f["offset"])
    return build_gaussian_table()


def write_shipped_table() -> None:
    t = build_gaussian_table()
    np.savez(_SHIPPED, cdf=t.cdf, cdf_length=t.cdf_length, offset=t.offset)


def encode_gaussian(symbols: np.ndarray, scale_index: np.ndarray, num_slices: int | None = None) -> bytes:
    """symbols = round(y - mean) int32[C,H,W], scale_index uint8[C,H,W] -> ZVCP payload.

    num_slices: row slices coded in parallel (None: by tensor size, see coder.auto_slices).
    """
    from zvc69_rt.entropy import coder

    return coder.encode(symbols, scale_index, gaussian_table(), num_slices)


def decode_gaussian(data: bytes | memoryview, scale_index: np.ndarray) -> np.ndarray:
    """ZVCP payload + the same scale_index uint8[C,H,W] -> int32[C,H,W].

    Raises EntropyDecodeError on a truncated, corrupt or mismatched payload.
    """
    from zvc69_rt.entropy import coder

    return coder.decode(data, np.shape(scale_index), scale_index, gaussian_table())
