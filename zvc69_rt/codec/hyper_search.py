"""Encoder-side rate search over a hyper latent: the same format, fewer bits.

The hyper analysis turns y into z in one amortised pass, and rounding gives the z_hat it
happens to land on; that is rarely the cheapest side information for *this* y. The decoder
takes any z_hat, so the encoder may send another one: moving an element of z_hat toward its
channel's most probable value saves z bits, and changes the mean and scale the hyper
synthesis gives y within +-WINDOW z cells, which may cost or save y bits. A greedy search
keeps the moves that save in total (bikes.mp4 P-frame residuals: -6 % of their bits in one
pass; docs/INTER.md "Hyper latent search").

    for each of the STRIDE^2 position classes (z cells STRIDE apart: their windows are disjoint)
        trials: one per channel, every class position of that channel moved one step
        hyper(trials) --> mean, exact scale index --> y bits per position
        every move that saves bits in its window (y) and itself (z) is kept; the kept moves
        together are checked against the total (windows of one class are disjoint, but
        channels at one position interact), and if they lose, only the best move per
        position is tried instead

Distortion: y_hat = round(y - mean) + mean stays within half a step of y whatever the
mean, so the search counts bits only; the caller compares real costs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zvc69_rt.entropy.tables import CdfTable

#: z cells either side whose y latents a z element reaches through the hyper synthesis and
#: the integer scale head (3x3 convolutions at z, 2z and 4z resolution: measured +-2).
WINDOW = 2
STRIDE = 2 * WINDOW + 1

#: z batch [B, Nz, h, w] -> (mean [B, M, 4h, 4w] float32, scale index [B, M, 4h, 4w] uint8).
HyperModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: z batch [B, Nz, h, w] -> bits of y per latent position [B, 4h, 4w] (summed over channels).
YRate = Callable[[np.ndarray], np.ndarray]


def gaussian_y_rate(y: np.ndarray, hyper: HyperModel, y_table: CdfTable) -> YRate:
    """YRate of latents y [M, 4h, 4w] coded as round(y - mean) with the hyper's scale rows."""
    def rate(z_batch: np.ndarray) -> np.ndarray:
        mean, index = hyper(z_batch)
        return y_table.ideal_bits_map(np.rint(y[None] - mean), index).sum(1)

    return rate


def channel_modes(z_table: CdfTable) -> np.ndarray:
    """The most probable value of each channel's factorized z distribution (ESCAPE excluded)."""
    freq = np.diff(z_table.cdf, axis=1)
    modes = np.empty(z_table.rows, np.int64)
    for c in range(z_table.rows):
        modes[c] = int(np.argmax(freq[c, : z_table.cdf_length[c] - 1])) + int(z_table.offset[c])
    return modes


def _window_sums(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """[B, 4h, 4w] per-y-position values -> [B, h, w] sums over each z cell's window."""
    b = a.shape[0]
    cells = a.reshape(b, h, 4, w, 4).sum((2, 4))
    k = STRIDE
    p = np.pad(cells, ((0, 0), (WINDOW + 1, WINDOW), (WINDOW + 1, WINDOW)))
    c = p.cumsum(1).cumsum(2)
    return c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]


def search_z(z_hat: np.ndarray, y_rate: YRate, z_table: CdfTable,
             passes: int = 1, stride: int = STRIDE) -> tuple[np.ndarray, float, float]:
    """A cheaper z_hat [Nz, h, w] (int) for the y behind y_rate: (z_hat, bits before, bits after).

    Bits are ideal code lengths of y (y_rate) and z (z_table, one row per channel). Never
    returns a z_hat whose estimated bits exceed the given one's."""
    z = np.array(z_hat, dtype=np.int32, copy=True)
    nz, h, w = z.shape

    def z_bits(zz: np.ndarray, channel: int | None = None) -> np.ndarray:
        return z_table.ideal_bits_map(zz, np.arange(nz)[:, None, None] if channel is None else channel)

    modes = channel_modes(z_table)[:, None, None].astype(np.int32)
    yb, zb = y_rate(z[None])[0], z_bits(z)
    if yb.shape != (4 * h, 4 * w):
        raise ValueError(f"search_z: y bits {list(yb.shape)} are not 4x z {list(z.shape)}")
    before = float(yb.sum() + zb.sum())
    for _ in range(passes):
        for ci in range(stride):
            for cj in range(stride):
                cls = np.zeros((h, w), bool)
                cls[ci::stride, cj::stride] = True
                movable = cls[None] & (z != modes)  # [Nz, h, w]
                chans = np.flatnonzero(movable.any((1, 2)))
                if chans.size == 0:
                    continue
                trials = np.repeat(z[None], chans.size, 0)
                step = np.sign(modes - z).astype(np.int32)
                for b, c in enumerate(chans):
                    trials[b, c] += np.where(movable[c], step[c], 0)
                dy = _window_sums(y_rate(trials) - yb[None], h, w)  # [B, h, w]
                dz = np.stack([z_bits(trials[b, c], c) - zb[c] for b, c in enumerate(chans)])
                gain = np.where(movable[chans], dy + dz, np.inf)
                pick = gain.argmin(0)
                best_only = (np.arange(chans.size)[:, None, None] == pick[None]) & (gain < 0)
                for keep in (gain < 0, best_only):  # every saving move, else the best one per position
                    if not keep.any():
                        break
                    new = z.copy()
                    for b, c in enumerate(chans):
                        new[c][keep[b]] = trials[b, c][keep[b]]
                    yb_new, zb_new = y_rate(new[None])[0], z_bits(new)
                    if yb_new.sum() + zb_new.sum() < yb.sum() + zb.sum():
                        z, yb, zb = new, yb_new, zb_new
                        break
    return z, before, float(yb.sum() + zb.sum())
