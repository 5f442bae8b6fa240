"""Pad pictures to the networks' alignment by edge replication, and crop back after decoding.

Edge replication (not zeros) keeps the padded border as smooth as the picture's edge, so
it costs few bits and does not bleed dark borders into the last real rows/columns.
Works on one picture ``[C, H, W]`` or a batch ``[N, C, H, W]`` (only the last two axes change).
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.errors import InputError


def padded_size(height: int, width: int, multiple: int = 64) -> tuple[int, int]:
    """(H, W) rounded up to ``multiple``, e.g. (1080, 1920) -> (1088, 1920)."""
    if multiple < 1:
        raise InputError(f"padding multiple must be >= 1, got {multiple}")
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(x: np.ndarray, multiple: int = 64) -> tuple[np.ndarray, tuple[int, int]]:
    """Return (padded copy-or-same array, original (H, W)); H and W become multiples of ``multiple``.

    The input is returned as is (no copy) when it is already aligned.
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4) or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise InputError(f"picture to pad must be [C, H, W] or [N, C, H, W] with H, W >= 1, got {list(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    hp, wp = padded_size(h, w, multiple)
    if (hp, wp) == (h, w):
        return x, (h, w)
    out = np.empty(x.shape[:-2] + (hp, wp), dtype=x.dtype)
    out[..., :h, :w] = x
    if wp > w:
        out[..., :h, w:] = x[..., :, w - 1 : w]
    if hp > h:
        out[..., h:, :] = out[..., h - 1 : h, :]
    return out, (h, w)


def crop(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """View of the top-left ``size`` = (H, W) of a padded [C, H', W'] or [N, C, H', W'] array."""
    h, w = int(size[0]), int(size[1])
    if x.ndim not in (3, 4):
        raise InputError(f"picture to crop must be [C, H, W] or [N, C, H, W], got {list(x.shape)}")
    if not (1 <= h <= x.shape[-2] and 1 <= w <= x.shape[-1]):
        raise InputError(
            f"cannot crop {h}x{w} (HxW) out of a {x.shape[-2]}x{x.shape[-1]} picture; "
            "the crop size must be positive and not larger than the padded picture"
        )
    return x[..., :h, :w]
