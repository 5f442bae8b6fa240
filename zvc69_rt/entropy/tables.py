"""Quantized CDF tables: the one table type both entropy models code with.

Row k of a CdfTable codes symbols ``offset[k] .. offset[k] + cdf_length[k] - 2``; the
last symbol of every row (index ``cdf_length[k] - 1``) is ESCAPE, after which the value
is coded losslessly, so any int32 round-trips and nothing is ever clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRECISION = 16
TOTAL = 1 << PRECISION
MAX_ROW_SYMBOLS = 258  # 256 values (-128..127 at most) + ESCAPE, plus slack


@dataclass(frozen=True)
class CdfTable:
    cdf: np.ndarray  # int32 [K, Lmax + 1]: cdf[k, 0] = 0, cdf[k, cdf_length[k]] = TOTAL
    cdf_length: np.ndarray  # int32 [K]: symbols per row including ESCAPE
    offset: np.ndarray  # int32 [K]: value of symbol 0 of the row

    def __post_init__(self) -> None:
        object.__setattr__(self, "cdf", np.ascontiguousarray(self.cdf, dtype=np.int32))
        object.__setattr__(self, "cdf_length", np.ascontiguousarray(self.cdf_length, dtype=np.int32))
        object.__setattr__(self, "offset", np.ascontiguousarray(self.offset, dtype=np.int32))
        self.validate()

    @property
    def rows(self) -> int:
        return int(self.cdf.shape[0])

    def validate(self) -> None:
        """The kernels trust these invariants (numba has no bounds checks)."""
        k = self.cdf.shape[0]
        if self.cdf.ndim != 2 or self.cdf_length.shape != (k,) or self.offset.shape != (k,) or k == 0:
            raise ValueError("CdfTable: cdf must be [K, L], cdf_length and offset [K]")
        if (self.cdf_length < 2).any() or (self.cdf_length >= self.cdf.shape[1]).any():
            raise ValueError("CdfTable: every row needs 2..L-1 symbols (one value and ESCAPE)")
        for r in range(k):
            n = self.cdf_length[r]
            row = self.cdf[r, : n + 1]
            if row[0] != 0 or row[n] != TOTAL or (np.diff(row) <= 0).any():
                raise ValueError(f"CdfTable: row {r} is not a strictly increasing 16-bit CDF")

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: np.ndarray) -> "CdfTable":
        """Quantize float pmfs (mass outside each support goes to ESCAPE) to 16 bits."""
        lengths = [len(p) + 1 for p in pmfs]
        lmax = max(lengths)
        cdf = np.zeros((len(pmfs), lmax + 1), dtype=np.int32)
        for r, p in enumerate(pmfs):
            p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
            tail = max(1.0 - p.sum(), 0.0)
            freq = quantize_pmf(np.append(p, tail))
            cdf[r, 1 : len(freq) + 1] = np.cumsum(freq)
            cdf[r, len(freq) + 1 :] = TOTAL  # unused tail of the row
        return cls(cdf=cdf, cdf_length=np.array(lengths, dtype=np.int32), offset=np.asarray(offsets, np.int32))


def quantize_pmf(p: np.ndarray) -> np.ndarray:
    """Integer frequencies summing to TOTAL, every one >= 1 (so every symbol stays codable)."""
    n = len(p)
    if n > TOTAL // 2:
        raise ValueError("too many symbols for 16-bit precision")
    p = p / p.sum() if p.sum() > 0 else np.full(n, 1.0 / n)
    budget = TOTAL - n  # one guaranteed count each, the rest by largest remainder
    raw = p * budget
    freq = np.floor(raw).astype(np.int64)
    rest = budget - int(freq.sum())
    if rest > 0:
        order = np.argsort(-(raw - freq), kind="stable")
        freq[order[:rest]] += 1
    return (freq + 1).astype(np.int32)
