"""The exported I-frame cost gradient (onnx_export/synthesis_gradient.py) is the true
gradient: written out with forward operators, checked against torch autograd, in torch and
after ONNX export, and made only of operators TensorRT parses."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.onnx_support import check_file
from onnx_export.model import IntraModel, ModelConfig
from onnx_export.synthesis_gradient import TAIL_P, SynthesisGradient, export_gradient_graph


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = IntraModel(ModelConfig(N=16, M=24)).eval()
    with torch.no_grad():  # GDN away from its identity initialisation, so its adjoint matters
        for layer in m.gs:
            for p in layer.parameters():
                p.add_(0.05 * torch.randn_like(p).abs())
    return m


def _inputs(M, seed=1):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(1, M, 3, 5, generator=g) * 3
    return (y, torch.rand(1, M, 1, 1, generator=g) + 0.5, torch.rand(1, 3, 48, 80, generator=g),
            (torch.rand(1, 1, 48, 80, generator=g) > 0.3).float(), torch.randn(1, M, 3, 5, generator=g),
            torch.rand(1, M, 3, 5, generator=g) * 2 + 0.11, torch.tensor([250.0]))


def _autograd(model, y, ig, x, w, mean, scale, lag):
    y = y.clone().requires_grad_(True)
    x_hat = torch.clamp((model.gs(y * ig) + 1) / 2, 0, 1)
    d = lag / 3 * (w * (x_hat - x) ** 2).sum()
    n = torch.distributions.Normal(0.0, 1.0)
    p = n.cdf((y - mean + 0.5) / scale) - n.cdf((y - mean - 0.5) / scale)
    b = -torch.log2(p.clamp_min(1e-9)).sum()
    (d + b).backward()
    return y.grad, x_hat.detach(), float(d), float(b), p.detach()


def test_gradient_equals_autograd(model):
    args = _inputs(model.cfg.M)
    grad, x_hat, d, b = SynthesisGradient(model)(*args)
    want, want_x, want_d, want_b, p = _autograd(model, *args)
    torch.testing.assert_close(x_hat, want_x)
    assert float(d) == pytest.approx(want_d, rel=1e-5) and float(b) == pytest.approx(want_b, rel=1e-5)
    ok = p > TAIL_P
    assert int(ok.sum()) > 0.8 * ok.numel()
    torch.testing.assert_close(grad[ok], want[ok], rtol=1e-3, atol=1e-3)
    # in a far tail the proxy's slope is the Gaussian's: toward the mean, growing with the distance
    rate_only = SynthesisGradient(model)(args[0], args[1], args[2], args[3] * 0, *args[4:])[0]
    r = (args[0] - args[4])[~ok]
    assert r.numel() and bool((torch.sign(rate_only[~ok]) == torch.sign(r)).all())


def test_onnx_export_matches_and_parses(model, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "g.onnx"
    export_gradient_graph(model, path)
    assert check_file(path) == []
    args = _inputs(model.cfg.M, seed=2)
    names = ["y", "inv_gain", "x", "weight", "mean", "scale", "lag"]
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {n: a.numpy() for n, a in zip(names, args, strict=True)})
    with torch.no_grad():
        ref = SynthesisGradient(model)(*args)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=2e-3, atol=1e-3)  # erf, exp: ORT vs torch kernels


@pytest.fixture(scope="module", params=[0, 6], ids=["plain", "conditional"])
def inter_model(request):
    from onnx_export.inter_model import InterConfig, InterModel

    torch.manual_seed(0)
    m = InterModel(InterConfig(N=12, M=16, F=8, cond=request.param)).eval()
    with torch.no_grad():  # IGDN and the prediction's injections away from their initialisation
        for p in [*m.rs.parameters(), *(m.inj2.parameters() if request.param else ()),
                  *(m.inj4.parameters() if request.param else ())]:
            p.add_(0.05 * torch.randn_like(p).abs())
    return m


def _residual_inputs(M, seed=1):
    g = torch.Generator().manual_seed(seed)
    y, ig, x, w, mean, scale, lag = _inputs(M, seed)
    x, w = torch.rand(1, 3, 24, 40, generator=g), (torch.rand(1, 1, 24, 40, generator=g) > 0.3).float()
    return y, ig, torch.rand(1, 3, 24, 40, generator=g), x, w, mean, scale, lag


def test_residual_gradient_equals_autograd(inter_model):
    from onnx_export.synthesis_gradient import ResidualSynthesisGradient

    y, ig, pred, x, w, mean, scale, lag = _residual_inputs(inter_model.cfg.M)
    grad, x_hat, d, b = ResidualSynthesisGradient(inter_model)(y, ig, pred, x, w, mean, scale, lag)
    want_b = -torch.log2((torch.distributions.Normal(0.0, 1.0).cdf((y - mean + 0.5) / scale)
                          - torch.distributions.Normal(0.0, 1.0).cdf((y - mean - 0.5) / scale)).clamp_min(1e-9)).sum()
    assert float(b) == pytest.approx(float(want_b), rel=1e-5)
    yy = y.clone().requires_grad_(True)
    want_x = inter_model.residual_synthesis(yy, ig, pred)
    cost = lag / 3 * (w * (want_x - x) ** 2).sum()
    n = torch.distributions.Normal(0.0, 1.0)
    p = n.cdf((yy - mean + 0.5) / scale) - n.cdf((yy - mean - 0.5) / scale)
    (cost - torch.log2(p.clamp_min(1e-9)).sum()).backward()
    torch.testing.assert_close(x_hat, want_x.detach())
    assert float(d) == pytest.approx(float(cost), rel=1e-5)
    ok = p.detach() > TAIL_P
    assert int(ok.sum()) > 0.8 * ok.numel()
    torch.testing.assert_close(grad[ok], yy.grad[ok], rtol=1e-3, atol=1e-3)


def test_residual_onnx_export_matches_and_parses(inter_model, tmp_path):
    import onnxruntime as ort

    from onnx_export.synthesis_gradient import (
        RESIDUAL_INPUTS,
        ResidualSynthesisGradient,
        export_residual_gradient_graph,
    )

    path = tmp_path / "r.onnx"
    export_residual_gradient_graph(inter_model, path)
    assert check_file(path) == []
    args = _residual_inputs(inter_model.cfg.M, seed=2)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {n: a.numpy() for n, a in zip(RESIDUAL_INPUTS, args, strict=True)})
    with torch.no_grad():
        ref = ResidualSynthesisGradient(inter_model)(*args)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=2e-3, atol=1e-3)
