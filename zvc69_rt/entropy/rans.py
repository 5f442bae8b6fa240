"""numba rANS kernels: 32-bit state, 16-bit CDFs, byte renormalisation, escapes.

One slice = the rows [r0, r1) of every channel of a [C, H, W] tensor, coded as one
independent rANS stream: 4 bytes of final state (little-endian) then the renormalisation
bytes. Slices run in parallel (prange, nogil). Symbol order: c, then h, then w.

A row's last symbol is ESCAPE: then the zigzagged value follows as a byte count (uniform
over 8 slots, 0..4 used) and that many uniform bytes, low byte first, so every int32
round-trips.

The decoder trusts nothing: every read is checked against its slice's end, escapes are
range-checked, and the final state must equal the initial one, otherwise a nonzero
status comes back (the Python layer turns it into EntropyDecodeError). Table rows and
indexes are validated in Python before any kernel runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

PREC = 16
MASK = (1 << PREC) - 1
RANS_L = 1 << 23
NB_SLOT = 8192  # uniform slots for the escape byte count (0..4 of 8 used)
MAX_BYTES_PER_SYMBOL = 12  # ESCAPE + count + 4 bytes, 2 renorm bytes each at most

OK, ERR_SHORT, ERR_OVERRUN, ERR_ESCAPE, ERR_RANGE, ERR_FINAL = 0, 1, 2, 3, 4, 5
STATUS_TEXT = {
    ERR_SHORT: "slice shorter than its 4-byte state",
    ERR_OVERRUN: "slice data ends before its symbols do (truncated or corrupt)",
    ERR_ESCAPE: "escape with an impossible byte count (corrupt)",
    ERR_RANGE: "escaped value outside int32 (corrupt)",
    ERR_FINAL: "final rANS state or length mismatch (corrupt, truncated or wrong tables)",
}


@njit(nogil=True, cache=True, inline="always")
def _put(x, pos, out, start, freq):
    x_max = ((RANS_L >> PREC) << 8) * freq
    while x >= x_max:
        pos -= 1
        out[pos] = x & 0xFF
        x >>= 8
    x = ((x // freq) << PREC) + (x % freq) + start
    return x, pos


@njit(nogil=True, cache=True)
def encode_slice(sym, idx, per_channel, cdf, lens, offs, r0, r1, out):
    """Encode rows [r0, r1) into the END of out; returns the start position."""
    C, _, W = sym.shape
    pos = out.shape[0]
    x = np.int64(RANS_L)
    for c in range(C - 1, -1, -1):
        for h in range(r1 - 1, r0 - 1, -1):
            for w in range(W - 1, -1, -1):
                row = c if per_channel else np.int64(idx[c, h, w])
                v = np.int64(sym[c, h, w])
                n = np.int64(lens[row])
                s = v - offs[row]
                if s >= 0 and s < n - 1:
                    lo = np.int64(cdf[row, s])
                    x, pos = _put(x, pos, out, lo, np.int64(cdf[row, s + 1]) - lo)
                else:
                    u = v * 2 if v >= 0 else -v * 2 - 1
                    nb = 0
                    t = u
                    while t > 0:
                        nb += 1
                        t >>= 8
                    for i in range(nb - 1, -1, -1):
                        x, pos = _put(x, pos, out, ((u >> (8 * i)) & 0xFF) << 8, np.int64(256))
                    x, pos = _put(x, pos, out, np.int64(nb) * NB_SLOT, np.int64(NB_SLOT))
                    lo = np.int64(cdf[row, n - 1])
                    x, pos = _put(x, pos, out, lo, np.int64(cdf[row, n]) - lo)
    for _ in range(4):
        pos -= 1
        out[pos] = (x >> 24) & 0xFF
        x = (x << 8) & 0xFFFFFFFF
    return pos


@njit(nogil=True, cache=True)
def decode_slice(buf, start, size, idx, per_channel, cdf, lens, offs, r0, r1, out):
    """Decode rows [r0, r1) from buf[start:start+size] into out; returns a status code."""
    if size < 4:
        return ERR_SHORT
    end = start + size
    p = start
    x = np.int64(0)
    for i in range(4):  # little-endian state
        x |= np.int64(buf[p]) << (8 * i)
        p += 1
    C, _, W = out.shape
    for c in range(C):
        for h in range(r0, r1):
            for w in range(W):
                row = c if per_channel else np.int64(idx[c, h, w])
                n = np.int64(lens[row])
                f = x & MASK
                lo = 0
                hi = n
                while hi - lo > 1:
                    mid = (lo + hi) >> 1
                    if cdf[row, mid] <= f:
                        lo = mid
                    else:
                        hi = mid
                c0 = np.int64(cdf[row, lo])
                x = (np.int64(cdf[row, lo + 1]) - c0) * (x >> PREC) + f - c0
                while x < RANS_L:
                    if p >= end:
                        return ERR_OVERRUN
                    x = (x << 8) | np.int64(buf[p])
                    p += 1
                if lo == n - 1:
                    f = x & MASK
                    nb = f // NB_SLOT
                    if nb > 4:
                        return ERR_ESCAPE
                    x = NB_SLOT * (x >> PREC) + f - nb * NB_SLOT
                    while x < RANS_L:
                        if p >= end:
                            return ERR_OVERRUN
                        x = (x << 8) | np.int64(buf[p])
                        p += 1
                    u = np.int64(0)
                    for i in range(nb):
                        f = x & MASK
                        b = f >> 8
                        x = 256 * (x >> PREC) + f - (b << 8)
                        while x < RANS_L:
                            if p >= end:
                                return ERR_OVERRUN
                            x = (x << 8) | np.int64(buf[p])
                            p += 1
                        u |= b << (8 * i)
                    v = (u >> 1) if (u & 1) == 0 else -((u + 1) >> 1)
                    if v < -2147483648 or v > 2147483647:
                        return ERR_RANGE
                    out[c, h, w] = v
                else:
                    out[c, h, w] = lo + offs[row]
    if x != RANS_L or p != end:
        return ERR_FINAL
    return OK


@njit(parallel=True, nogil=True, cache=True)
def encode_slices(sym, idx, per_channel, cdf, lens, offs, row_starts, row_ends, scratch):
    n = row_starts.shape[0]
    starts = np.empty(n, dtype=np.int64)
    for i in prange(n):
        starts[i] = encode_slice(sym, idx, per_channel, cdf, lens, offs, row_starts[i], row_ends[i], scratch[i])
    return starts


@njit(parallel=True, nogil=True, cache=True)
def decode_slices(buf, starts, sizes, idx, per_channel, cdf, lens, offs, row_starts, row_ends, out):
    n = row_starts.shape[0]
    status = np.empty(n, dtype=np.int64)
    for i in prange(n):
        status[i] = decode_slice(buf, starts[i], sizes[i], idx, per_channel, cdf, lens, offs,
                                 row_starts[i], row_ends[i], out)
    return status
