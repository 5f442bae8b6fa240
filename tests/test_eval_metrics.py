"""PSNR / PSNR-YUV / MS-SSIM against hand-computed values and scikit-image's SSIM."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from zvc69_rt.errors import InputError
from zvc69_rt.eval import metrics
from zvc69_rt.eval.datasets import load_image, skimage_image_path
from zvc69_rt.frame import Frame


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(skimage_image_path("motorcycle_right"), max_size=320)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def test_identical_images_give_inf_psnr_and_unit_msssim(photo):
    assert metrics.psnr(photo, photo.copy()) == math.inf
    assert metrics.psnr_planes(photo, photo) == [math.inf] * 3
    assert metrics.ms_ssim(photo, photo) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(photo[..., 0], photo[..., 0]) == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_mse_uint8_and_float():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 10  # MSE 100 in R, 0 in G/B: 100/3 over RGB
    assert metrics.psnr(a[..., 0], b[..., 0]) == pytest.approx(10 * math.log10(255**2 / 100))
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    planes = metrics.psnr_planes(a, b)
    assert planes[0] == pytest.approx(28.1308036, abs=1e-6) and planes[1:] == [math.inf, math.inf]
    fa = np.full((2, 2, 3), 0.5)
    fb = fa + 0.1  # MSE 0.01 with peak 1 -> 20 dB
    assert metrics.psnr(fa, fb) == pytest.approx(20.0)


def test_psnr_yuv_weights_6_1_1():
    y = np.zeros((4, 4), np.uint8)
    c = np.zeros((2, 2), np.uint8)
    ref = Frame(y, c, c)
    test = Frame(y + 10, c + 20, c)  # Y: MSE 100, U: MSE 400, V: identical -> capped? no: inf
    py, pu, pv = metrics.psnr_frame(ref, test)
    assert py == pytest.approx(10 * math.log10(255**2 / 100))
    assert pu == pytest.approx(10 * math.log10(255**2 / 400))
    assert pv == math.inf
    test2 = Frame(y + 10, c + 20, c + 20)
    assert metrics.psnr_yuv(ref, test2) == pytest.approx((6 * py + 2 * pu) / 8)


def test_bad_inputs_raise_input_error(photo):
    with pytest.raises(InputError, match="shape"):
        metrics.psnr(photo, photo[:-2])
    with pytest.raises(InputError, match="uint8"):
        metrics.psnr(photo, photo.astype(np.float32))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        metrics.psnr(np.full((2, 2), 2.0), np.zeros((2, 2)))
    with pytest.raises(InputError, match="window"):
        metrics.ms_ssim(photo[:8, :8], photo[:8, :8])
    with pytest.raises(InputError, match="64x48"):
        metrics.psnr_frame(Frame.from_bytes(bytes(Frame.nbytes_for(64, 48)), 64, 48),
                           Frame.from_bytes(bytes(Frame.nbytes_for(64, 46)), 64, 46))


@pytest.mark.parametrize("sigma", [3.0, 12.0, 30.0])
def test_single_scale_ssim_matches_skimage(photo, sigma):
    ref = photo[..., 1].astype(np.float64)
    test = _noisy(photo[..., 1], sigma).astype(np.float64)
    mine, _ = metrics.ssim_components(ref, test, 255.0)
    theirs = structural_similarity(
        ref, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert mine == pytest.approx(theirs, abs=1e-9)


def test_ms_ssim_is_one_scale_ssim_below_22_px(photo):
    # 11..21 px supports exactly one scale: MS-SSIM must equal plain SSIM.
    ref, test = photo[:20, :20, 0], _noisy(photo[:20, :20, 0], 10.0)
    assert metrics.ms_ssim_scales(20, 20) == 1
    theirs = structural_similarity(
        ref.astype(np.float64), test.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    )
    assert metrics.ms_ssim(ref, test) == pytest.approx(theirs, abs=1e-9)


def test_scale_count_and_five_scale_composition(photo):
    assert [metrics.ms_ssim_scales(s, 1000) for s in (10, 11, 22, 44, 88, 175, 176, 4000)] == [0, 1, 2, 3, 4, 4, 5, 5]
    # Rebuild the 5-scale value from skimage's SSIM at the last scale and our cs terms.
    ref = photo[..., 0].astype(np.float64)
    test = _noisy(photo[..., 0], 15.0).astype(np.float64)
    assert min(ref.shape) >= 176
    terms = []
    a, b = ref, test
    for s in range(5):
        if s < 4:
            terms.append(metrics.ssim_components(a, b, 255.0)[1])
            h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
            a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        else:
            terms.append(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False, data_range=255))
    expected = float(np.prod(np.array(terms) ** np.array(metrics.MS_SSIM_WEIGHTS)))
    assert metrics.ms_ssim(photo[..., 0], _noisy(photo[..., 0], 15.0)) == pytest.approx(expected, abs=1e-9)


def test_ms_ssim_decreases_with_distortion_and_rgb_is_channel_mean(photo):
    vals = [metrics.ms_ssim(photo, _noisy(photo, s)) for s in (2, 8, 25)]
    assert 1.0 > vals[0] > vals[1] > vals[2] > 0.0
    noisy = _noisy(photo, 8)
    per = [metrics.ms_ssim(photo[..., c], noisy[..., c]) for c in range(3)]
    assert metrics.ms_ssim(photo, noisy) == pytest.approx(np.mean(per))
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
