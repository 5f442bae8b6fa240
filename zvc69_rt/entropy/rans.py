"""numba rANS kernels: 32-bit states, 16-bit CDFs, byte renormalisation, escapes.

Slice stream (one per ZVCP slice, or the whole legacy payload)::

    state0 u32 LE | state1 u32 LE | renormalisation bytes, in decode order

One slice codes the rows [r0, r1) of every channel of a [C, H, W] tensor in the order
c, then h, then w. Symbol k of the slice is coded by state ``k & 1``: two interleaved
rANS states share one byte stream, so the decoder has two independent dependency
chains in flight (instruction-level parallelism) at the price of 4 more header bytes.
Both states start (encoder) and end (decoder) at RANS_L; the decoder checks that, and
that it consumed exactly the slice's bytes.

ESCAPE is the last symbol of every table row: after it comes the zigzagged value's byte
count (uniform over 8 slots, 0..4 used) and that many uniform bytes, low byte first,
all on the same state, so every int32 round-trips and nothing is clipped.

Encode avoids the integer division with a per-symbol reciprocal (the classic
multiply-and-shift of Alverson; exact for states below 2^31, checked by a test over
every frequency). Decode finds a symbol from a small per-row lookup on the top
LUT_BITS of the slot, then a short linear scan of the row's CDF (rows are short, the
tables stay in L1/L2).

The decoder trusts nothing in the payload: every byte read is checked against its
slice's end, escapes are range-checked, and a bad final state returns a nonzero status
(the Python layer turns it into EntropyDecodeError). Tables and indexes are validated
in Python before any kernel runs, because numba does not check bounds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

PREC = 16
TOTAL = 1 << PREC
MASK = TOTAL - 1
RANS_L = 1 << 23  # states live in [RANS_L, RANS_L << 8) = [2^23, 2^31)
XMAX_SHIFT = 23 - PREC + 8  # renormalise before coding freq f while x >= f << 15
NB_SLOT = 8192  # uniform slots for the escape byte count (0..4 of 8 used)
NSTATES = 2
STATE_BYTES = 4 * NSTATES
MAX_BYTES_PER_SYMBOL = 12  # ESCAPE + count + 4 bytes: 6 puts of at most 2 bytes
LUT_BITS = 8
LUT_SHIFT = PREC - LUT_BITS
U = np.uint64  # unsigned indexes skip numba's negative-index wraparound in hot loops

OK, ERR_SHORT, ERR_OVERRUN, ERR_ESCAPE, ERR_FINAL = 0, 1, 2, 3, 4
STATUS_TEXT = {
    ERR_SHORT: f"slice shorter than its {STATE_BYTES}-byte initial states",
    ERR_OVERRUN: "slice data ends before its symbols do (truncated or corrupt)",
    ERR_ESCAPE: "impossible escape (byte count > 4 or an in-range value; corrupt)",
    ERR_FINAL: "final rANS state or length mismatch (corrupt, truncated or wrong tables)",
}

# Row info columns (int64 [K, 4]), built by CdfTable.coder_arrays().
RI_CBASE, RI_LBASE, RI_OFFSET, RI_N = 0, 1, 2, 3


# The hot loops are written out by hand: numba's IR inlining of helpers that take
# arrays adds reference counting per call, which costs more than the coding itself.
# Array indexes are cast to unsigned (U) so numba emits no negative-index wraparound.
# All arrays are flat: sym/idx/out [C*H*W], rinfo [K*4], enc [T*4], cdf [T], lut [K << LUT_BITS].


# ----------------------------------------------------------------------------- encode
@njit(nogil=True, cache=True)
def _encode_range(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, out):
    """Encode positions [lo, hi) of every channel (flat [C*HW] arrays) into the END of out.

    Returns the start of the stream in out. out must have room for MAX_BYTES_PER_SYMBOL
    per symbol plus STATE_BYTES (stores are unconditional, see below).
    """
    pos, xa, xb = _encode_core(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, out,
                               np.int64(out.shape[0]), np.int64(RANS_L), np.int64(RANS_L))
    return _flush(out, pos, xa, xb)


@njit(nogil=True, cache=True)
def _flush(out, pos, xa, xb):
    """Write the two states before out[pos] (after symbol 0 the swaps left state 0 in xb and
    state 1 in xa); returns the stream's start."""
    pos -= STATE_BYTES
    for i in range(4):
        out[U(pos + i)] = (xb >> (8 * i)) & 0xFF
        out[U(pos + 4 + i)] = (xa >> (8 * i)) & 0xFF
    return pos


