"""Pad pictures to the networks' alignment, and crop back after decoding.

The decoder crops the padding, so its content only has to be cheap to code and continuous
with the picture. Two modes:

``edge``    edge replication: every padded pixel copies the nearest edge pixel. Continuous,
            but the edge row's texture repeated as vertical stripes costs the transform
            nearly as much as real content: 9-15 % of an I-frame's latent bits on the
            640x272 clips, whose padding is 15 % of the area.
``smooth``  the edge row box-blurred more with every row away from it (radius 2 per row),
            then the same for the columns: continuous at the edge and soon flat. The
            encoder pads I-frames this way (EncoderConfig.padding) and P/B-frames by edge
            replication, which moves with the picture under vertical motion as motion
            estimation expects. BD-rate vs ``edge`` for I-frames alone (frame 0, PSNR-RGB
            of the visible area, ``python tools/experiments/padding_rd.py [training]``):
            -2.9 % on the training clips (640x360), -3.4 % held-out (640x272); IPPP video
            in docs/INTER.md "Results (session 8)".

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


PAD_MODES = ("edge", "smooth")
SMOOTH_GROWTH = 2  # blur radius added per padded row/column in "smooth" mode


def pad_to_multiple(x: np.ndarray, multiple: int = 64, mode: str = "edge") -> tuple[np.ndarray, tuple[int, int]]:
    """Return (padded copy-or-same array, original (H, W)); H and W become multiples of ``multiple``.

    The input is returned as is (no copy) when it is already aligned.
    """
    if mode not in PAD_MODES:
        raise InputError(f"padding mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    x = np.asarray(x)
    if x.ndim not in (3, 4) or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise InputError(f"picture to pad must be [C, H, W] or [N, C, H, W] with H, W >= 1, got {list(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    hp, wp = padded_size(h, w, multiple)
    if (hp, wp) == (h, w):
        return x, (h, w)
    out = np.empty(x.shape[:-2] + (hp, wp), dtype=x.dtype)
    out[..., :h, :w] = x
    if mode == "smooth":
        if hp > h:
            out[..., h:, :w] = np.swapaxes(_blurred_copies(x[..., h - 1, :], hp - h), -1, -2)
        if wp > w:  # the columns run over the padded rows too, so the corner is filled
            out[..., :, w:] = _blurred_copies(out[..., :, w - 1], wp - w)
        return out, (h, w)
    if wp > w:
        out[..., :h, w:] = x[..., :, w - 1 : w]
    if hp > h:
        out[..., h:, :] = out[..., h - 1 : h, :]
    return out, (h, w)


def _blurred_copies(line: np.ndarray, count: int) -> np.ndarray:
    """``count`` copies of ``line`` (last axis, length n) box-blurred with radius
    SMOOTH_GROWTH * (k + 1) for copy k, edge-clamped: [..., n, count]."""
    n = line.shape[-1]
    radius = SMOOTH_GROWTH * np.arange(1, count + 1)
    r = int(radius[-1])
    ext = np.concatenate([np.repeat(line[..., :1], r, -1), line, np.repeat(line[..., -1:], r, -1)], -1)
    csum = np.concatenate([np.zeros(line.shape[:-1] + (1,)), np.cumsum(ext, -1, dtype=np.float64)], -1)
    pos = np.arange(n)[:, None] + r  # centre of each output sample in ext
    total = csum[..., pos + radius + 1] - csum[..., pos - radius]
    return (total / (2 * radius + 1)).astype(line.dtype)


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
