"""Fit `inter.SAD_BITS` for a model bundle: residual bits per unit of prediction SAD.

The P-frame encoder ranks motion candidates by `k(q) * SAD + motion bits`, with
`k(q) = a * exp(b * q)`. The slope belongs to the residual coder of a given P model, so a
new model wants a new fit. This codes every motion candidate of a few P-frames in full at
several qualities and fits, per quality, residual bits = k * SAD (least squares through 0),
then log k linear in q:

    frame pairs --PFrameCodec.motion_candidates--> (field, pred) --code in full--> bytes
    per quality: k_q = sum(SAD * bits) / sum(SAD^2)      (a, b) = fit of log k_q on q

Run on TRAINING clips only (`python -m zvc69_rt.eval.sad_fit [--model BUNDLE]`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np

from zvc69_rt.codec.inter import PFrameAnalysis, PFrameCodec


def slope(codec: PFrameCodec, pairs: Sequence[tuple[np.ndarray, np.ndarray]], quality: int,
          candidates: int = 12) -> tuple[float, float]:
    """(k, correlation): residual bits per SAD unit at this quality over every candidate
    field of every (cur, ref) pair (float32 [3, H, W], padded to multiples of 64)."""
    sads, bits = [], []
    for cur, ref in pairs:
        for motion, pred in codec.motion_candidates(cur, ref, quality, None, count=candidates):
            a = codec.analyse_residual(PFrameAnalysis(cur=cur, motion=motion, pred=pred, quality=quality))
            residual, _ = codec.code_residual(a)  # flag and payloads: the frame data after the motion
            sads.append(codec.sad(cur, pred))
            bits.append(8.0 * len(residual))
    s, r = np.array(sads), np.array(bits)
    corr = float(np.corrcoef(s, r)[0, 1]) if len(s) > 1 and s.std() > 0 and r.std() > 0 else float("nan")
    return float(s @ r / (s @ s)), corr


def fit(qualities: Sequence[int], slopes: Sequence[float]) -> tuple[float, float]:
    """(a, b) of k(q) = a * exp(b * q), least squares on log k (two qualities at least)."""
    if len(set(qualities)) < 2 or len(slopes) != len(qualities) or min(slopes) <= 0:
        raise ValueError(f"sad_fit: need positive slopes at two or more distinct qualities, got {list(qualities)}")
    b, log_a = np.polyfit(np.asarray(qualities, float), np.log(np.asarray(slopes, float)), 1)
    return math.exp(log_a), float(b)


def main(argv: Sequence[str] | None = None) -> int:
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.encoder import Encoder
    from zvc69_rt.eval.color import frame_to_rgb
    from zvc69_rt.eval.datasets import training_clips
    from zvc69_rt.io.padding import pad_to_multiple
    from zvc69_rt.models.bundle import ModelBundle

    ap = argparse.ArgumentParser(prog="python -m zvc69_rt.eval.sad_fit", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    ap.add_argument("--qualities", type=int, nargs="+", default=[15, 43, 71, 92])
    ap.add_argument("--frames", type=int, default=6, help="frames per training clip (P-frames 1, 3, 5, ...)")
    args = ap.parse_args(argv)
    if len(set(args.qualities)) < 2:
        ap.error("--qualities: give two or more distinct qualities (the fit is log k linear in q)")
    bundle = ModelBundle.load(args.model) if args.model else ModelBundle.load()
    clips = []  # (name, P-frame codec, (cur, ref) pairs): decoded and loaded once for every quality
    for name, frames in training_clips(args.frames):
        rgb = [(frame_to_rgb(f).astype(np.float32) / 255).transpose(2, 0, 1) for f in frames]
        x = [pad_to_multiple(np.ascontiguousarray(r))[0] for r in rgb]
        codec = Encoder(EncoderConfig(width=frames[0].width, height=frames[0].height, gop=16), bundle=bundle).inter
        clips.append((name, codec, [(x[i], x[i - 1]) for i in range(1, len(x), 2)]))
    slopes = []
    for q in args.qualities:
        ks = []
        for name, codec, pairs in clips:
            ks.append(slope(codec, pairs, q))
            print(f"q {q} {name}: k {ks[-1][0]:.5f} bit/SAD, correlation {ks[-1][1]:.3f}")
        slopes.append(float(np.mean([k for k, _ in ks])))
    a, b = fit(args.qualities, slopes)
    print(f"SAD_BITS = ({a:.5f}, {b:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