@njit(nogil=True, cache=True)
def _encode_core(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, out, pos, xa, xb):
    """The symbols of [lo, hi) of every channel, last first, written before out[pos] from
    states (xa, xb); returns (pos, xa, xb) for the symbols before them or the flush."""
    blk = hi - lo
    total = C * blk
    # Symbols go in reverse; symbol k uses state k & 1. xa is the state of the symbol
    # being coded, xb the other one; they swap after every symbol.
    c = C - 1
    j = hi - 1
    q = c * HW + j
    for _ in range(total):
        v = np.int64(sym[U(q)])
        row = np.int64(c) if per_channel else np.int64(idx[U(q)])
        r4 = row * 4
        cb = rinfo[U(r4)]
        n = rinfo[U(r4 + 3)]
        s = v - rinfo[U(r4 + 2)]
        if s < 0 or s >= n - 1:
            # ESCAPE: the zigzagged value's bytes (high first, so they decode low first),
            # then the byte count, with uniform frequencies; then the ESCAPE symbol.
            u = v * 2 if v >= 0 else -v * 2 - 1
            nb = 0
            t = u
            while t > 0:
                nb += 1
                t >>= 8
            for step in range(nb + 1):
                if step < nb:
                    st = ((u >> (8 * (nb - 1 - step))) & 0xFF) << 8
                    lg = 8
                else:
                    st = np.int64(nb) << 13
                    lg = 13
                xm = np.int64(1) << (lg + XMAX_SHIFT)
                while xa >= xm:
                    pos -= 1
                    out[U(pos)] = xa & 0xFF
                    xa >>= 8
                xa = ((xa >> lg) << PREC) + (xa & ((np.int64(1) << lg) - 1)) + st
            s = n - 1
        e4 = (cb + s) * 4
        x_max = np.int64(enc[U(e4)])
        # Branchless renormalisation (at most 2 bytes): always store, advance only when needed.
        need = np.int64(xa >= x_max)
        out[U(pos - 1)] = xa & 0xFF
        pos -= need
        xa >>= need << 3
        need = np.int64(xa >= x_max)
        out[U(pos - 1)] = xa & 0xFF
        pos -= need
        xa >>= need << 3
        cs = np.int64(enc[U(e4 + 3)])
        quo = (xa * np.int64(enc[U(e4 + 1)])) >> (cs >> 16)
        xa = xa + np.int64(enc[U(e4 + 2)]) + quo * (cs & 0xFFFF)
        xa, xb = xb, xa
        q -= 1
        j -= 1
        if j < lo:
            j = hi - 1
            c -= 1
            q -= HW - blk
    return pos, xa, xb


# ----------------------------------------------------------------------------- decode
@njit(nogil=True, cache=True)
def _decode_range(buf, start, size, idx, per_channel, rinfo, cdf, lut, lo, hi, C, HW, out):
    """Decode positions [lo, hi) of every channel of out (flat [C*HW]) from buf[start:start+size]."""
    if size < STATE_BYTES:
        return ERR_SHORT
    end = start + size
    last = end - 1
    xa = np.int64(0)
    xb = np.int64(0)
    for i in range(4):
        xa |= np.int64(buf[U(start + i)]) << (8 * i)
        xb |= np.int64(buf[U(start + 4 + i)]) << (8 * i)
    if xa < RANS_L or xb < RANS_L or xa >= (RANS_L << 8) or xb >= (RANS_L << 8):
        return ERR_FINAL
    status, p, xa, xb = _decode_core(buf, start + STATE_BYTES, last, idx, per_channel, rinfo, cdf, lut,
                                     lo, hi, C, HW, out, xa, xb)
    if status != OK:
        return status
    # After the last symbol (index total - 1) the states have swapped total times.
    if xa != RANS_L or xb != RANS_L or p != end:
        return ERR_FINAL
    return OK


