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
