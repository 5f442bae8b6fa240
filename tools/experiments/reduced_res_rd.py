"""Reduced-resolution I-frames: the first frame of each clip coded alone at full size and at
half size (downsample_2x, code, upsample_2x as the decoder does), every quality 0..100 in
steps of 1/7; real bytes, PSNR-RGB of the visible area, and for each full-size quality the
half-size quality that minimises lambda*MSE + bpp at that quality's lambda
(docs/INTER.md "Reduced-resolution I-frames"). Also shows the rate floor that motivates it:
gains extrapolated below level 1 (quality < 0) do not lower the full-size rate.

    python tools/experiments/reduced_res_rd.py            # held-out clips (640x272)
    python tools/experiments/reduced_res_rd.py training   # training clips (640x360)
"""

import sys

import numpy as np

from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.codec.reduced_res import downsample_2x, upsample_to
from zvc69_rt.eval.color import frame_to_rgb
from zvc69_rt.eval.datasets import eval_clips, training_clips
from zvc69_rt.io.padding import pad_to_multiple

QUALITIES = (0, 14, 29, 43, 57, 71, 86, 100)


def extrapolated_gains(intra, quality: int):
    """IntraCodec.gain_vectors, but log-linear beyond level 1 for quality < 0."""
    pos = quality / 100 * (intra.bundle.levels - 1)
    lo = min(max(int(np.floor(pos)), 0), intra.bundle.levels - 2)
    t = pos - lo

    def interp(table):
        return np.exp(np.log(table[lo]) * (1 - t) + np.log(table[lo + 1]) * t).astype(np.float32).reshape(1, -1, 1, 1)

    return interp(intra.gains), interp(intra.inv_gains)


def code(enc: Encoder, src: np.ndarray, picture: np.ndarray, q: int, upsample: bool) -> tuple[float, float]:
    """(bpp, MSE of the visible picture) of one intra coding, upsampled as the decoder does."""
    h, w = src.shape[1:]
    lat = enc.intra.analyse(picture, q)
    data, symbols, mean = enc.intra.code(lat)
    recon = enc.intra.synthesise(symbols, mean, q)
    if upsample:
        recon = upsample_to(recon, enc.padded_size)
    mse = float(np.mean(np.square(np.clip(recon[:, :h, :w], 0, 1) - src, dtype=np.float64)))
    return 8 * len(data) / (h * w), mse


def main() -> None:
    clips = training_clips(1) if sys.argv[1:] == ["training"] else eval_clips(1)
    for name, frames in clips:
        rgb = frame_to_rgb(frames[0])
        h, w = rgb.shape[:2]
        enc = Encoder(EncoderConfig(width=w, height=h, gop=1, reduced_res=False))
        intra = enc.intra
        src = np.ascontiguousarray((rgb.astype(np.float32) / 255).transpose(2, 0, 1))
        full_pic = enc._intra_picture(pad_to_multiple(src, 64)[0])
        half_pic = pad_to_multiple(downsample_2x(src), 64, enc.config.padding)[0]

        full = {q: code(enc, src, full_pic, q, False) for q in QUALITIES}
        half = {q: code(enc, src, half_pic, q, True) for q in QUALITIES}
        print(f"{name} {w}x{h}: bpp/PSNR-RGB")
        print("  full ", " ".join(f"{b:.3f}/{10 * np.log10(1 / m):.2f}" for b, m in full.values()))
        print("  half ", " ".join(f"{b:.3f}/{10 * np.log10(1 / m):.2f}" for b, m in half.values()))
        choices = []
        for q in QUALITIES:
            lam = intra.lagrangian(q)
            cost_full = lam * full[q][1] + full[q][0]
            best = min(QUALITIES, key=lambda q2: lam * half[q2][1] + half[q2][0])
            cost_half = lam * half[best][1] + half[best][0]
            choices.append(f"q{q}: half@{best} {cost_half / cost_full:.2f}x")
        print("  RD cost of the best half-size quality / full size:", ", ".join(choices))
        original = intra.gain_vectors
        try:
            intra.gain_vectors = lambda q, intra=intra: extrapolated_gains(intra, q)
            below = [(q, code(enc, src, full_pic, q, False)) for q in (-43, -29, -14, 0)]
        finally:
            intra.gain_vectors = original
        print("  full size below level 1:", " ".join(f"q{q}:{b:.3f}/{10 * np.log10(1 / m):.2f}" for q, (b, m) in below))


if __name__ == "__main__":
    main()
