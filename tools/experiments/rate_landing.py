"""How far vbr lands from its target on short clips, one pass against two and three
(docs/INTER.md "Two passes"). Per clip and quality: the rate CQP gives at that quality is
the target; then pass 1 (one-pass vbr), pass 2 planned by pass 1, pass 3 planned by pass 2.
`zvc69 encode --passes 3` keeps the first pass from 2 on within 5 %, else the closest.

    python tools/experiments/rate_landing.py train 50 75     # training clips (tuning)
    python tools/experiments/rate_landing.py eval 50 75      # held-out clips (report only)
"""

import sys

from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.eval.datasets import eval_clips, training_clips

FRAMES, GOP, FPS, MAX_SIZE = 16, 16, 25, 640


def run(frames, first_pass=None, **kw):
    """The rate (bit/s, frame records counted) of one encode of frames, and its encoder."""
    f0 = frames[0]
    config = EncoderConfig(width=f0.width, height=f0.height, gop=GOP, bframes=0, fps_num=FPS, **kw)
    enc = Encoder(config, first_pass=first_pass)
    packets = [p for f in frames for p in enc.encode(f)] + enc.flush()
    return sum((len(p.data) + 32) * 8 for p in packets) * FPS / len(frames), enc


which, qualities = sys.argv[1], [int(q) for q in sys.argv[2:]]
clips = training_clips(FRAMES, MAX_SIZE) if which == "train" else eval_clips(FRAMES, MAX_SIZE)
for name, frames in clips:
    for quality in qualities:
        target, _ = run(frames, quality=quality)
        line, plan = [f"{name:22s} q{quality:3d} target {target / 1000:7.1f} kbit/s"], None
        for k in range(3):
            rate, enc = run(frames, first_pass=plan, rate_control="vbr", bitrate=round(target))
            plan = enc.rate_control.first_pass()
            line.append(f"pass {k + 1} {100 * (rate / target - 1):+6.1f} %")
        print("  ".join(line), flush=True)
