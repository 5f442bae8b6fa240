"""Two-pass checkerboard context for I-frame latents (the file header's CHECKERBOARD flag).

The hyperprior predicts every latent from z alone. Half of the latents (the anchors,
(row + column) even) are coded that way; the other half are then coded knowing their
four decoded anchor neighbours, which say a lot about local texture:

    anchors:      sym_a = round(y_a - mean_a)                  Gaussian(index_a)
    non-anchors:  A     = min(sum |sym| of the 4 anchor neighbours, ACTIVITY_LEVELS - 1)
                  index = lut[channel, index_hyper, A]          (integers only: exact)
                  mean  = mean_hyper + alpha[channel] * (neighbours' mean y_hat - mean_hyper)
                  sym   = round(y - mean)                      Gaussian(index)

    frame data:   z payload || ZVCP(anchor symbols) || ZVCP(non-anchor symbols)

The scale index stays bit-exact on every backend (INTEGERIZED): it is a table lookup on
the integer hyper index and integer symbols. The mean refinement is floating point like
the hyper mean itself: it moves the reconstruction, never which CDF is used.

The tables are fitted to a frozen model by counting (onnx_export/fit_checkerboard.py,
no training): for each (channel, hyper index, activity) bucket the Gaussian row with
the fewest bits over the training latents; alpha by least squares. He et al., CVPR
2021, train a convolutional context instead; this lookup keeps the decoder's extra work
to a few array operations. Measured gain: docs/ENTROPY.md "Checkerboard context".

Anchors and non-anchors are packed row by row into [M, h, w/2] tensors (even rows take
even columns as anchors, odd rows odd columns), so each half is one ordinary ZVCP
payload with slices decoded in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from zvc69_rt.errors import ZVC69FormatError

ACTIVITY_LEVELS = 16
NUM_SCALE_INDEXES = 64


def split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[C, h, w] (h, w even) -> (anchors, non-anchors), each [C, h, w/2]."""
    c, h, w = a.shape
    anchors = np.empty((c, h, w // 2), a.dtype)
    others = np.empty((c, h, w // 2), a.dtype)
    anchors[:, 0::2], anchors[:, 1::2] = a[:, 0::2, 0::2], a[:, 1::2, 1::2]
    others[:, 0::2], others[:, 1::2] = a[:, 0::2, 1::2], a[:, 1::2, 0::2]
    return anchors, others


def merge(anchors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Inverse of split."""
    c, h, half = anchors.shape
    a = np.empty((c, h, 2 * half), anchors.dtype)
    a[:, 0::2, 0::2], a[:, 1::2, 1::2] = anchors[:, 0::2], anchors[:, 1::2]
    a[:, 0::2, 1::2], a[:, 1::2, 0::2] = others[:, 0::2], others[:, 1::2]
    return a


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the 4-neighbourhood, zero outside the picture."""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


@dataclass(frozen=True)
class CheckerboardContext:
    lut: np.ndarray  # uint8 [M, NUM_SCALE_INDEXES, ACTIVITY_LEVELS]: non-anchor scale index
    alpha: np.ndarray  # float32 [M]: weight of the neighbours' y_hat in the non-anchor mean

    @classmethod
    def from_tables(cls, tables: dict[str, np.ndarray], channels: int) -> CheckerboardContext | None:
        """The bundle's context tables (ctx_lut, ctx_alpha), or None when it has none."""
        if "ctx_lut" not in tables:
            return None
        lut, alpha = np.asarray(tables["ctx_lut"]), np.asarray(tables.get("ctx_alpha", np.zeros(0)))
        if lut.shape != (channels, NUM_SCALE_INDEXES, ACTIVITY_LEVELS) or lut.dtype != np.uint8 or (
            lut.size and int(lut.max()) >= NUM_SCALE_INDEXES
        ):
            raise ZVC69FormatError(
                f"model bundle: ctx_lut must be uint8 [{channels}, {NUM_SCALE_INDEXES}, {ACTIVITY_LEVELS}] with "
                f"values below {NUM_SCALE_INDEXES} (got {lut.dtype} {list(lut.shape)}); re-run the fit"
            )
        if alpha.shape != (channels,) or not np.all(np.isfinite(alpha)):
            raise ZVC69FormatError(f"model bundle: ctx_alpha must be {channels} finite floats; re-run the fit")
        return cls(lut, alpha.astype(np.float32))

    def non_anchor_parameters(self, anchor_symbols: np.ndarray, mean: np.ndarray,
                              index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded anchors [M, h, w/2] + hyper mean and index [M, h, w] -> the non-anchors'
        (mean float32, scale index uint8), each [M, h, w/2]. One numba pass (the numpy form,
        anchor_context + lookups, took ~40 ms more per 1080p frame); shapes and index range
        are checked first because the kernel has no bounds checks."""
        m, h, w = mean.shape
        if (index.shape != mean.shape or anchor_symbols.shape != (m, h, w // 2) or w % 2
                or self.lut.shape[0] != m):
            raise ValueError(f"checkerboard: anchors {list(anchor_symbols.shape)}, mean {list(mean.shape)}, "
                             f"index {list(index.shape)} and {self.lut.shape[0]} channels of tables disagree")
        if index.size and int(index.max()) >= NUM_SCALE_INDEXES:
            raise ValueError(f"checkerboard: hyper scale index {int(index.max())} >= {NUM_SCALE_INDEXES}")
        out_mean = np.empty((m, h, w // 2), np.float32)
        out_index = np.empty((m, h, w // 2), np.uint8)
        _non_anchor_kernel(np.ascontiguousarray(anchor_symbols, dtype=np.int32),
                           np.ascontiguousarray(mean, dtype=np.float32), np.ascontiguousarray(index, dtype=np.uint8),
                           self.lut, self.alpha, out_mean, out_index)
        return out_mean, out_index


@njit(cache=True, nogil=True)
def _non_anchor_kernel(anchors, mean, index, lut, alpha, out_mean, out_index):  # pragma: no cover (numba)
    m, h, half = anchors.shape
    w = 2 * half
    top = ACTIVITY_LEVELS - 1
    for c in range(m):
        for i in range(h):
            for k in range(half):
                j = 2 * k + 1 - (i & 1)  # the non-anchor's column; an anchor at column jj is packed at jj >> 1
                act = 0
                total = np.float32(0.0)
                n = 0
                if j >= 1:
                    s = anchors[c, i, (j - 1) >> 1]
                    act += min(abs(np.int64(s)), top)  # decoded symbols may be any int32
                    total += np.float32(s) + mean[c, i, j - 1]
                    n += 1
                if j + 1 < w:
                    s = anchors[c, i, (j + 1) >> 1]
                    act += min(abs(np.int64(s)), top)  # decoded symbols may be any int32
                    total += np.float32(s) + mean[c, i, j + 1]
                    n += 1
                if i >= 1:
                    s = anchors[c, i - 1, j >> 1]
                    act += min(abs(np.int64(s)), top)  # decoded symbols may be any int32
                    total += np.float32(s) + mean[c, i - 1, j]
                    n += 1
                if i + 1 < h:
                    s = anchors[c, i + 1, j >> 1]
                    act += min(abs(np.int64(s)), top)  # decoded symbols may be any int32
                    total += np.float32(s) + mean[c, i + 1, j]
                    n += 1
                hyper = mean[c, i, j]
                neighbours = total / np.float32(max(n, 1))
                out_mean[c, i, k] = hyper + alpha[c] * (neighbours - hyper)
                out_index[c, i, k] = lut[c, index[c, i, j], min(act, top)]


def anchor_context(anchor_symbols: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a non-anchor knows of its 4 anchor neighbours, at the non-anchors [M, h, w/2]:
    activity min(sum |symbol|, ACTIVITY_LEVELS - 1) (int) and their mean y_hat (symbol +
    hyper mean; only neighbours inside the picture count)."""
    m, h, w = mean.shape
    sym = merge(anchor_symbols.astype(np.int32, copy=False), np.zeros((m, h, w // 2), np.int32))
    activity = np.minimum(_neighbour_sum(np.minimum(np.abs(sym.astype(np.int64)), ACTIVITY_LEVELS - 1)),
                          ACTIVITY_LEVELS - 1)
    is_anchor = merge(np.ones((1, h, w // 2), np.float32), np.zeros((1, h, w // 2), np.float32))
    y_hat = np.where(is_anchor > 0, sym + mean, np.float32(0))
    neighbours = _neighbour_sum(y_hat) / np.maximum(_neighbour_sum(is_anchor), 1)
    return split(activity)[1], split(neighbours)[1]
