"""Classical motion search for the encoder: candidates the learned flow cannot find.

The flow network was trained on pans of at most 12 px per frame (128 px patches); held-out
bikes.mp4 moves about 18 px per frame at 640x272, and the network returned a near-zero
field, so every P-frame coded the whole frame difference as residual. Block matching has
no such horizon. Everything here is encoder-side: the decoder only decodes vectors, so
the format does not change, and the RD ranking in PFrameCodec decides which field wins.

    cur, ref [3,H,W] --luma--> pyramids (2x box) --global_translation--> g (pixels, backward)
    g --shift_reference--> ref(p + round(g))  (the flow net then sees a small motion)
    g --block_field--> one vector per 16x16 block: integer search around g and the
                       neighbours' vectors, then a parabolic sub-pixel step

Backward convention as everywhere: cur(p) ~ ref(p + v(p)), v = (dx, dy) in pixels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from zvc69_rt.io.color import luma_weights

#: Largest global translation searched, in pixels of the frame: the coarsest pyramid level
#: (at most 1/16, at least 32 px high) searches +-COARSE_RADIUS or more, to reach this.
MAX_GLOBAL_PX = 64
COARSE_RADIUS = 4
#: Block size of block_field in pixels (4x4 vectors of the H/4 motion grid) and its search radius.
BLOCK = 16
BLOCK_RADIUS = 3
#: SAD penalty per pixel of distance from the global vector: keeps flat blocks on the
#: global motion instead of noise-driven vectors (whose DPCM costs bits).
SMOOTHNESS = 0.5


_LUMA_255 = tuple(k * 255.0 for k in luma_weights("bt601"))


def luma(x: np.ndarray) -> np.ndarray:
    """[3, H, W] RGB in [0, 1] -> float32 [H, W] in 0..255 (BT.601 weights)."""
    kr, kg, kb = _LUMA_255
    return (x[0] * kr + x[1] * kg + x[2] * kb).astype(np.float32)


def _down2(y: np.ndarray) -> np.ndarray:
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    return 0.25 * (y[0:h:2, 0:w:2] + y[1:h:2, 0:w:2] + y[0:h:2, 1:w:2] + y[1:h:2, 1:w:2])


def _overlap_cost(cur: np.ndarray, ref: np.ndarray, dx: int, dy: int) -> float:
    """Mean absolute difference of cur(p) and ref(p + (dx, dy)) where both exist."""
    h, w = cur.shape
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    if y1 - y0 < h // 2 or x1 - x0 < w // 2:  # too little overlap to trust
        return np.inf
    return float(np.mean(np.abs(cur[y0:y1, x0:x1] - ref[y0 + dy:y1 + dy, x0 + dx:x1 + dx])))


@njit(cache=True, nogil=True)
def _parabola(cm: float, c0: float, cp: float) -> float:
    """Sub-sample offset of the minimum of the parabola through (-1, cm), (0, c0), (1, cp):
    the sub-pixel step of both the global and the block search (0 when not a minimum)."""
    den = cm - 2 * c0 + cp
    if not np.isfinite(den) or den <= 0:
        return 0.0
    return min(max(0.5 * (cm - cp) / den, -0.5), 0.5)


def global_translation(cur: np.ndarray, ref: np.ndarray, max_px: int = MAX_GLOBAL_PX) -> np.ndarray:
    """One translation for the whole frame, float [dx, dy] in pixels (sub-pixel from a
    parabolic fit); cur, ref are luma [H, W]. Coarse-to-fine: exhaustive search of
    +-max_px at the coarsest level, +-1 refinement at each finer one."""
    levels = 0
    while (COARSE_RADIUS << levels) < max_px and min(cur.shape) >> (levels + 1) >= 32:
        levels += 1
    pc, pr = [cur], [ref]
    for _ in range(levels):
        pc.append(_down2(pc[-1]))
        pr.append(_down2(pr[-1]))
    best = (0, 0)
    for lv in range(levels, -1, -1):
        c, r = pc[lv], pr[lv]
        if lv == levels:
            centre, radius = (0, 0), max(COARSE_RADIUS, -(-max_px // (1 << levels)))
        else:
            centre, radius = (best[0] * 2, best[1] * 2), 1
        costs = {}
        for dy in range(centre[1] - radius, centre[1] + radius + 1):
            for dx in range(centre[0] - radius, centre[0] + radius + 1):
                costs[(dx, dy)] = _overlap_cost(c, r, dx, dy)
        best = min(costs, key=lambda k: (costs[k], abs(k[0]) + abs(k[1])))
    dx, dy = best
    c0 = _overlap_cost(cur, ref, dx, dy)
    fx = float(_parabola(_overlap_cost(cur, ref, dx - 1, dy), c0, _overlap_cost(cur, ref, dx + 1, dy)))
    fy = float(_parabola(_overlap_cost(cur, ref, dx, dy - 1), c0, _overlap_cost(cur, ref, dx, dy + 1)))
    return np.array([dx + fx, dy + fy], dtype=np.float32)


def shift_reference(ref: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """ref(p + (dx, dy)) for integer (dx, dy), borders replicated (as the warp's padding)."""
    _, h, w = ref.shape
    ys = np.clip(np.arange(h) + dy, 0, h - 1)
    xs = np.clip(np.arange(w) + dx, 0, w - 1)
    return np.ascontiguousarray(ref[:, ys][:, :, xs])


@njit(cache=True, nogil=True, inline="always")
def _block_sad(cur, ref, y0, x0, dx, dy, block):
    h, w = ref.shape
    s = 0.0
    for i in range(block):
        ry = min(max(y0 + i + dy, 0), h - 1)
        for j in range(block):
            rx = min(max(x0 + j + dx, 0), w - 1)
            s += abs(cur[y0 + i, x0 + j] - ref[ry, rx])
    return s


@njit(cache=True, nogil=True, parallel=True)
def _block_search(cur, ref, gx, gy, block, radius, smooth):  # pragma: no cover - numba
    h, w = cur.shape
    bh, bw = h // block, w // block
    out = np.zeros((2, bh, bw), dtype=np.float32)
    for by in prange(bh):
        for bx in range(bw):
            y0, x0 = by * block, bx * block
            best, bdx, bdy = 1e30, gx, gy
            for dy in range(gy - radius, gy + radius + 1):
                for dx in range(gx - radius, gx + radius + 1):
                    c = _block_sad(cur, ref, y0, x0, dx, dy, block) \
                        + smooth * block * block * (abs(dx - gx) + abs(dy - gy)) / radius
                    if c < best:
                        best, bdx, bdy = c, dx, dy
            c0 = _block_sad(cur, ref, y0, x0, bdx, bdy, block)
            out[0, by, bx] = bdx + _parabola(_block_sad(cur, ref, y0, x0, bdx - 1, bdy, block), c0,
                                             _block_sad(cur, ref, y0, x0, bdx + 1, bdy, block))
            out[1, by, bx] = bdy + _parabola(_block_sad(cur, ref, y0, x0, bdx, bdy - 1, block), c0,
                                             _block_sad(cur, ref, y0, x0, bdx, bdy + 1, block))
    return out


def block_field(cur: np.ndarray, ref: np.ndarray, g: np.ndarray, grid: tuple[int, int],
                block: int = BLOCK, radius: int = BLOCK_RADIUS) -> np.ndarray:
    """Per-block vectors around the global g, expanded to the motion grid [2, *grid]
    (grid = (H/4, W/4)); cur, ref luma [H, W] with H, W multiples of `block`."""
    h, w = cur.shape
    if h % block or w % block or grid != (h // 4, w // 4):
        raise ValueError(f"block_field: {w}x{h} frame, grid {grid}: need multiples of {block} and an H/4 grid")
    gx, gy = (round(float(v)) for v in g)
    vec = _block_search(np.ascontiguousarray(cur, dtype=np.float32), np.ascontiguousarray(ref, dtype=np.float32),
                        gx, gy, block, radius, SMOOTHNESS)
    k = block // 4
    return np.repeat(np.repeat(vec, k, axis=1), k, axis=2)
