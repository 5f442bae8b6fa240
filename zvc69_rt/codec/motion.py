"""Compressed motion of a P-frame: quantised vectors at H/4 <-> the spec's motion data.

    motion header (5 B: precision u8, width u16, height u16; zvc69_rt.bitstream.motion_header)
    scale_dx u8, scale_dy u8       Gaussian scale-table row for each component, or 255, 255 =
                                   every vector is zero and no payload follows; scale_dx
                                   + 128 (MED_FLAG) selects the median predictor, scale_dy
                                   + 128 (CUBIC_FLAG) the bicubic warp
    [ZVCP payload]                 Gaussian rANS of the prediction residuals, [2, height, width]
  or, for a global motion (session 7), scale_dx 254 / 253 and scale_dy 0 or CUBIC_FLAG:
    254 (UNIFORM_FIELD): dx i16, dy i16              one vector for every block
    253 (AFFINE_FIELD):  tx, ax, bx, ty, ay, by i32  v = (t + a*col + b*row + 2^15) >> 16

Vectors are integers in units of the precision's step (1, 1/2 or 1/4 pixel of the padded
frame), backward convention: pred(p) = ref(p + v(p)). Two predictors, per component:
  * DPCM (scale_dx < 128): each vector minus its left neighbour, column 0 minus the one
    above, the top-left one as is; undone with integer cumulative sums.
  * MED (scale_dx >= 128, session 6): the LOCO-I median edge detector of the left (a),
    upper (b) and upper-left (c) vectors, min(a, b) if c >= max(a, b), max(a, b) if
    c <= min(a, b), else a + b - c; row 0 and column 0 as in DPCM. A vertical motion
    boundary (a vehicle's side) is predicted from the row above, so a piecewise-constant
    field pays only where a boundary starts or bends (bikes.mp4 two-motion field: 226 ->
    36 bytes; block-averaged flow fields 2.9 KB -> 0.2 KB).
The warp (PFrameCodec.predict) is bilinear, or with CUBIC_FLAG (session 6) the bundle's
bicubic motion_compensation_cubic graph: sharper sub-pixel shifts on pans, worse on
noisy footage, so the encoder picks per frame. Both predictors are integer-only, so
nothing here depends on floating point. The predictor and the two scale rows are the
encoder's choice (the cheapest); they are plain bytes, so CDF selection is trivially
identical on every machine.

A global motion is common (a camera pan or zoom) and a predicted field of it still pays a
ZVCP payload's fixed bytes (header, slice, rANS states: 32 in version 1, ~16 in version 2)
for a few bytes of symbols:
a one-vector field took 41-45 bytes, 11 now; an affine one 31 bytes whatever its size.
The affine field is generated in integer arithmetic (int64, arithmetic shift), so the
encoder, which codes the field it generated from the same parameters, and the decoder
agree exactly.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numba import njit

from zvc69_rt import entropy
from zvc69_rt.bitstream.motion_header import SIZE as HEADER_SIZE
from zvc69_rt.bitstream.motion_header import MotionHeader, MotionPrecision
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError

#: Pixel step of one vector unit per precision.
MOTION_STEPS = {MotionPrecision.FULL_PEL: 1.0, MotionPrecision.HALF_PEL: 0.5, MotionPrecision.QUARTER_PEL: 0.25}
#: Largest displacement a vector may carry, in pixels (beyond it the warp only sees border).
MAX_VECTOR_PX = 2048
ZERO_FIELD = 255  # scale byte pair (255, 255): all vectors are zero, no payload
MED_FLAG = 128  # added to scale_dx: the payload holds MED residuals, not DPCM
CUBIC_FLAG = 128  # added to scale_dy: predict with the bicubic warp
UNIFORM_FIELD = 254  # scale_dx: one vector (dx, dy int16) for the whole field, no payload
AFFINE_FIELD = 253  # scale_dx: six int32 affine parameters (AFFINE_SHIFT fraction bits), no payload
AFFINE_SHIFT = 16
_UNIFORM = struct.Struct("<hh")
_AFFINE = struct.Struct("<6i")
ESCAPE_EXTRA_BITS = 3  # rough cost of an escape's byte count, for the encoder's estimate


@dataclass
class CodedMotion:
    vectors: np.ndarray  # int32 [2, h, w], units of the precision's step
    precision: MotionPrecision
    cubic: bool = False  # bicubic warp (CUBIC_FLAG); a zero field never warps
    affine: tuple[int, ...] | None = None  # (tx, ax, bx, ty, ay, by) the vectors were generated from

    @property
    def step(self) -> float:
        return MOTION_STEPS[self.precision]

    def pixels(self) -> np.ndarray:
        """Dequantised field in pixels, float32 [2, h, w] (exact: steps are powers of two)."""
        return self.vectors.astype(np.float32) * np.float32(self.step)

    @property
    def is_zero(self) -> bool:
        return not self.vectors.any()

    @property
    def is_uniform(self) -> bool:
        """Every vector the same (a global translation; UNIFORM_FIELD when not zero)."""
        return bool((self.vectors == self.vectors[:, :1, :1]).all())


def vector_limit(precision: MotionPrecision | int) -> int:
    """Largest |vector| in units of the precision's step (MAX_VECTOR_PX pixels)."""
    return int(MAX_VECTOR_PX / MOTION_STEPS[MotionPrecision(precision)])


