"""Bytes and CPU time of I-frame entropy coding with and without the checkerboard context.

    python tools/experiments/checkerboard_cost.py [PHOTO] [WxH]     # default Kite 1920x1088

The same latents (the shipped bundle's analysis on ONNX Runtime) are coded by an
IntraCodec with the bundle's context and one without (checkerboard=False); code and parse
times are the best of three runs on this machine.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from PIL import Image

from zvc69_rt.codec.intra import IntraCodec
from zvc69_rt.codec.runtime import load_runners
from zvc69_rt.eval.datasets import eval_images
from zvc69_rt.models.bundle import ModelBundle


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "Kite"
    w, h = (int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "1920x1088").split("x"))
    bundle = ModelBundle.load()
    runners = load_runners(bundle, "onnxruntime")[0]
    codecs = {"plain": IntraCodec(bundle, runners, checkerboard=False), "context": IntraCodec(bundle, runners)}
    photo = eval_images(max_size=None, names=[name])[0][1]
    x = np.asarray(Image.fromarray(photo).resize((w, h), Image.LANCZOS)).transpose(2, 0, 1).astype(np.float32) / 255
    for q in (10, 60):
        lat = codecs["plain"].analyse(x, q)
        row = []
        for label, codec in codecs.items():
            data = codec.code(lat)[0]
            t_code = best_of(lambda c=codec, lat=lat: c.code(lat))
            t_parse = best_of(lambda c=codec, d=data, lat=lat: c.parse(d, lat.y.shape[1:]))
            row.append(f"{label} {len(data)} B, code {t_code * 1e3:.0f} ms, parse {t_parse * 1e3:.0f} ms")
        print(f"{name} {w}x{h} quality {q}: " + "; ".join(row))


if __name__ == "__main__":
    main()
