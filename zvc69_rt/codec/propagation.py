"""How much a P-frame's quality is worth to the frames that predict from it.

A frame's reconstruction error is inherited by the frames coded from it, in the proportion
that they predict rather than code anew (x264's MB-tree, here per frame and without
look-ahead). The fraction inherited per step is estimated from the last two anchors' sizes,
f = 1 - bytes(previous P) / bytes(last I); a frame with n frames left in its GOP then
carries w(n) = 1 + f + ... + f^(n-1) of its error into the future. The encoder codes the
P-frame at the quality whose lambda is (w(n) / mean w)^strength times the frame's own (x264's
frame-level qp offset from MB-tree): normalised over the GOP, so the tuned P quality offset
keeps its meaning, and frames early in a static GOP code the detail that the rest of it keeps
(Kite zoom), while the last frames before a keyframe code less and skip more.

    sizes of I, previous P --> f --> w(frames left) / mean over the GOP --> ^strength --> quality
"""

from __future__ import annotations

import math
from collections.abc import Callable

#: Exponent of the normalised weight (x264's MB-tree: qp offset -2*log2(w), i.e. lambda
#: scaled by w^(-2/3)); measured on the training clips, docs/INTER.md "Propagation weight".
STRENGTH = 2.0 / 3.0
#: Inherited fraction assumed before a P-frame of the GOP has been coded.
FIRST_FRACTION = 0.8
#: Upper bound of the fraction (a fully static clip would make w grow with the GOP length).
MAX_FRACTION = 0.95


def inherited_fraction(i_bytes: int, p_bytes: int | None) -> float:
    """Share of a frame a successor predicts instead of coding: 1 - P size / I size."""
    if p_bytes is None:
        return FIRST_FRACTION
    return min(MAX_FRACTION, max(0.0, 1.0 - p_bytes / max(1, i_bytes)))


def distortion_weight(frames_left: int, gop: int, fraction: float, strength: float = STRENGTH) -> float:
    """Weight of a P-frame's distortion with frames_left frames (itself included) up to the
    next keyframe, relative to the GOP's mean."""
    if gop < 2 or not 1 <= frames_left < gop:
        raise ValueError(f"frames_left {frames_left} outside 1..{gop - 1}")

    def carried(n: int) -> float:
        return float(n) if fraction >= 1.0 else (1.0 - fraction**n) / (1.0 - fraction)

    mean = sum(carried(n) for n in range(1, gop)) / (gop - 1)
    return (carried(frames_left) / mean) ** strength


def weighted_quality(quality: int, weight: float, lagrangian: Callable[[int], float]) -> int:
    """The quality 0..100 whose lambda is nearest (in log) to weight x lambda(quality): a
    frame worth twice as much to its successors is coded as if distortion cost twice as much.
    Ties go to the lower quality."""
    if weight == 1.0:
        return quality
    target = math.log(lagrangian(quality) * weight)
    return min(range(101), key=lambda q: (abs(math.log(lagrangian(q)) - target), q))
