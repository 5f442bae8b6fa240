"""onnx_export.recover: a training checkpoint rebuilt from the shipped bundle computes
what the bundle computes (so training resumes from the shipped model, not from scratch)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from onnx_export import recover as rec
from zvc69_rt.backends.onnxruntime import OnnxRuntimeBackend
from zvc69_rt.models.bundle import DEFAULT_BUNDLE, ModelBundle
from zvc69_rt.models.scale_head import IntegerScaleHead


@pytest.fixture(scope="module")
def recovered():
    torch.manual_seed(0)
    real_fit = rec._fit_z_density
    rec._fit_z_density = lambda t, m, steps=300: real_fit(t, m, steps)  # a shorter refit is enough here
    try:
        return rec.recover(DEFAULT_BUNDLE)
    finally:
        rec._fit_z_density = real_fit


def test_transforms_match_the_shipped_graphs(recovered):
    model, info = recovered
    bundle = ModelBundle.load(DEFAULT_BUNDLE)
    assert info["step"] == bundle.manifest["source"]["step"]
    be = OnnxRuntimeBackend()
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 128, 192), dtype=np.float32)
    gain = bundle.tables["gains"][5].reshape(1, -1, 1, 1)
    ref = be.load(bundle.graph_path("analysis", "fp32")).run({"x": x, "gain": gain})
    with torch.no_grad():
        y = model.ga(torch.from_numpy(x) * 2 - 1) * torch.from_numpy(gain)
        z = model.ha(y)
    np.testing.assert_allclose(y.numpy(), ref["y"], atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(z.numpy(), ref["z"], atol=1e-3, rtol=1e-4)
    z_hat = np.rint(ref["z"]).astype(np.float32)
    mean = be.load(bundle.graph_path("hyper_synthesis", "fp32")).run({"z_hat": z_hat})["mean"]
    y_hat = (np.rint(ref["y"] - mean) + mean).astype(np.float32)
    inv = bundle.tables["inv_gains"][5].reshape(1, -1, 1, 1)
    x_hat = be.load(bundle.graph_path("synthesis", "fp32")).run({"y_hat": y_hat, "inv_gain": inv})["x_hat"]
    with torch.no_grad():
        np.testing.assert_allclose(model.hs_mean(torch.from_numpy(z_hat)).numpy(), mean, atol=1e-3, rtol=1e-4)
        mine = torch.clamp((model.gs(torch.from_numpy(y_hat * inv)) + 1) / 2, 0, 1).numpy()
    np.testing.assert_allclose(mine, x_hat, atol=1e-4)
    # the float scale head picks the integer head's CDF index almost everywhere
    with torch.no_grad():
        log_scale = model.hs_scale(torch.from_numpy(z_hat)).numpy()[0]
    from zvc69_rt.entropy import scale_to_index

    idx_float = scale_to_index(np.exp(log_scale))
    idx_int = IntegerScaleHead.from_tables(bundle.tables)(z_hat[0].astype(np.int32))
    assert np.mean(np.abs(idx_float.astype(int) - idx_int.astype(int)) <= 1) > 0.99


def test_z_prior_refit_is_close(recovered):
    assert recovered[1]["z_refit_kl_bits"] < 0.05
