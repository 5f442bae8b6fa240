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


def test_widening_the_transforms_preserves_the_model():
    from onnx_export.widen import widen_transforms

    torch.manual_seed(0)
    small = IntraModel(ModelConfig(N=8, M=12)).eval()
    with torch.no_grad():  # trained-looking GDN parameters, not the identity-ish initial ones
        for m in small.modules():
            if hasattr(m, "gamma") and hasattr(m, "beta"):
                m.gamma.param.add_(0.05 * torch.rand_like(m.gamma.param))
                m.beta.param.mul_(1.5)
    wide = widen_transforms(small, 20).eval()
    assert wide.cfg.N == 8 and wide.cfg.transform_channels == 20 and wide.cfg.M == 12
    assert wide.ga[0].weight.shape[0] == 20 and wide.gs[0][0].weight.shape[0] == 80  # sub-pixel: 4 per channel
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        g, ig = small.gains(torch.tensor([5.0]))
        torch.testing.assert_close(wide.ga(x * 2 - 1), small.ga(x * 2 - 1), rtol=1e-5, atol=1e-6)
        assert wide.ga[:2](x * 2 - 1)[:, 8:].abs().max() > 0  # the new channels are alive
        y = small.ga(x * 2 - 1) * g[:, :, None, None] * 10  # (a random model's y would round to 0)
        torch.testing.assert_close(wide.gs(y * ig[:, :, None, None]), small.gs(y * ig[:, :, None, None]),
                                   rtol=1e-5, atol=1e-6)
        assert wide.gs[:2](y * ig[:, :, None, None])[:, 8:].abs().max() > 0
        for a, b in ((wide.ha, small.ha), (wide.hs_mean, small.hs_mean)):  # the hyperprior is untouched
            assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="does not widen"):
        widen_transforms(wide, 20)


def test_transform_width_survives_export_and_recovery(tmp_path):
    """A widened checkpoint exports (manifest transform_channels) and recovers with that width."""
    from onnx_export.export import export_bundle
    from onnx_export.recover import recover
    from onnx_export.train import save
    from onnx_export.widen import widen_transforms

    torch.manual_seed(0)
    wide = widen_transforms(IntraModel(ModelConfig(N=8, M=12)), 16)
    save(tmp_path / "w.pt", wide, None, 7, 1.0, None, wide.cfg)
    manifest = export_bundle(tmp_path / "w.pt", tmp_path / "bundle", precisions=("fp32", "int8"))
    assert manifest["transform_channels"] == 16 and manifest["hyperprior_channels"] == 8
    # INT8 analysis: the hyper-analysis convs stay float (export.INT8_KEEP_FLOAT), the others are Q/DQ
    import onnx

    g = onnx.load(str(tmp_path / "bundle" / manifest["graphs"]["analysis"]["int8"])).graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    quantized = {n.name: made_by.get(n.input[1]) == "DequantizeLinear" for n in g.node if n.op_type == "Conv"}
    assert not any(q for name, q in quantized.items() if name.startswith("/ha/"))
    assert any(q for name, q in quantized.items() if name.startswith("/ga/"))
    back, _ = recover(tmp_path / "bundle")
    assert back.cfg.transform_channels == 16 and back.cfg.N == 8
    for a, b in zip(back.gs.parameters(), wide.gs.parameters()):
        torch.testing.assert_close(a, b)
