"""The generic RD runner and BD summaries, with codecs whose output is known."""

import math

import numpy as np
import pytest

from zvc69_rt.errors import InputError
from zvc69_rt.eval import rd
from zvc69_rt.eval.color import rgb_to_frame
from zvc69_rt.eval.datasets import load_image, skimage_image_path


@pytest.fixture(scope="module")
def images():
    p = load_image(skimage_image_path("motorcycle_right"), max_size=96)
    return [("a", p), ("b", np.ascontiguousarray(p[::-1]))]


def test_lossless_codec_gives_capped_psnr_and_exact_bpp(images):
    def lossless(rgb, q):
        return 1000 * q, rgb.copy()

    pts = rd.evaluate_image_codec(lossless, images, [1, 2], name="id")
    h, w = images[0][1].shape[:2]
    assert [p.bpp for p in pts] == [pytest.approx(1000 / (h * w)), pytest.approx(2000 / (h * w))]
    assert pts[0].psnr_rgb == rd.PSNR_CAP and pts[0].ms_ssim == pytest.approx(1.0)
    assert pts[1].bits == 4000 and [it["image"] for it in pts[1].items] == ["a", "b"]


def test_noise_codec_psnr_matches_its_mse(images):
    def plus_two(rgb, q):
        return 8, np.clip(rgb.astype(np.int16) + 2, 0, 255).astype(np.uint8)

    img = np.full((32, 32, 3), 100, np.uint8)
    (pt,) = rd.evaluate_image_codec(plus_two, [img], [50])
    assert pt.psnr_rgb == pytest.approx(10 * math.log10(255**2 / 4))
    assert pt.psnr_y == pytest.approx(10 * math.log10(255**2 / 4))


def test_bad_codec_output_is_reported(images):
    with pytest.raises(InputError, match="reconstruction"):
        rd.evaluate_image_codec(lambda rgb, q: (10, rgb[:-1]), images, [1], name="crop")
    with pytest.raises(InputError, match="num_bits"):
        rd.evaluate_image_codec(lambda rgb, q: (0, rgb), images, [1])
    with pytest.raises(InputError, match="no images"):
        rd.evaluate_image_codec(lambda rgb, q: (1, rgb), [], [1])


def test_video_runner_kbps_and_frame_count():
    rng = np.random.default_rng(0)
    frames = [rgb_to_frame(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), pts=i) for i in range(5)]

    def copy_codec(fr, q):
        return 40_000, [f for f in fr]

    (pt,) = rd.evaluate_video_codec(copy_codec, frames, [7], fps=25, name="copy", clip="noise")
    assert pt.kbps == pytest.approx(40_000 / (5 / 25) / 1000)
    assert pt.bpp == pytest.approx(40_000 / (32 * 24 * 5))
    assert pt.psnr_yuv == rd.PSNR_CAP and len(pt.items[0]["frames"]) == 5
    with pytest.raises(InputError, match="returned 4 frames"):
        rd.evaluate_video_codec(lambda fr, q: (8, fr[:-1]), frames, [1])


def _pt(rate, psnr, ms):
    return rd.RDPoint(codec="c", quality=0, bits=1, bpp=rate, psnr_rgb=psnr, ms_ssim=ms)


def test_bd_summary_and_json_round_trip():
    anchor = [_pt(r, q, m) for r, q, m in [(0.2, 30, 0.95), (0.5, 33, 0.97), (1.0, 36, 0.985), (2.0, 39, 0.993)]]
    test = [_pt(0.8 * p.bpp, p.psnr_rgb, p.ms_ssim) for p in anchor]
    s = rd.bd_summary(anchor, test, "psnr_rgb")
    assert s["bd_rate"] == pytest.approx(-20.0) and s["bd_rate_msssim"] == pytest.approx(-20.0)
    far = [_pt(p.bpp, p.psnr_rgb + 50, 0.5) for p in anchor]
    s = rd.bd_summary(anchor, far, "psnr_rgb")
    assert s["bd_rate"] is None and "overlap" in s["bd_rate_error"]
    assert rd.RDPoint.from_dict(anchor[1].to_dict()) == anchor[1]
