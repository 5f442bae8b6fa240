"""Exact integer scale head: z_hat -> Gaussian scale indexes, identical on every machine.

The scale indexes select the CDFs the rANS coder uses, so encoder and decoder must
compute them bit-identically whatever backend or precision ran the other graphs
(spec-notes.md, INTEGERIZED). The head therefore never touches a GPU or FP16 graph:

    z_hat (int) --conv3x3 int8--> acc int --requant+ReLU--> uint8 --PixelShuffle-->
                --conv3x3 int8--> acc int --requant+ReLU--> uint8 --PixelShuffle-->
                --conv3x3 int8--> acc int --per-channel integer thresholds--> index 0..63

Convolutions are evaluated as floating-point matrix products of small integers: every
partial sum is an integer of magnitude at most max_row(sum |w|) * max |x|, so the result
is exact whatever order BLAS adds in, and no libm function is ever called. Where that
bound is below 2**24 (the shipped heads: under 7.2e6) the product runs in float32, about
twice as fast as float64 (0.08 of 0.17 s per 1080p frame went to the last layer in
float64); otherwise float64 (exact below 2**53). Requantisation is int64 multiply-and-shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zvc69_rt.errors import ZVC69FormatError

Z_CLIP = 127  # z_hat is clamped to int8 range before entering the head


@dataclass(frozen=True)
class IntConvLayer:
    weight: np.ndarray  # int8 [Cout, Cin, 3, 3]
    bias: np.ndarray  # int64 [Cout], in accumulator units
    mult: np.ndarray  # int64 [Cout] requantisation multiplier (unused on the last layer)
    shift: int


@dataclass(frozen=True)
class IntegerScaleHead:
    layers: tuple[IntConvLayer, ...]  # the last one produces the accumulator for thresholds
    thresholds: np.ndarray  # int64 [M, 63]: index = count(acc > thresholds[c])

    @classmethod
    def from_tables(cls, t: dict[str, np.ndarray]) -> IntegerScaleHead:
        n = int(t["sh_num_layers"])
        layers = tuple(
            IntConvLayer(
                weight=np.asarray(t[f"sh{i}_w"], dtype=np.int8),
                bias=np.asarray(t[f"sh{i}_b"], dtype=np.int64),
                mult=np.asarray(t[f"sh{i}_mult"], dtype=np.int64),
                shift=int(t[f"sh{i}_shift"]),
            )
            for i in range(n)
        )
        return cls(layers, np.asarray(t["sh_thresholds"], dtype=np.int64))

    def __call__(self, z_hat: np.ndarray) -> np.ndarray:
        """z_hat: integer [N, h, w] -> uint8 scale indexes [M, 4h, 4w]; or a batch
        [B, N, h, w] -> [B, M, 4h, 4w] (the encoder's hyper-latent search: one matrix
        product per layer for all its trials)."""
        n = self.layers[0].weight.shape[1]
        if z_hat.ndim not in (3, 4) or z_hat.shape[-3] != n:
            raise ZVC69FormatError(f"scale head expects z_hat [{n}, h, w] or [B, {n}, h, w], got {list(z_hat.shape)}")
        x = np.clip(z_hat, -Z_CLIP, Z_CLIP).astype(np.int64)
        single = x.ndim == 3
        if single:
            x = x[None]
        for layer in self.layers[:-1]:
            acc = _conv3x3_exact(x, layer.weight, layer.bias)
            x = _requant_relu(acc, layer.mult, layer.shift)
            x = _pixel_shuffle(x, 2)
        acc = _conv3x3_exact(x, self.layers[-1].weight, self.layers[-1].bias)
        idx = np.empty(acc.shape, dtype=np.uint8)
        for c in range(acc.shape[1]):
            idx[:, c] = np.searchsorted(self.thresholds[c], acc[:, c], side="left")
        return idx[0] if single else idx


FLOAT32_EXACT = 1 << 24  # integers of smaller magnitude, and their sums below it, are exact in float32


def exact_float_dtype(x: np.ndarray, w: np.ndarray) -> type:
    """float32 when no partial sum of the integer convolution can reach 2**24, else float64."""
    bound = int(np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1).max()) * int(np.abs(x).max(initial=0))
    return np.float32 if bound < FLOAT32_EXACT else np.float64


def _conv3x3_exact(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[B, Cin, h, w] integers -> [B, Cout, h, w] int64 accumulators (zero padding 1)."""
    batch, cin, h, wd = x.shape
    cout = w.shape[0]
    dtype = exact_float_dtype(x, w)
    xp = np.pad(x.astype(dtype), ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((cin, 9, batch, h, wd), dtype=dtype)
    for ky in range(3):
        for kx in range(3):
            cols[:, ky * 3 + kx] = xp[:, :, ky : ky + h, kx : kx + wd].transpose(1, 0, 2, 3)
    acc = w.reshape(cout, cin * 9).astype(dtype) @ cols.reshape(cin * 9, batch * h * wd)
    return acc.reshape(cout, batch, h, wd).transpose(1, 0, 2, 3).astype(np.int64) + b[None, :, None, None]


def _requant_relu(acc: np.ndarray, mult: np.ndarray, shift: int) -> np.ndarray:
    q = (acc * mult[:, None, None] + (1 << (shift - 1))) >> shift
    return np.clip(q, 0, 255)


def _pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c // (r * r), h * r, w * r)
