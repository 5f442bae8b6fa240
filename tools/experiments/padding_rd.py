"""Padding modes for the I-frame: the first frame of each clip coded alone at the eight
levels with "edge" and "smooth" padding (zvc69_rt/io/padding.py); real bytes, PSNR-RGB of
the visible area, BD-rate of smooth vs edge per clip (docs/INTER.md "Results (session 8)").

    python tools/experiments/padding_rd.py            # held-out clips (640x272)
    python tools/experiments/padding_rd.py training   # training clips (640x360)
"""

import sys

import numpy as np

from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.eval.bdrate import bd_rate
from zvc69_rt.eval.color import frame_to_rgb
from zvc69_rt.eval.datasets import eval_clips, training_clips
from zvc69_rt.io.padding import pad_to_multiple

clips = training_clips(1) if sys.argv[1:] == ["training"] else eval_clips(1)
bds = []
for name, frames in clips:
    rgb = frame_to_rgb(frames[0])
    h, w = rgb.shape[:2]
    x = np.ascontiguousarray((rgb.astype(np.float32) / 255).transpose(2, 0, 1))
    intra = Encoder(EncoderConfig(width=w, height=h, gop=1)).intra
    points = {}
    for mode in ("edge", "smooth"):
        padded, _ = pad_to_multiple(x, 64, mode)
        points[mode] = []
        for q in (0, 14, 29, 43, 57, 71, 86, 100):
            data, symbols, mean = intra.code(intra.analyse(padded, q))
            rec = np.clip(intra.synthesise(symbols, mean, q)[:, :h, :w], 0, 1) * 255
            mse = float(np.mean((rec - rgb.transpose(2, 0, 1)) ** 2))
            points[mode].append((8 * len(data) / (h * w), 10 * np.log10(255**2 / mse)))
    (e, s) = (np.array(points[m]) for m in ("edge", "smooth"))
    bds.append(bd_rate(e[:, 0], e[:, 1], s[:, 0], s[:, 1]))
    print(f"{name} {w}x{h}: smooth vs edge {bds[-1]:+.2f} %")
print(f"mean BD-rate smooth vs edge: {np.mean(bds):+.2f} %")
