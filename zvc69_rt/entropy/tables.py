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
        """Number of table rows K (Gaussian: 64 scales; factorized: channels)."""
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

    def coder_arrays(self) -> CoderArrays:
        """The kernels' view of this table, derived once and cached on the instance."""
        return self._cached("_coder", lambda: CoderArrays.build(self))

    def ideal_bits(self, symbols: np.ndarray, rows: np.ndarray) -> float:
        """Ideal code length (-log2 p, in bits) of symbols coded with the given table rows.

        Escaped values count ESCAPE plus what the coder spends on them exactly: 3 bits of
        byte count and 8 bits per byte of the zigzagged value. The yardstick for rate.
        """
        return float(self.ideal_bits_map(symbols, rows).sum())

    def ideal_bits_map(self, symbols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """ideal_bits per symbol, float64 in the shape of symbols: where the bits are."""
        shape = np.shape(symbols)
        sym = np.asarray(symbols, dtype=np.int64).ravel()
        r = np.broadcast_to(np.asarray(rows, dtype=np.int64), shape).ravel()
        n = self._lengths[r]
        s = sym - self._offsets[r]
        esc = (s < 0) | (s >= n - 1)
        s = np.where(esc, n - 1, s)
        bits = self._code_lengths()[r, s]
        if esc.any():
            v = sym[esc]
            u = np.where(v >= 0, 2 * v, -2 * v - 1)
            nbytes = np.zeros(u.shape, np.int64)
            while (u > 0).any():
                nbytes += u > 0
                u = u >> 8
            bits[esc] += 3 + 8 * nbytes
        return bits.reshape(shape)

    @property
    def _lengths(self) -> np.ndarray:
        return self._cached("_lengths64", lambda: self.cdf_length.astype(np.int64))

    @property
    def _offsets(self) -> np.ndarray:
        return self._cached("_offsets64", lambda: self.offset.astype(np.int64))

    def _code_lengths(self) -> np.ndarray:
        """[K, L] -log2 of each symbol's probability (ESCAPE included), computed once."""
        def build() -> np.ndarray:
            freq = np.diff(self.cdf.astype(np.int64), axis=1)
            return PRECISION - np.log2(np.maximum(freq, 1))
        return self._cached("_bits", build)

    def _cached(self, name: str, build):
        value = self.__dict__.get(name)
        if value is None:
            value = build()
            object.__setattr__(self, name, value)
        return value

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: np.ndarray) -> CdfTable:
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


@dataclass(frozen=True)
class CoderArrays:
    """Flat, kernel-ready arrays derived from a CdfTable (see rans.py for their use).

    rinfo  int64 [K*4]   per row: CDF base in cdf/enc, LUT base, offset, symbol count n
    cdf    int32 [T]     each row's CDF (n + 1 entries), rows back to back (T = sum(n+1))
    enc    uint32 [T*4]  per symbol: x_max, reciprocal, bias, cmpl | shift << 16
    lut    uint8/uint16 [K << LUT_BITS]  per row and top LUT_BITS of a slot: the first
           symbol that slot range can hold (uint8 when every row has <= 256 symbols)
    """

    rinfo: np.ndarray
    cdf: np.ndarray
    enc: np.ndarray
    lut: np.ndarray

    @classmethod
    def build(cls, table: CdfTable) -> CoderArrays:
        from zvc69_rt.entropy import rans

        lens = table.cdf_length.astype(np.int64)
        k = len(lens)
        cbase = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
        size = int((lens + 1).sum())
        cdf = np.empty(size, dtype=np.int32)
        enc = np.zeros((size, 4), dtype=np.uint32)
        nl = 1 << rans.LUT_BITS
        lut = np.empty(k * nl, dtype=np.uint8 if lens.max() <= 256 else np.uint16)
        slots = np.arange(nl, dtype=np.int64) << rans.LUT_SHIFT
        for r in range(k):
            n = int(lens[r])
            row = table.cdf[r, : n + 1].astype(np.int64)
            cdf[cbase[r] : cbase[r] + n + 1] = row
            enc[cbase[r] : cbase[r] + n] = encoder_entries(row[:-1], np.diff(row))
            lut[r * nl : (r + 1) * nl] = np.searchsorted(row[1:], slots, side="right")
        rinfo = np.stack([cbase, np.arange(k, dtype=np.int64) * nl, table.offset.astype(np.int64), lens], axis=1)
        return cls(rinfo=np.ascontiguousarray(rinfo).ravel(), cdf=cdf, enc=enc.ravel(), lut=lut)


def encoder_entries(start: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Per-symbol encode constants so the kernel divides by freq with a multiply and shift.

    For x < 2^31: q = (x * rcp) >> shift equals x // freq, and the rANS step
    (x // f) * TOTAL + x % f + start becomes x + bias + q * (TOTAL - f).
    freq 1 uses rcp = 2^32 - 1 (q = x - 1) with the missing x folded into bias.
    """
    start = np.asarray(start, dtype=np.int64)
    freq = np.asarray(freq, dtype=np.int64)
    if (freq < 1).any() or (freq >= TOTAL).any():
        raise ValueError("encoder_entries: frequencies must be in 1..65535")
    log = np.ceil(np.log2(freq)).astype(np.int64)
    log += (1 << log) < freq  # guard float rounding
    log -= (log > 0) & ((1 << np.maximum(log - 1, 0)) >= freq)
    rcp = ((1 << (log + 31)) + freq - 1) // freq
    shift = log + 31
    bias = start.copy()
    one = freq == 1
    rcp[one] = (1 << 32) - 1
    shift[one] = 32
    bias[one] = start[one] + TOTAL - 1
    out = np.empty((len(freq), 4), dtype=np.uint32)
    out[:, 0] = freq << 15  # x_max: renormalise while x >= freq << (23 - 16 + 8)
    out[:, 1] = rcp
    out[:, 2] = bias
    out[:, 3] = (TOTAL - freq) | (shift << 16)
    return out
