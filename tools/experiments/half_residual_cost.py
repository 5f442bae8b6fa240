"""Reduced-size P/B residuals (residual flags 3 and 4): what they cost in encode time and
what they change frame by frame (docs/INTER.md "Half-size residual", "Quarter-size residual").

For one held-out clip and level, the same IPPP GOP is encoded without and with the tool,
alternating, best of two: `half` compares no reduced-size residual with flag 3, `quarter`
flag 3 alone with flags 3 and 4. Each frame prints as `flag:bytes/PSNR` (flag I / Ih = full /
half-size I-frame, 0 skipped, 1 coded, 2 motion AQ, 3 half size, 4 quarter size; PSNR over
the visible RGB picture). Kite level 3 shows the myopic choice: a cheap half-size residual
pre-empts the full one that lifts the rest of the GOP.

    python tools/experiments/half_residual_cost.py                    # bikes, level 4, half
    python tools/experiments/half_residual_cost.py Kite-zoom 3
    python tools/experiments/half_residual_cost.py bikes 2 quarter
"""

import sys
import time

import numpy as np

from zvc69_rt.codec import inter
from zvc69_rt.codec.api import EncoderConfig, level_to_quality
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.codec.motion import decode_motion
from zvc69_rt.eval.datasets import eval_clips


def residual_flag(enc: Encoder, packet) -> str:
    if packet.frame_type.name == "I":
        return "Ih" if packet.flags else "I"
    field_hw = (enc.latent_size[0] * 4, enc.latent_size[1] * 4)
    _, used = decode_motion(memoryview(packet.data), 0, field_hw, "P")
    return str(packet.data[used])


def encode(clip, level: int, sizes: dict[int, tuple[int, ...]]) -> tuple[float, list[str]]:
    """sizes: the reduced-size residuals tried, as inter.REDUCED_RESIDUAL_QUALITY_STEPS."""
    f0 = clip[0]
    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, quality=level_to_quality(level),
                                gop=len(clip), bframes=0))
    enc.inter.half_residual = bool(sizes)
    inter.REDUCED_RESIDUAL_QUALITY_STEPS = sizes
    row, seconds = [], 0.0
    for f in clip:
        t = time.perf_counter()
        packets = enc.encode(f)
        seconds += time.perf_counter() - t if row else 0.0  # P-frames only
        x = enc.preprocess(f).x[:, : f.height, : f.width]
        mse = float(np.mean((enc._reference[:, : f.height, : f.width] - x) ** 2))
        row += [f"{residual_flag(enc, p)}:{len(p.data)}/{10 * np.log10(1 / mse):.1f}" for p in packets]
    return seconds, row


def main(name: str = "bikes", level: int = 4, tool: str = "half") -> None:
    clip = dict(eval_clips(16, 640))[name]
    both = dict(inter.REDUCED_RESIDUAL_QUALITY_STEPS)
    half_only = {1: both[1]}
    runs = {"full": {}, "half": half_only} if tool == "half" else {"half": half_only, "half+quarter": both}
    times: dict[str, list[float]] = {k: [] for k in runs}
    rows: dict[str, list[str]] = {}
    for _ in range(2):
        for label, sizes in runs.items():
            seconds, rows[label] = encode(clip, level, sizes)
            times[label].append(seconds)
    for label in runs:
        print(f"{label}: P-frames {min(times[label]):.1f} s (best of 2)  " + " ".join(rows[label]))
    without, with_tool = (min(times[k]) for k in runs)
    print(f"encode time ratio, P-frames: x{with_tool / without:.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bikes", int(sys.argv[2]) if len(sys.argv) > 2 else 4,
         sys.argv[3] if len(sys.argv) > 3 else "half")
