"""P-frame training loop: runs, logs, checkpoints and resumes where it stopped (tiny data)."""

from __future__ import annotations

import csv

import pytest

torch = pytest.importorskip("torch")

import onnx_export.data as data_mod
import onnx_export.motion_data as motion_mod
from onnx_export import train_inter
from onnx_export.motion_data import MotionBatchSampler
from tests.fakes.pictures import pictures as _pictures


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(data_mod, "training_images", lambda verbose=True: _pictures(3, 160, 0))
    monkeypatch.setattr(motion_mod, "video_frames", lambda scale=2: _pictures(4, 96, 1))


def test_sampler_batches_have_known_flow_where_synthetic():
    s = MotionBatchSampler(_pictures(2, 160, 0), _pictures(4, 96, 1), size=64, seed=3, real_fraction=0.5)
    b = s.sample(8)
    assert b["ref"].shape == (8, 3, 64, 64) and b["flow"].shape == (8, 2, 64, 64)
    assert torch.all(b["flow"][~b["has_flow"]] == 0)
    assert float(b["ref"].min()) >= 0 and float(b["ref"].max()) <= 1
    synth = MotionBatchSampler(_pictures(2, 160, 0), [], size=64, seed=4).sample(6)
    assert bool(synth["has_flow"].all())  # no video frames: every pair is synthetic
    moving = synth["flow"].flatten(1).abs().amax(1) > 1
    assert bool(moving.any())
    from onnx_export.inter_model import warp

    pred = warp(synth["ref"], synth["flow"])
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    err_warp = (pred - synth["cur"])[inner].abs().flatten(1).mean(1)
    err_ref = (synth["ref"] - synth["cur"])[inner].abs().flatten(1).mean(1)
    assert bool((err_warp[moving] < 0.5 * err_ref[moving]).all())  # the given flow explains the motion


def test_sampler_is_reproducible_from_its_seed():
    """Same seed, same batches whatever torch's global RNG did: the P-frame export calibrates
    its integer scale head on such a batch, and an export must be bit-reproducible."""
    batches = []
    for torch_seed in (0, 1):
        torch.manual_seed(torch_seed)
        s = MotionBatchSampler(_pictures(2, 160, 0), _pictures(4, 96, 1), size=64, seed=3, real_fraction=0.5)
        batches.append(s.sample(4))
    for k in ("ref", "cur", "flow", "has_flow"):
        assert torch.equal(batches[0][k], batches[1][k]), k


def test_train_runs_checkpoints_and_resumes(tmp_path, tiny_data):
    run = tmp_path / "run"
    args = ["--run", str(run), "--patch", "64", "--batch", "2", "--eval-every", "2", "--log-every", "1"]
    assert train_inter.main([*args, "--steps", "3"]) == 0
    assert (run / "last.pt").exists() and (run / "best.pt").exists()
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["step"] == 3 and ck["kind"] == "inter"
    assert train_inter.main([*args, "--steps", "5"]) == 0
    with open(run / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5]  # resumed at 4, not from scratch
    model = train_inter.load_checkpoint(run / "last.pt")
    flow = model.motion(torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128))
    assert flow.shape == (1, 2, 16, 32)


def test_training_motion_rate_follows_the_runtime_predictors():
    """The rate term prices the cheaper of DPCM and MED, as the encoder codes: a vertical
    motion boundary costs escapes on every row under DPCM, almost nothing under MED."""
    import numpy as np

    from onnx_export.inter_model import motion_dpcm, motion_med, motion_rate_bits, residual_bits
    from zvc69_rt.codec.motion import med_residual

    q = torch.randint(-20, 21, (2, 2, 9, 13)).float()
    np.testing.assert_array_equal(motion_med(q).numpy(), np.stack([med_residual(v.astype(np.int64)) for v in q.numpy()]))
    edge = torch.zeros(1, 2, 16, 32)
    edge[:, 0, :, 10:] = 24.0  # a vehicle's side: left half static, right half moving
    assert torch.count_nonzero(motion_med(edge)) == 1 < torch.count_nonzero(motion_dpcm(edge))  # MED: only the start
    rate = motion_rate_bits(edge, noise=False)
    assert torch.equal(rate, residual_bits(motion_med(edge), False))
    assert float(rate) < 0.5 * float(residual_bits(motion_dpcm(edge), False))


def test_cubic_batches_train(tmp_path, tiny_data):
    run = tmp_path / "run"
    assert train_inter.main(["--run", str(run), "--patch", "64", "--batch", "2", "--steps", "2",
                             "--cubic-share", "1.0", "--eval-every", "2"]) == 0
    model = train_inter.load_checkpoint(run / "last.pt")
    ref = torch.rand(1, 3, 64, 64)
    out = model(ref, ref, torch.zeros(1, dtype=torch.long), cubic=True)
    assert float(out["pred"].min()) >= 0.0 and float(out["pred"].max()) <= 1.0  # bicubic overshoot clamped


def test_level_weighting_weights_the_loss_and_resets_best(tmp_path, tiny_data, capsys):
    """--level-weight-exp weighs each sample's lambda*D + R like the intra trainer; the logged
    "rd" stays the plain mean, and a changed weighting starts a new best (another val_loss)."""
    from onnx_export.train import level_weights

    torch.manual_seed(0)
    batch = MotionBatchSampler(_pictures(2, 160, 0), _pictures(4, 96, 1), size=64, seed=3).sample(2)
    model = train_inter.InterModel(train_inter.InterConfig())
    level = torch.tensor([0, 7])
    torch.manual_seed(1)
    out = model(batch["ref"], batch["cur"], level)
    w = level_weights(0.6)
    plain = train_inter.losses(out, batch, level, 0.0)
    weighted = train_inter.losses(out, batch, level, 0.0, w)
    assert float(weighted["rd"]) == pytest.approx(float(plain["rd"]))
    per_sample = [train_inter.losses(out, batch, level, 0.0, torch.eye(8)[i])["loss"] * 2 for i in (0, 7)]
    assert float(weighted["loss"]) == pytest.approx(float(w[0] * per_sample[0] + w[7] * per_sample[1]) / 2, rel=1e-5)

    run = tmp_path / "run"
    args = ["--run", str(run), "--patch", "64", "--batch", "2", "--eval-every", "2"]
    assert train_inter.main([*args, "--steps", "2"]) == 0
    assert train_inter.main([*args, "--steps", "4", "--level-weight-exp", "0.6"]) == 0
    assert "best reset" in capsys.readouterr().out
    ck = torch.load(run / "best.pt", weights_only=False)
    assert ck["step"] == 4 and ck["level_weight_exp"] == 0.6