def _check_range(v: np.ndarray, precision: MotionPrecision, where: str) -> None:
    """A decoded field beyond vector_limit is a format error (nothing warps that far)."""
    if np.abs(v).max() > vector_limit(precision):
        raise ZVC69FormatError(f"{where}: a motion vector exceeds {MAX_VECTOR_PX} pixels (corrupt motion data)")


def quantize(flow: np.ndarray, precision: MotionPrecision | int = MotionPrecision.QUARTER_PEL) -> CodedMotion:
    """Float flow [2, h, w] in pixels -> integer vectors (round half to even, clamped)."""
    p = MotionPrecision(precision)
    lim = vector_limit(p)
    q = np.clip(np.rint(np.nan_to_num(flow.astype(np.float64) / MOTION_STEPS[p])), -lim, lim).astype(np.int32)
    return CodedMotion(q, p)


def affine_vectors(params: tuple[int, ...], shape: tuple[int, int]) -> np.ndarray:
    """int64 [2, h, w] of v = (t + a*col + b*row + 2^15) >> 16 per component: the exact
    field both ends derive from AFFINE_FIELD parameters (|terms| < 2^48, no overflow)."""
    h, w = shape
    rows = np.arange(h, dtype=np.int64)[:, None]
    cols = np.arange(w, dtype=np.int64)[None, :]
    half = np.int64(1 << (AFFINE_SHIFT - 1))
    return np.stack([(np.int64(t) + np.int64(a) * cols + np.int64(b) * rows + half) >> AFFINE_SHIFT
                     for t, a, b in (params[:3], params[3:])])


def affine_motion(coef: np.ndarray, shape: tuple[int, int],
                  precision: MotionPrecision | int = MotionPrecision.QUARTER_PEL) -> CodedMotion | None:
    """An AFFINE_FIELD field from a float fit v_px = coef @ [col, row, 1] (coef [2, 3], pixels
    per H/4 grid cell): parameters rounded to 2^-16 steps, vectors generated from them.
    None when a parameter does not fit int32 or a vector exceeds MAX_VECTOR_PX."""
    p = MotionPrecision(precision)
    step = MOTION_STEPS[p]
    c = np.nan_to_num(np.asarray(coef, np.float64)) / step * (1 << AFFINE_SHIFT)
    raw = np.rint(np.stack([c[:, 2], c[:, 0], c[:, 1]], axis=1)).reshape(-1)  # (t, a, b) per component
    if np.abs(raw).max() >= 2**31:
        return None
    params = tuple(int(x) for x in raw)
    v = affine_vectors(params, shape)
    if np.abs(v).max() > vector_limit(p):
        return None
    return CodedMotion(v.astype(np.int32), p, affine=params)


