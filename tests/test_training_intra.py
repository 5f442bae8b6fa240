"""Intra training loop: runs, logs, checkpoints, resumes; the auxiliary fidelity term (tiny data)."""

from __future__ import annotations

import csv

import pytest

torch = pytest.importorskip("torch")

from onnx_export import train
from onnx_export.model import IntraModel, ModelConfig
from tests.fakes.pictures import pictures as _pictures


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(train, "training_images", lambda verbose=True: _pictures(3, 160, 0))
    monkeypatch.setattr(train, "eval_images", lambda max_side=512: {"held": _pictures(1, 128, 9)[0]})


def test_train_runs_checkpoints_and_resumes_with_aux_fidelity(tmp_path, tiny_data):
    run = tmp_path / "run"
    args = ["--run", str(run), "--N", "8", "--M", "12", "--patch", "64", "--batch", "2", "--eval-every", "2",
            "--aux-fidelity", "0.5"]
    assert train.main([*args, "--steps", "3"]) == 0
    assert (run / "last.pt").exists() and (run / "best.pt").exists()
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 3
    assert train.main([*args, "--steps", "5"]) == 0
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    evals = [r for r in rows if r["eval"]]
    assert [int(r["step"]) for r in evals] == [2, 4]  # resumed at 4, not from scratch
    assert "psnr_noq=" in evals[0]["eval"]  # the transforms' no-quantisation ceiling is logged


def test_aux_fidelity_adds_the_unquantised_distortion():
    torch.manual_seed(0)
    model = IntraModel(ModelConfig(N=8, M=12))
    x = torch.rand(2, 3, 64, 64)
    level = torch.tensor([1, 6])
    out = model(x, level, fidelity=True)
    assert out["x_tilde"].shape == x.shape
    plain, _, _ = train.rd_loss(out, x, level)
    aux, _, _ = train.rd_loss(out, x, level, aux_fidelity=0.5)
    lam = torch.tensor(train.LAMBDAS)[level]
    extra = 0.5 * (lam * 255**2 * ((out["x_tilde"] - x) ** 2).flatten(1).mean(1)).mean()
    assert float(aux - plain) == pytest.approx(float(extra), rel=1e-5) and float(extra) > 0
    assert "x_tilde" not in model(x, level)  # off by default: no extra synthesis


def test_level_weights_even_out_the_levels_and_weight_the_loss():
    w = train.level_weights(0.6)
    assert w.shape == (len(train.LAMBDAS),) and float(w.mean()) == pytest.approx(1.0)
    assert bool((w[1:] < w[:-1]).all()) and float(w[0] / w[-1]) == pytest.approx(100 ** 0.6, rel=0.01)
    torch.manual_seed(0)
    model = IntraModel(ModelConfig(N=8, M=12))
    x = torch.rand(2, 3, 64, 64)
    level = torch.tensor([0, 7])
    out = model(x, level)
    per_sample = [train.rd_loss(out, x, level, weights=torch.eye(8)[i])[0] * 2 for i in (0, 7)]  # one level each
    weighted, _, _ = train.rd_loss(out, x, level, weights=w)
    assert float(weighted) == pytest.approx(float(w[0] * per_sample[0] + w[7] * per_sample[1]) / 2, rel=1e-5)


def test_changing_the_level_weighting_resets_best(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    args = ["--run", str(run), "--N", "8", "--M", "12", "--patch", "64", "--batch", "2", "--eval-every", "2"]
    assert train.main([*args, "--steps", "2"]) == 0
    assert train.main([*args, "--steps", "4", "--level-weight-exp", "0.6"]) == 0
    assert "best reset" in capsys.readouterr().out
    ck = torch.load(run / "best.pt", weights_only=False)
    assert ck["step"] == 4 and ck["level_weight_exp"] == 0.6  # best under the new weighting, not the old one
