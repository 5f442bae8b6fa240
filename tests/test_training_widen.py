"""onnx_export.widen: more latent channels, same function (until training uses them)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from onnx_export.model import IntraModel, ModelConfig
from onnx_export.widen import widen


def test_widening_preserves_the_model():
    torch.manual_seed(0)
    small = IntraModel(ModelConfig(N=8, M=12)).eval()
    wide = widen(small, 20).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        g0, ig0 = small.gains(torch.tensor([5.0]))
        g1, ig1 = wide.gains(torch.tensor([5.0]))
        y0 = small.ga(x * 2 - 1) * g0[:, :, None, None]
        y1 = wide.ga(x * 2 - 1) * g1[:, :, None, None]
        torch.testing.assert_close(y1[:, :12], y0)
        assert y1[:, 12:].abs().max() > 0  # the new channels are alive (gradients reach them)
        z0, z1 = small.ha(y0), wide.ha(y1)
        torch.testing.assert_close(z1, z0)
        zh = torch.round(z0)
        torch.testing.assert_close(wide.hs_mean(zh)[:, :12], small.hs_mean(zh))
        assert wide.hs_mean(zh)[:, 12:].abs().max() == 0
        torch.testing.assert_close(wide.hs_scale(zh)[:, 12:], torch.full_like(wide.hs_scale(zh)[:, 12:],
                                                                             math.log(0.11)))
        yh = torch.round(y1)
        torch.testing.assert_close(wide.gs(yh * ig1[:, :, None, None]), small.gs(yh[:, :12] * ig0[:, :, None, None]))


def test_widening_must_widen():
    with pytest.raises(ValueError, match="does not widen"):
        widen(IntraModel(ModelConfig(N=8, M=12)), 12)
