"""First frame of each held-out clip as a one-frame stream: ZVC69 levels 1-5 vs x264 medium
CRF 48..28; bytes, PSNR-Y, PSNR-YUV and the BD-rate of each (docs/INTER.md "Results
(session 7)": where the gap is). MODEL=BUNDLE picks another intra bundle.

    python tools/experiments/iframe_rd.py
"""

import os

from zvc69_rt.eval import reference_codecs as rc
from zvc69_rt.eval.bdrate import bd_rate
from zvc69_rt.eval.datasets import eval_clips
from zvc69_rt.eval.metrics import psnr_frame, psnr_yuv
from zvc69_rt.eval.zvc69_adapter import video_codec

codec = video_codec(16, 0, model=os.environ.get("MODEL"))
for name, frames in eval_clips(1):
    f = frames[:1]
    zvc, x264 = [], []
    for level in (1, 2, 3, 4, 5):
        bits, out = codec(f, level)
        zvc.append((bits / 8, psnr_frame(f[0], out[0])[0], psnr_yuv(f[0], out[0])))
    for crf in (48, 44, 40, 36, 32, 28):
        r = rc.encode_video(rc.X264_MEDIUM, f, crf, 16, 0)
        x264.append((r.num_bits / 8, psnr_frame(f[0], r.recon[0])[0], psnr_yuv(f[0], r.recon[0])))
    for label, pts in (("zvc69", zvc), ("x264", x264)):
        print(name, label, [(int(b), round(y, 2), round(v, 2)) for b, y, v in pts])
    for k, metric in ((1, "PSNR-Y"), (2, "PSNR-YUV")):
        bd = bd_rate([t[0] for t in x264], [t[k] for t in x264], [t[0] for t in zvc], [t[k] for t in zvc])
        print(f"{name} BD-rate vs x264 ({metric}): {bd:+.1f} %")
