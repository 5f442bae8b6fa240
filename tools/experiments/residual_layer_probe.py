"""Does a P-frame of the same picture (zero motion) refine an I-frame more cheaply than a
higher I level? Each held-out photo coded as one I-frame, and as a two-frame GOP of the same
picture, with the encoder's layers off (docs/INTRA.md "Residual layer", session 22).

    python tools/experiments/residual_layer_probe.py
"""

import numpy as np

from zvc69_rt.eval.datasets import eval_images
from zvc69_rt.eval.metrics import psnr_yuv
from zvc69_rt.eval.zvc69_adapter import video_codec
from zvc69_rt.io.color import rgb_to_yuv420


def main() -> None:
    one = video_codec(1, 0, intra_residual=False)
    for offset in (0, 8):
        two = video_codec(2, 0, p_quality_offset=offset, intra_residual=False)
        for name, rgb in eval_images(512)[:2]:
            x = rgb.transpose(2, 0, 1).astype(np.float32) / 255
            f = rgb_to_yuv420(x)
            for level in (5, 6, 7, 8):
                b1, o1 = one([f], level)
                b2, o2 = two([f, rgb_to_yuv420(x, pts=1)], level)
                print(f"{name} level {level}, P offset {offset}: I {b1 // 8} B {psnr_yuv(f, o1[0]):.2f} dB | "
                      f"I+P {b2 // 8} B {psnr_yuv(f, o2[0]):.2f} -> {psnr_yuv(f, o2[1]):.2f} dB", flush=True)


if __name__ == "__main__":
    main()