def block_mean(flow: np.ndarray, block: int) -> np.ndarray | None:
    """Each block x block group of vectors replaced by its mean: a smoother field whose
    DPCM is mostly zero (an encoder-side rate option; the format is unchanged).
    None when the grid does not divide into blocks."""
    c, h, w = flow.shape
    if block <= 1:
        return flow
    if h % block or w % block:
        return None
    m = flow.reshape(c, h // block, block, w // block, block).mean(axis=(2, 4), keepdims=True)
    return np.broadcast_to(m, (c, h // block, block, w // block, block)).reshape(c, h, w)


def dpcm(v: np.ndarray) -> np.ndarray:
    d = v.astype(np.int64)
    out = d.copy()
    out[:, :, 1:] = d[:, :, 1:] - d[:, :, :-1]
    out[:, 1:, 0] = d[:, 1:, 0] - d[:, :-1, 0]
    return out


def inverse_dpcm(d: np.ndarray) -> np.ndarray:
    out = d.astype(np.int64).copy()
    out[:, :, 0] = np.cumsum(out[:, :, 0], axis=1)
    return np.cumsum(out, axis=2)


def med_residual(v: np.ndarray) -> np.ndarray:
    """Vectors [2, h, w] minus their median-edge-detector prediction (row 0 and column 0
    as in dpcm): vectorised, since the encoder knows every neighbour."""
    d = v.astype(np.int64)
    out = dpcm(d)
    a, b, c = d[:, 1:, :-1], d[:, :-1, 1:], d[:, :-1, :-1]
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    out[:, 1:, 1:] = d[:, 1:, 1:] - np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))
    return out


@njit(cache=True, nogil=True)
def med_predict(a, b, c):  # pragma: no cover - numba
    """The median edge detector of one component: left a, upper b, upper-left c (scalar
    twin of med_residual's vectorised rule, shared by the decoder and the encoder's
    segmentation)."""
    hi, lo = max(a, b), min(a, b)
    return lo if c >= hi else (hi if c <= lo else a + b - c)


@njit(cache=True, nogil=True)
def _inverse_med(d):  # pragma: no cover - numba
    k, h, w = d.shape
    v = np.empty_like(d)
    for ch in range(k):
        acc = 0
        for x in range(w):
            acc += d[ch, 0, x]
            v[ch, 0, x] = acc
        for y in range(1, h):
            v[ch, y, 0] = v[ch, y - 1, 0] + d[ch, y, 0]
            for x in range(1, w):
                v[ch, y, x] = med_predict(v[ch, y, x - 1], v[ch, y - 1, x], v[ch, y - 1, x - 1]) + d[ch, y, x]
    return v


def inverse_med(d: np.ndarray) -> np.ndarray:
    """Undo med_residual: a sequential scan (each prediction needs the decoded left
    vector). Values stay within int64 for any decodable payload: a prediction lies within
    its neighbours' range, so |v| grows by at most |residual| (< 2**32) per step of a
    monotone path (< 4096 steps): below 2**44; the caller range-checks the result."""
    return _inverse_med(np.ascontiguousarray(d, dtype=np.int64))


def _predictions(motion: CodedMotion) -> list[tuple[int, np.ndarray]]:
    """(scale_dx offset, residuals) per predictor: DPCM first, so ties keep it."""
    return [(0, dpcm(motion.vectors)), (MED_FLAG, med_residual(motion.vectors))]


def _cheapest(motion: CodedMotion) -> tuple[int, np.ndarray, tuple[int, int], float]:
    """(scale_dx offset, residuals, rows, estimated payload bits) of the cheaper predictor."""
    best = None
    for flag, d in _predictions(motion):
        (rx, bx), (ry, by) = choose_row(d[0]), choose_row(d[1])
        if best is None or bx + by < best[3]:
            best = (flag, d, (rx, ry), bx + by)
    return best


def _histogram_bits(vals: np.ndarray, counts: np.ndarray, row: int) -> float:
    t = entropy.gaussian_table()
    n = int(t.cdf_length[row])
    freq = np.diff(t.cdf[row, : n + 1]).astype(np.float64)
    k = vals - int(t.offset[row])
    inside = (k >= 0) & (k < n - 1)
    bits = -np.log2(freq[k[inside]] / float(1 << entropy.PRECISION))
    total = float((bits * counts[inside]).sum())
    if (~inside).any():
        esc = -math.log2(freq[n - 1] / float(1 << entropy.PRECISION))
        nbytes = np.ceil(np.log2(np.abs(vals[~inside]).astype(np.float64) * 2 + 2) / 8)
        total += float(((esc + ESCAPE_EXTRA_BITS + 8 * nbytes) * counts[~inside]).sum())
    return total


def estimate_bits(symbols: np.ndarray, row: int) -> float:
    """Approximate rANS cost of integer symbols with Gaussian table row `row`."""
    vals, counts = np.unique(symbols, return_counts=True)
    return _histogram_bits(vals, counts, row)


def choose_row(symbols: np.ndarray) -> tuple[int, float]:
    """Cheapest Gaussian table row for one component's DPCM symbols: (row, estimated bits).

    Every row is tried (one histogram, 64 short sums): a mostly-zero field with a few
    large jumps wants a narrow row and escapes, far below what its RMS suggests (a
    constant 19 px field of 160x80 vectors: ~1.2 KB estimated from the nine rows around
    the RMS that session 3 tried, 45 bytes coded now)."""
    vals, counts = np.unique(symbols, return_counts=True)
    best = (0, math.inf)
    for row in range(entropy.NUM_SCALES):
        b = _histogram_bits(vals, counts, row)
        if b < best[1]:
            best = (row, b)
    return best


def _global_mode(motion: CodedMotion) -> tuple[int, bytes] | None:
    """(scale_dx, parameter bytes) when the field is coded as a global motion, else None."""
    v = motion.vectors
    if motion.is_uniform and np.abs(v[:, 0, 0]).max() < 2**15:
        return UNIFORM_FIELD, _UNIFORM.pack(int(v[0, 0, 0]), int(v[1, 0, 0]))
    if motion.affine is not None:
        if not np.array_equal(affine_vectors(motion.affine, v.shape[1:]), v):
            raise ValueError("CodedMotion.affine does not generate its vectors")
        return AFFINE_FIELD, _AFFINE.pack(*motion.affine)
    return None


def estimate_motion_bits(motion: CodedMotion) -> float:
    """Bits the motion data would take (header and scale bytes included), without coding it."""
    if motion.is_zero:
        return 8.0 * (HEADER_SIZE + 2)
    if (g := _global_mode(motion)) is not None:
        return 8.0 * (HEADER_SIZE + 2 + len(g[1]))
    # a one-slice ZVCP version 2 payload: 6-byte header, two 1-byte varints, and ~4 bytes of
    # the two rANS states' flush beyond what the symbols carry
    return 8.0 * (HEADER_SIZE + 2 + 6 + 2 + 4) + _cheapest(motion)[3]


def encode_motion(motion: CodedMotion, num_slices: int | None = None) -> bytes:
    """Motion data bytes (header, scale bytes, payload) for vectors [2, h, w]."""
    _, h, w = motion.vectors.shape
    header = MotionHeader(precision=int(motion.precision), width=w, height=h).pack()
    if motion.is_zero:
        return header + bytes((ZERO_FIELD, ZERO_FIELD))
    cubic = CUBIC_FLAG if motion.cubic else 0
    if (g := _global_mode(motion)) is not None:
        return header + bytes((g[0], cubic)) + g[1]
    flag, d, rows, _ = _cheapest(motion)
    index = np.empty(d.shape, dtype=np.uint8)
    index[0], index[1] = rows
    return header + bytes((rows[0] + flag, rows[1] + cubic)) + entropy.encode_gaussian(
        d.astype(np.int32), index, num_slices=num_slices
    )


def decode_motion(buf: bytes | memoryview, offset: int, expect_hw: tuple[int, int],
                  where: str = "P-frame") -> tuple[CodedMotion, int]:
    """Parse motion data at buf[offset:]; returns (motion, bytes consumed).

    expect_hw is the motion grid the frame's latent size implies; a header saying
    otherwise is a format error (the payload would not fit the frame)."""
    view = memoryview(buf)
    head = MotionHeader.unpack(view, offset, where=f"{where}: motion header")
    if (head.height, head.width) != tuple(expect_hw):
        raise ZVC69FormatError(
            f"{where}: motion header says {head.width}x{head.height} vectors, the frame needs "
            f"{expect_hw[1]}x{expect_hw[0]}"
        )
    pos = offset + HEADER_SIZE
    if len(view) - pos < 2:
        raise ZVC69FormatError(f"{where}: motion scale bytes truncated")
    sx, sy = view[pos], view[pos + 1]
    pos += 2
    precision = MotionPrecision(head.precision)
    shape = (2, head.height, head.width)
    if (sx, sy) == (ZERO_FIELD, ZERO_FIELD):
        return CodedMotion(np.zeros(shape, np.int32), precision), pos - offset
    if sx in (UNIFORM_FIELD, AFFINE_FIELD):
        return _decode_global(view, pos, offset, sx, sy, precision, shape, where)
    med, cubic = sx >= MED_FLAG, sy >= CUBIC_FLAG
    rows = (sx - MED_FLAG * med, sy - CUBIC_FLAG * cubic)
    for name, raw, row in (("scale_dx", sx, rows[0]), ("scale_dy", sy, rows[1])):
        if row >= entropy.NUM_SCALES:
            raise ZVC69FormatError(
                f"{where}: motion {name} {raw} is not a scale row (0..63, or 128..191 with the median "
                f"predictor / bicubic warp flag), 253 (affine), 254 (uniform) nor the 255 pair"
            )
    sx, sy = rows
    try:
        size = entropy.payload_size(view, pos)
    except EntropyDecodeError as exc:
        raise EntropyDecodeError(f"{where}: motion payload: {exc}") from exc
    index = np.empty(shape, dtype=np.uint8)
    index[0], index[1] = sx, sy
    try:
        d = entropy.decode_gaussian(view[pos : pos + size], index)
    except EntropyDecodeError as exc:
        raise EntropyDecodeError(f"{where}: motion payload: {exc}") from exc
    v = inverse_med(d) if med else inverse_dpcm(d)
    _check_range(v, precision, where)
    return CodedMotion(v.astype(np.int32), precision, cubic), pos + size - offset


def _decode_global(view: memoryview, pos: int, offset: int, sx: int, sy: int, precision: MotionPrecision,
                   shape: tuple[int, int, int], where: str) -> tuple[CodedMotion, int]:
    """The UNIFORM_FIELD / AFFINE_FIELD parameters at view[pos:] -> (motion, bytes consumed)."""
    if sy not in (0, CUBIC_FLAG):
        raise ZVC69FormatError(f"{where}: motion scale_dy {sy} with a global motion must be 0 or {CUBIC_FLAG}")
    layout = _UNIFORM if sx == UNIFORM_FIELD else _AFFINE
    if len(view) - pos < layout.size:
        raise ZVC69FormatError(f"{where}: global motion parameters truncated ({layout.size} bytes expected)")
    params = layout.unpack_from(view, pos)
    affine = None
    if sx == UNIFORM_FIELD:
        v = np.empty(shape, np.int64)
        v[0], v[1] = params
    else:
        affine = params
        v = affine_vectors(params, shape[1:])
    _check_range(v, precision, where)
    return CodedMotion(v.astype(np.int32), precision, sy == CUBIC_FLAG, affine), pos + layout.size - offset