@njit(nogil=True, cache=True)
def _decode_core(buf, p, last, idx, per_channel, rinfo, cdf, lut, lo, hi, C, HW, out, xa, xb):
    """Decode [lo, hi) of every channel from states (xa, xb) and buf[p:last + 1];
    returns (status, p, xa, xb) for the symbols after them or the final check."""
    blk = hi - lo
    total = C * blk
    c = 0
    j = lo
    q = j
    status = OK
    for _ in range(total):
        row = np.int64(c) if per_channel else np.int64(idx[U(q)])
        r4 = row * 4
        cb = rinfo[U(r4)]
        f = xa & MASK
        s = np.int64(lut[U(rinfo[U(r4 + 1)] + (f >> LUT_SHIFT))])
        s += np.int64(cdf[U(cb + s + 1)] <= f)  # one branchless step settles most buckets
        while cdf[U(cb + s + 1)] <= f:
            s += 1
        c0 = np.int64(cdf[U(cb + s)])
        xa = (np.int64(cdf[U(cb + s + 1)]) - c0) * (xa >> PREC) + f - c0
        # Branchless renormalisation: read clamped to the slice, keep the byte only when
        # needed; an overrun is flagged after the fact (the clamp keeps reads in bounds).
        need = np.int64(xa < RANS_L)
        if p < last:  # two bytes left at least: no clamps needed
            xa = (xa << (need << 3)) | (np.int64(buf[U(p)]) & -need)
            p += need
            need = np.int64(xa < RANS_L)
            xa = (xa << (need << 3)) | (np.int64(buf[U(p)]) & -need)
            p += need
        else:
            bad = need & np.int64(p > last)
            xa = (xa << (need << 3)) | (np.int64(buf[U(min(p, last))]) & -need)
            p += need
            need = np.int64(xa < RANS_L)
            bad |= need & np.int64(p > last)
            xa = (xa << (need << 3)) | (np.int64(buf[U(min(p, last))]) & -need)
            p += need
            if bad:
                status = ERR_OVERRUN
                break
        n = rinfo[U(r4 + 3)]
        if s < n - 1:
            v = s + rinfo[U(r4 + 2)]
        else:
            # ESCAPE: byte count (uniform over 8 slots), then the bytes low first.
            f = xa & MASK
            nb = f >> 13
            if nb > 4:
                status = ERR_ESCAPE
                break
            u = np.int64(0)
            for step in range(nb + 1):
                if step == 0:
                    xa = (xa >> PREC) * 8192 + (f & 8191)
                else:
                    f = xa & MASK
                    u |= (f >> 8) << (8 * (step - 1))
                    xa = (xa >> PREC) * 256 + (f & 255)
                while xa < RANS_L:
                    if p > last:
                        status = ERR_OVERRUN
                        break
                    xa = (xa << 8) | np.int64(buf[U(p)])
                    p += 1
                if status != OK:
                    break
            if status != OK:
                break
            v = (u >> 1) if (u & 1) == 0 else -((u + 1) >> 1)
            sv = v - rinfo[U(r4 + 2)]
            if sv >= 0 and sv < n - 1:  # our encoder never escapes a codable value
                status = ERR_ESCAPE
                break
        out[U(q)] = v
        xa, xb = xb, xa
        q += 1
        j += 1
        if j == hi:
            j = lo
            c += 1
            q += HW - blk
    return status, p, xa, xb


# ----------------------------------------------------------------------------- slices
@njit(parallel=True, nogil=True, cache=True)
def encode_slices(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, scratch):
    """Slice i = positions [lo[i], hi[i]) of every channel, coded into scratch[i]; returns starts."""
    n = lo.shape[0]
    starts = np.empty(n, dtype=np.int64)
    for i in prange(n):
        starts[i] = _encode_range(sym, idx, per_channel, rinfo, enc, lo[i], hi[i], C, HW, scratch[i])
    return starts


@njit(parallel=True, nogil=True, cache=True)
def decode_slices(buf, starts, sizes, idx, per_channel, rinfo, cdf, lut, lo, hi, C, HW, out):
    """Decode every slice in parallel into out (flat int32 [C*HW]); returns a status per slice."""
    n = lo.shape[0]
    status = np.empty(n, dtype=np.int64)
    for i in prange(n):
        status[i] = _decode_range(buf, starts[i], sizes[i], idx, per_channel, rinfo, cdf, lut,
                                  lo[i], hi[i], C, HW, out)
    return status


@njit(nogil=True, cache=True)
def encode_one(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, out):
    """Single-thread encode of one range (benchmarks: no prange scheduling)."""
    return _encode_range(sym, idx, per_channel, rinfo, enc, lo, hi, C, HW, out)


@njit(nogil=True, cache=True)
def decode_one(buf, start, size, idx, per_channel, rinfo, cdf, lut, lo, hi, C, HW, out):
    """Single-thread decode of one range (benchmarks)."""
    return _decode_range(buf, start, size, idx, per_channel, rinfo, cdf, lut, lo, hi, C, HW, out)


# ----------------------------------------------------------------------------- chains
# Several tensors in one stream (ZVCP version 3, entropy/chain.py): the encoder codes the
# parts last first and carries the states across them; symbol k of the whole chain uses
# state k & 1, so the decoder takes the parts in order with the same two states.
@njit(nogil=True, cache=True)
def encode_part(sym, idx, per_channel, rinfo, enc, C, HW, out, pos, xa, xb):
    """All of a [C, HW] tensor before out[pos], from states (xa, xb); returns (pos, xa, xb)."""
    return _encode_core(sym, idx, per_channel, rinfo, enc, 0, HW, C, HW, out, pos, xa, xb)


@njit(nogil=True, cache=True)
def flush_states(out, pos, xa, xb):
    return _flush(out, pos, xa, xb)


@njit(nogil=True, cache=True)
def decode_part(buf, p, last, idx, per_channel, rinfo, cdf, lut, C, HW, out, xa, xb):
    """All of a [C, HW] tensor from states (xa, xb) and buf[p:last + 1]; returns (status, p, xa, xb)."""
    return _decode_core(buf, p, last, idx, per_channel, rinfo, cdf, lut, 0, HW, C, HW, out, xa, xb)
