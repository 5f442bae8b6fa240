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
    png = train_inter.plot(run)  # training curves and the validation loss (steps 2 and 4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
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


def test_conditional_upgrade_starts_where_the_plain_model_was_and_freezes_motion(tmp_path, tiny_data, capsys):
    """--conditional C adds the synthesis' prediction branch at zero: the upgraded model's
    x_hat equals the plain one's before training, the branch then learns; --freeze-motion
    leaves the flow network's weights exactly as they were."""
    run = tmp_path / "run"
    args = ["--run", str(run), "--patch", "64", "--batch", "2", "--eval-every", "2"]
    assert train_inter.main([*args, "--steps", "2"]) == 0
    plain = train_inter.load_checkpoint(run / "last.pt")
    assert plain.cfg.cond == 0

    cond = train_inter.InterModel(train_inter.InterConfig(cond=8))
    missing, unexpected = cond.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.split(".")[0] in ("pf2", "pf4", "inj2", "inj4") for k in missing)
    cond.eval()
    y_hat = torch.randn(1, 64, 8, 8)
    inv_gain = torch.rand(1, 64, 1, 1) + 0.5
    pred = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(cond.residual_synthesis(y_hat, inv_gain, pred), plain.residual_synthesis(y_hat, inv_gain, pred))

    assert train_inter.main([*args, "--steps", "5", "--conditional", "8", "--freeze-motion"]) == 0
    out = capsys.readouterr().out
    assert "conditional synthesis added (8 channels" in out and "best reset" not in out
    trained = train_inter.load_checkpoint(run / "last.pt")
    assert trained.cfg.cond == 8
    assert float(trained.inj2.weight.detach().abs().sum()) > 0 and float(trained.inj4.weight.detach().abs().sum()) > 0
    for (name, a), b in zip(plain.motion.state_dict().items(), trained.motion.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(plain.rs[0][0].weight, trained.rs[0][0].weight)  # the residual coder trained
    with torch.no_grad():  # the prediction now shapes the residual (mid-grey preds: no clamping)
        preds = 0.4 + 0.2 * torch.rand(2, 1, 3, 64, 64)
        small = y_hat * 0.01

        def residuals(m):
            return [m.residual_synthesis(small, inv_gain, p) - p for p in preds]

        assert torch.allclose(*residuals(plain), atol=1e-6)
        assert not torch.allclose(*residuals(trained), atol=1e-6)
    # resuming an upgraded run with the flag again changes nothing structurally
    assert train_inter.main([*args, "--steps", "6", "--conditional", "8", "--freeze-motion"]) == 0
    assert "conditional synthesis added" not in capsys.readouterr().out


def test_half_size_residual_matches_the_runtime_resampling_and_trains(tmp_path, tiny_data, capsys):
    """--half-share codes some batches' residual at half size with the runtime's own filters
    (reduced_res: Lanczos-3 down, the normative bicubic up), and validates both forms."""
    import numpy as np

    from onnx_export.inter_model import downsample_2x, upsample_2x
    from zvc69_rt.codec import reduced_res

    x = np.random.default_rng(0).random((3, 64, 128), dtype=np.float32)
    half = downsample_2x(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(half, reduced_res.downsample_2x(x), atol=1e-6)
    np.testing.assert_allclose(upsample_2x(torch.from_numpy(half)[None])[0].numpy(), reduced_res.upsample_2x(half),
                               atol=1e-6)

    model = train_inter.InterModel(train_inter.InterConfig())
    ref = torch.rand(1, 3, 64, 64)
    out_full, out_half = (model(ref, ref, torch.zeros(1, dtype=torch.long), half=h) for h in (False, True))
    assert out_half["x_hat"].shape == out_full["x_hat"].shape
    assert out_half["y_lik"].numel() * 4 == out_full["y_lik"].numel()  # a quarter of the latents

    run = tmp_path / "run"
    args = ["--run", str(run), "--patch", "64", "--batch", "2", "--eval-every", "2"]
    assert train_inter.main([*args, "--steps", "2"]) == 0
    assert train_inter.main([*args, "--steps", "4", "--half-share", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "half-size validation on: best reset" in out and "val_half=" in out and "val_full=" in out
    assert torch.load(run / "best.pt", weights_only=False)["step"] == 4


def test_conditional_mean_upgrade_starts_at_zero_and_its_branch_learns(tmp_path, tiny_data, capsys):
    """--conditional-mean adds the mean's prediction term at zero (the upgraded model's mean
    is the conditional model's), trains it at --mean-branch-lr in its own optimizer group,
    and needs the synthesis branch (cond) to exist."""
    with pytest.raises(ValueError, match="cond"):
        train_inter.InterModel(train_inter.InterConfig(cond_mean=True))
    run = tmp_path / "run"
    args = ["--run", str(run), "--patch", "64", "--batch", "2", "--eval-every", "2"]
    assert train_inter.main([*args, "--steps", "2", "--conditional", "8"]) == 0
    before = train_inter.load_checkpoint(run / "last.pt")
    assert not before.cfg.cond_mean
    capsys.readouterr()
    assert train_inter.main([*args, "--steps", "4", "--conditional", "8", "--conditional-mean",
                             "--mean-branch-lr", "1e-3", "--freeze-motion"]) == 0
    assert "conditional mean added (8 channels, 4 new tensors" in capsys.readouterr().out
    after = train_inter.load_checkpoint(run / "last.pt")
    assert after.cfg.cond_mean and after.cfg.cond == 8
    assert float(after.injm.weight.detach().abs().sum()) > 0  # the branch trained
    ck = torch.load(run / "last.pt", weights_only=False)
    assert [g["lr"] for g in ck["opt"]["param_groups"]] == [pytest.approx(3e-4), pytest.approx(1e-3)]
    upgraded = train_inter.InterModel(after.cfg)
    upgraded.load_state_dict(before.state_dict(), strict=False)
    upgraded.eval()
    z = torch.randn(1, 32, 2, 2).round()
    pred, gain = torch.rand(1, 3, 64, 64), torch.rand(1, 64, 1, 1) + 0.5
    with torch.no_grad():
        assert torch.equal(upgraded.residual_mean(z, pred, gain), before.rhs_mean(z))
        assert not torch.equal(after.residual_mean(z, pred, gain), after.rhs_mean(z))
