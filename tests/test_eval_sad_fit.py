"""The SAD-to-bits fit behind inter.SAD_BITS (zvc69_rt/eval/sad_fit.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zvc69_rt.eval import sad_fit


def test_fit_recovers_an_exponential():
    qs = [10, 40, 70, 95]
    a, b = sad_fit.fit(qs, [0.004 * math.exp(0.03 * q) for q in qs])
    assert a == pytest.approx(0.004, rel=1e-9) and b == pytest.approx(0.03, rel=1e-9)


@pytest.mark.parametrize("qs, ks", [([40], [0.01]), ([40, 40], [0.01, 0.02]), ([10, 40], [0.01, 0.0])])
def test_fit_refuses_a_degenerate_sweep(qs, ks):
    with pytest.raises(ValueError, match="two or more distinct qualities"):
        sad_fit.fit(qs, ks)


def test_cli_refuses_one_quality(capsys):
    with pytest.raises(SystemExit):
        sad_fit.main(["--qualities", "43"])
    assert "two or more distinct qualities" in capsys.readouterr().err


def test_slope_grows_with_quality_on_real_residuals(shipped_inter):
    """A textured picture and the same picture moved by 1 px: coding every candidate in
    full, residual bits rise with SAD, and a higher quality spends more bits per SAD unit."""
    from zvc69_rt.codec.inter import PFrameCodec

    bundle, runners = shipped_inter
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:128].astype(np.float32)
    ref = np.stack([np.sin(xx / 3 + c) * np.cos(yy / 5 - c) for c in range(3)]) * 0.3 + 0.5
    ref = np.clip(ref + rng.normal(0, 0.03, ref.shape), 0, 1).astype(np.float32)
    cur = np.concatenate([ref[:, :, :1], ref[:, :, :-1]], axis=2)
    codec = PFrameCodec(bundle, runners)
    k_lo, corr = sad_fit.slope(codec, [(cur, ref)], 20, candidates=6)
    k_hi, _ = sad_fit.slope(codec, [(cur, ref)], 80, candidates=6)
    assert k_lo > 0 and k_hi > k_lo
    assert corr > 0.5, corr
