"""Block-adaptive quantisation of the residual latent by motion magnitude (the spec's
``adaptive_quantize_blockwise(residual, base_scale, motion_magnitude, block_size)``).

Where the decoded motion is large, the residual latent is quantised with a coarser step:
fast-moving content is where the eye forgives most and where a reconstruction is least
likely to be reused by the next frames. The step map comes from the decoded integer
motion vectors alone, so the decoder derives it exactly; the stream carries only one
strength byte (docs/INTER.md, residual flag 2).

    activity(block) = mean over its 16x16 vectors of |dx| + |dy|, in pixels (integer sums)
    level(block)    = min(strength, how many of THRESHOLDS_PX it reaches)
    step            = STEPS[level]   (latent units, per 64x64-pixel block, all channels)
    symbol          = round((y - mean) / step),   y_hat = symbol * step + mean
    CDF row         = max(scale index - ROWS_PER_LEVEL * level, 0)

A step of STEPS[k] = SCALE_RATIO ** (2 k) divides the symbol's Gaussian scale by the ratio
of two rows of the scale table, so the row index just moves down by 2 k: integer arithmetic
on the integer scale head's output, identical on every machine. The steps are float32
constants (not computed at run time), so y_hat is the same float arithmetic on both sides.
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.codec.motion import MOTION_STEPS, CodedMotion

BLOCK_PX = 64  # one level per 64x64 pixels: 8x8 residual latent cells, 16x16 motion vectors
THRESHOLDS_PX = (2, 4, 8, 16)  # mean |dx| + |dy| in pixels reaching each adds a level
MAX_STRENGTH = len(THRESHOLDS_PX)
ROWS_PER_LEVEL = 2
#: SCALE_TABLE[2] / SCALE_TABLE[0] = 1.2239707 to the power 0..4, rounded to float32.
STEPS = np.array([1.0, 1.2239707, 1.4981042, 1.8336357, 2.2443163], dtype=np.float32)


def block_levels(motion: CodedMotion, strength: int) -> np.ndarray:
    """Quantisation level per 64x64 block, int32 [H/64, W/64], from the decoded vectors."""
    if not 0 <= strength <= MAX_STRENGTH:
        raise ValueError(f"motion AQ strength must be 0..{MAX_STRENGTH}, got {strength}")
    _, h, w = motion.vectors.shape
    b = BLOCK_PX // 4
    if h % b or w % b:
        raise ValueError(f"motion grid {w}x{h} is not a multiple of {b} vectors")
    if strength == 0:
        return np.zeros((h // b, w // b), np.int32)
    act = np.abs(motion.vectors.astype(np.int64)).sum(axis=0)  # units of the precision's step
    sums = act.reshape(h // b, b, w // b, b).sum(axis=(1, 3))
    units_per_px = round(1 / MOTION_STEPS[motion.precision])  # 1, 2 or 4: exact
    levels = np.zeros(sums.shape, np.int32)
    for t in THRESHOLDS_PX[:strength]:  # sums / units_per_px / (b*b) >= t, in integers
        levels += (sums >= t * units_per_px * b * b).astype(np.int32)
    return levels


def _per_cell(levels: np.ndarray) -> np.ndarray:
    """Block levels [H/64, W/64] spread over the residual latent grid [1, H/8, W/8]."""
    cells = BLOCK_PX // 8
    return np.repeat(np.repeat(levels, cells, axis=0), cells, axis=1)[None]


def step_map(levels: np.ndarray) -> np.ndarray:
    """float32 [1, H/8, W/8] quantisation step of every residual latent cell."""
    return STEPS[_per_cell(levels)]


def shift_index(index: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Scale-table rows for the quantised symbols: each block's rows move down by 2 per level."""
    return np.maximum(index.astype(np.int32) - ROWS_PER_LEVEL * _per_cell(levels), 0).astype(index.dtype)
