"""Reduced-resolution I-frames: code the picture at half width and height, upsample after.

At low rates the intra model has a rate floor (a few large low-frequency latents cost
~0.15 bpp on smooth content whatever the quality), so a keyframe coded at half size and
upsampled costs far fewer bits for the same PSNR (docs/INTER.md "Reduced-resolution
I-frames"). The frame header's REDUCED_RES flag says which I-frames were coded so; their
latent size is the half picture's.

    encoder:  x [3, H, W] --downsample_2x (Lanczos-3, encoder only)--> [3, ceil(H/2), ceil(W/2)]
              --pad to the alignment--> IntraCodec --> frame data
    decoder:  frame data --IntraCodec--> x_hat half, padded --upsample_2x (normative)-->
              crop to the full picture's padded size

upsample_2x is part of the format: encoder and decoder must compute identical references,
so it is fixed here (separable 4-tap bicubic, a = -0.5, pixel centres aligned, edges
replicated) with taps that are exact binary fractions and a fixed order of float32
operations. The downsampler is the encoder's business and may change freely.
"""

from __future__ import annotations

import numpy as np

#: Bicubic (a = -0.5) at phase 1/4: output 2k reads input k-2..k+1 with these taps, output
#: 2k+1 reads k-1..k+2 with them reversed. Exact in binary (multiples of 1/128).
UPSAMPLE_TAPS = (np.float32(-3 / 128), np.float32(29 / 128), np.float32(111 / 128), np.float32(-9 / 128))


def _lanczos3_decimation_taps() -> np.ndarray:
    """12 taps: output j is centred at input 2j + 0.5 and reads inputs 2j-5 .. 2j+6."""
    d = (np.arange(12) - 5 - 0.5) / 2  # distance in output pixels
    w = np.sinc(d) * np.sinc(d / 3)
    return (w / w.sum()).astype(np.float32)


_DOWN_TAPS = _lanczos3_decimation_taps()

#: The encoder tries a half-size I-frame at these quality steps above the frame's own
#: (the best half-size quality sat 14-43 above on the training clips' first frames).
REDUCED_RES_QUALITY_STEPS = (14, 29, 43)


def reduced_size(height: int, width: int) -> tuple[int, int]:
    """The coded picture's size for a REDUCED_RES I-frame of a height x width stream."""
    return -(-height // 2), -(-width // 2)


def reduced_latent_size(height: int, width: int, alignment: int) -> tuple[int, int]:
    """Latent size (H/16, W/16 of the padded half picture) a REDUCED_RES I-frame's header carries."""
    h, w = reduced_size(height, width)
    return -(-h // alignment) * alignment // 16, -(-w // alignment) * alignment // 16


def _edge_pad(a: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.concatenate([np.repeat(a[..., :1], before, -1), a, np.repeat(a[..., -1:], after, -1)], -1)


def _down_last_axis(a: np.ndarray) -> np.ndarray:
    n = -(-a.shape[-1] // 2)
    p = _edge_pad(a, 5, 6 + (a.shape[-1] % 2))
    out = np.zeros(a.shape[:-1] + (n,), np.float32)
    for t, w in enumerate(_DOWN_TAPS):
        out += w * p[..., t : t + 2 * n : 2]
    return out


def downsample_2x(x: np.ndarray) -> np.ndarray:
    """[C, H, W] float32 -> [C, ceil(H/2), ceil(W/2)] (Lanczos-3; odd sizes replicate the last row/column)."""
    out = _down_last_axis(x.astype(np.float32, copy=False))
    out = _down_last_axis(out.swapaxes(-1, -2)).swapaxes(-1, -2)
    return np.ascontiguousarray(out)


def _up_last_axis(a: np.ndarray) -> np.ndarray:
    n = a.shape[-1]
    p = _edge_pad(a, 2, 2)
    t0, t1, t2, t3 = UPSAMPLE_TAPS
    even = ((t0 * p[..., 0:n] + t1 * p[..., 1 : n + 1]) + t2 * p[..., 2 : n + 2]) + t3 * p[..., 3 : n + 3]
    odd = ((t3 * p[..., 1 : n + 1] + t2 * p[..., 2 : n + 2]) + t1 * p[..., 3 : n + 3]) + t0 * p[..., 4 : n + 4]
    return np.stack([even, odd], -1).reshape(a.shape[:-1] + (2 * n,))


def upsample_2x(x: np.ndarray) -> np.ndarray:
    """[C, h, w] float32 -> [C, 2h, 2w]: width first, then height (normative, see the module docstring)."""
    out = _up_last_axis(x.astype(np.float32, copy=False))
    return np.ascontiguousarray(_up_last_axis(out.swapaxes(-1, -2)).swapaxes(-1, -2))


def upsample_to(x_half: np.ndarray, padded_size: tuple[int, int]) -> np.ndarray:
    """A decoded half-size picture (padded) -> the full picture at ``padded_size`` [3, Hp, Wp]."""
    hp, wp = padded_size
    up = upsample_2x(x_half)
    if up.shape[1] < hp or up.shape[2] < wp:
        raise ValueError(f"a {x_half.shape[1]}x{x_half.shape[2]} picture upsampled does not cover {hp}x{wp}")
    return np.ascontiguousarray(up[:, :hp, :wp])
