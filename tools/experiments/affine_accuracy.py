"""Prediction PSNR (source reference) of the training zoom clip's frames 1-8 with the
affine fit of the flow network's field, the same fit refined on the pixels
(motion_search.refine_affine) and the true camera map (docs/INTER.md "Affine refinement").

    python tools/experiments/affine_accuracy.py
"""

import numpy as np

from zvc69_rt.codec import motion_search
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.codec.motion import affine_motion
from zvc69_rt.eval.datasets import training_clips

frames = dict(training_clips(9))["train-astronaut-zoom"]
f0 = frames[0]
enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, quality=50, gop=16, bframes=0))
xs = [enc.preprocess(f).x for f in frames]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a[:, : f0.height, : f0.width] - b[:, : f0.height, : f0.width]) ** 2)))


for t in range(1, 9):
    cur, ref = xs[t], xs[t - 1]
    flow = enc.inter._run("motion_estimation", ref=ref[None], cur=cur[None])["flow"][0]
    fit = motion_search.affine_fit(flow, (f0.height, f0.width))
    refined = motion_search.refine_affine(motion_search.luma(cur), motion_search.luma(ref), fit,
                                          (f0.height, f0.width))
    c0, c1 = frames[t - 1].meta["camera"], frames[t].meta["camera"]
    r = c1["a"] / c0["a"]  # pred(p) = ref(p + v): per H/4 grid cell, block centres at 4 * col + 1.5
    true = np.array([[4 * (r - 1), 0, 1.5 * (r - 1) + (c1["tx"] - c0["tx"]) / c0["a"]],
                     [0, 4 * (r - 1), 1.5 * (r - 1) + (c1["ty"] - c0["ty"]) / c0["a"]]])
    row = [f"{n} {psnr(enc.inter.predict(ref, affine_motion(c, flow.shape[1:])), cur):.2f} dB"
           for n, c in (("fit", fit), ("refined", refined), ("true map", true))]
    print(f"frame {t}:", ", ".join(row))
