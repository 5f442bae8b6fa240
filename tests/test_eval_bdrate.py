"""Bjontegaard deltas on synthetic curves whose answer is known exactly."""

import numpy as np
import pytest

from zvc69_rt.errors import InputError
from zvc69_rt.eval.bdrate import bd_psnr, bd_rate

RATES = [0.12, 0.25, 0.5, 0.9, 1.6]
PSNR = [28.0, 30.9, 33.8, 36.1, 38.7]


def test_constant_rate_ratio_gives_exact_bd_rate():
    assert bd_rate(RATES, PSNR, [0.8 * r for r in RATES], PSNR) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(RATES, PSNR, [1.25 * r for r in RATES], PSNR) == pytest.approx(25.0, abs=1e-9)
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-12)


def test_ratio_holds_on_partial_overlap_and_other_sample_points():
    # Test curve sampled at other qualities, covering only part of the anchor range:
    # with log-rate linear in PSNR the PCHIP interpolant is exact, so the answer is too.
    def anchor_rate(q):
        return 0.1 * np.exp(0.23 * (q - 28.0))

    qa = np.array([28.0, 31.0, 34.0, 37.0, 40.0])
    qt = np.array([30.0, 32.5, 35.0, 38.5, 43.0])
    got = bd_rate(anchor_rate(qa), qa, 0.8 * anchor_rate(qt), qt)
    assert got == pytest.approx(-20.0, abs=1e-9)


def test_constant_psnr_gain_gives_exact_bd_psnr():
    assert bd_psnr(RATES, PSNR, RATES, [p + 1.0 for p in PSNR]) == pytest.approx(1.0, abs=1e-12)
    assert bd_psnr(RATES, PSNR, RATES, [p - 0.5 for p in PSNR]) == pytest.approx(-0.5, abs=1e-12)


def test_swapping_anchor_and_test_inverts_the_ratio():
    rt = [0.1, 0.22, 0.41, 0.8, 1.7]
    qt = [28.5, 31.0, 33.2, 36.5, 39.9]
    a = bd_rate(RATES, PSNR, rt, qt) / 100
    b = bd_rate(rt, qt, RATES, PSNR) / 100
    assert (1 + a) * (1 + b) == pytest.approx(1.0, abs=1e-12)
    assert a != pytest.approx(0.0, abs=1e-3)


def test_point_order_does_not_matter():
    perm = [3, 0, 4, 2, 1]
    rt = [0.1, 0.22, 0.41, 0.8, 1.7]
    qt = [28.5, 31.0, 33.2, 36.5, 39.9]
    base = bd_rate(RATES, PSNR, rt, qt)
    shuffled = bd_rate([RATES[i] for i in perm], [PSNR[i] for i in perm], [rt[i] for i in perm], [qt[i] for i in perm])
    assert shuffled == pytest.approx(base, abs=1e-12)


def test_better_codec_is_negative():
    # Same rates but higher quality => fewer bits at equal quality.
    assert bd_rate(RATES, PSNR, RATES, [p + 1.5 for p in PSNR]) < -10.0


def test_errors():
    with pytest.raises(InputError, match="overlap"):
        bd_rate(RATES, PSNR, RATES, [p + 20 for p in PSNR])
    with pytest.raises(InputError, match="at least 2"):
        bd_rate([1.0], [30.0], RATES, PSNR)
    with pytest.raises(InputError, match="> 0"):
        bd_rate([0.0, 1.0], [30.0, 35.0], RATES, PSNR)
    with pytest.raises(InputError, match="finite"):
        bd_rate(RATES, [28.0, 30.9, 33.8, 36.1, float("inf")], RATES, PSNR)
    with pytest.raises(InputError, match="equally long"):
        bd_psnr(RATES, PSNR[:-1], RATES, PSNR)
