"""Resumable CPU training of the ZVC69 P-frame model (motion + residual coder).

    python -m onnx_export.train_inter --run runs/inter --hours 2      # start or resume
    python -m onnx_export.train_inter --run runs/inter --plot         # loss curve PNG

Loss per sample: lambda[level]*255^2*MSE(x_hat, cur) + (residual bits + motion bits)/pixels
+ a warm-up auxiliary term (prediction MSE, and end-point error where the flow is known)
that fades from 1 to 0.1 over --aux-steps, so the motion network learns to predict
before the residual coder learns to hide bad predictions.

Checkpoints: RUN/last.pt (model + optimizer + sampler state, every few minutes and at
exit), RUN/best.pt (best loss on a fixed validation batch drawn with another seed from
the *training* sources: a progress monitor, not a held-out evaluation).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from onnx_export.inter_model import InterConfig, InterModel
from onnx_export.model import LAMBDAS
from onnx_export.train import level_weights


def losses(out: dict, batch: dict, level: torch.Tensor, aux_weight: float,
           weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per sample lambda*D + R (times weights[level] in the loss when given: train.level_weights),
    plus the fading auxiliary terms; "rd" is the unweighted mean, comparable across runs."""
    cur = batch["cur"]
    h, w = cur.shape[2:]
    res_bits = (-torch.log2(out["y_lik"])).flatten(1).sum(1) + (-torch.log2(out["z_lik"])).flatten(1).sum(1)
    bpp = res_bits / (h * w)
    mbpp = out["motion_bits"] / (h * w)
    mse = ((out["x_hat"] - cur) ** 2).flatten(1).mean(1)
    pred_mse = ((out["pred"] - cur) ** 2).flatten(1).mean(1)
    lam = torch.tensor(LAMBDAS, dtype=torch.float32)[level]
    rd = lam * 255**2 * mse + bpp + mbpp
    gt4 = F.avg_pool2d(batch["flow"], 4)
    epe = torch.linalg.vector_norm(out["flow4"] - gt4, dim=1).flatten(1).mean(1)
    has = batch["has_flow"].float()
    epe_mean = (epe * has).sum() / has.sum().clamp_min(1)
    aux = 0.01 * 255**2 * pred_mse.mean() + 0.5 * epe_mean
    wt = torch.ones_like(lam) if weights is None else weights[level]
    return {"loss": (wt * rd).mean() + aux_weight * aux, "rd": rd.mean(), "bpp": bpp.mean(), "mbpp": mbpp.mean(),
            "mse": mse.mean(), "pred_mse": pred_mse.mean(), "epe": epe_mean}


def _psnr(mse: torch.Tensor) -> float:
    return float(-10 * torch.log10(mse.clamp_min(1e-10)))


#: Parameters of the conditional mean's own layers (InterConfig.cond_mean), --mean-branch-lr.
MEAN_BRANCH = ("pf8.", "injm.")


def save(path: Path, model, opt, step: int, best: float, sampler_state, cfg: InterConfig,
         level_weight_exp: float = 0.0, half_share: float = 0.0) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict() if opt else None, "step": step,
                "best": best, "rng": sampler_state, "cfg": cfg.__dict__, "kind": "inter",
                "level_weight_exp": level_weight_exp, "half_share": half_share}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> InterModel:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = InterModel(InterConfig(**ck["cfg"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model


@torch.no_grad()
def validate(model: InterModel, val: dict, levels=(0, 3, 7),
             weights: torch.Tensor | None = None, half: bool = False) -> dict[str, float]:
    """val_loss: the levels' mean lambda*D + R, weighted like the training loss when given;
    with half, the mean of the full-size and the half-size residual's (val_full, val_half)."""
    model.eval()
    res: dict[str, float] = {}
    parts = []
    for form in (False, True) if half else (False,):
        total = 0.0
        for lv in levels:
            level = torch.full((val["cur"].shape[0],), lv, dtype=torch.long)
            torch.manual_seed(0)
            out = model(val["ref"], val["cur"], level, half=form)
            ls = losses(out, val, level, 0.0)
            tag = "h" if form else ""
            res[f"bpp{tag}_q{lv}"] = float(ls["bpp"] + ls["mbpp"])
            res[f"psnr{tag}_q{lv}"] = _psnr(ls["mse"])
            total += float(ls["rd"]) * (1.0 if weights is None else float(weights[lv]))
            if not form:
                res["pred_psnr"], res["epe"] = _psnr(ls["pred_mse"]), float(ls["epe"])
        parts.append(total / (len(levels) if weights is None else float(sum(float(weights[lv]) for lv in levels))))
    if half:
        res["val_full"], res["val_half"] = parts
    res["val_loss"] = sum(parts) / len(parts)
    model.train()
    return res


def plot(run: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(r["step"]) for r in rows])
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r.get("val_loss")]
    fig, ax = plt.subplots(1, 4 if val else 3, figsize=(18 if val else 14, 4))
    for i, key in enumerate(("rd", "pred_psnr", "epe")):
        v = np.array([float(r[key]) for r in rows])
        k = min(20, len(v))
        sm = np.convolve(v, np.ones(k) / k, mode="valid")
        ax[i].plot(steps[len(steps) - len(sm):], sm)
        ax[i].set_xlabel("step")
        ax[i].set_ylabel(key + " (train, smoothed)")
    if val:  # the fixed validation batch: the curve that picks checkpoints
        ax[3].plot(*zip(*val), marker=".")
        ax[3].set_xlabel("step")
        ax[3].set_ylabel("val_loss (fixed batch)")
    fig.suptitle(f"ZVC69 P-frame training: {run}")
    fig.tight_layout()
    out = run / "loss_curve.png"
    fig.savefig(out, dpi=110)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/inter"))
    ap.add_argument("--hours", type=float, default=1.0, help="wall-clock budget of this invocation")
    ap.add_argument("--steps", type=int, default=0, help="stop at this total step count (0 = no limit)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--aux-steps", type=int, default=3000, help="auxiliary loss fades out over these steps")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--ckpt-every-s", type=float, default=300)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-shift", type=float, default=12.0,
                    help="largest synthetic pan in pixels of a training patch (session 4: 12 px left the flow "
                    "net blind to the 18 px/frame of held-out bikes.mp4; runs since then use 32)")
    ap.add_argument("--cubic-share", type=float, default=0.0,
                    help="share of batches predicted with the bicubic warp (session 7 runs: 0.3)")
    ap.add_argument("--level-weight-exp", type=float, default=0.0,
                    help="weight each level's loss by (lambda/geometric-mean lambda)^-EXP (train.level_weights); "
                         "0 = plain mean. Low levels are what video P-frames use")
    ap.add_argument("--conditional", type=int, default=0, metavar="C",
                    help="give a plain model's residual synthesis a C-channel prediction branch "
                         "(InterConfig.cond; starts at zero, so the upgraded model first computes what the plain one did)")
    ap.add_argument("--conditional-mean", action="store_true",
                    help="give a conditional model's residual entropy mean a prediction term (InterConfig.cond_mean; "
                         "starts at zero, so the upgraded model first computes what it did)")
    ap.add_argument("--mean-branch-lr", type=float, default=0.0,
                    help="learning rate of the conditional mean's own layers (0 = --lr): a new branch learns "
                         "faster than the trained model around it should move")
    ap.add_argument("--freeze-motion", action="store_true",
                    help="train the residual coder only (the flow network stays as it is; steps ~2x cheaper)")
    ap.add_argument("--half-share", type=float, default=0.0,
                    help="share of batches whose residual is coded at half size, as the runtime's flag 3 "
                         "(what most low-rate P-frames use); >0 also validates both forms (val_loss = their mean)")
    ap.add_argument("--plot", action="store_true", help="only write RUN/loss_curve.png")
    args = ap.parse_args(argv)
    if args.plot:
        print(plot(args.run))
        return 0

    from onnx_export.data import training_images
    from onnx_export.motion_data import MotionBatchSampler, video_frames

    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    last = args.run / "last.pt"
    cfg = InterConfig()
    step, best, sampler_state = 0, float("inf"), None
    ck = None
    if last.exists():
        ck = torch.load(last, weights_only=False)
        cfg = InterConfig(**ck["cfg"])
    new_cond = bool(args.conditional) and not cfg.cond
    new_mean = args.conditional_mean and not cfg.cond_mean
    upgraded = new_cond or new_mean
    if new_cond:
        cfg = dataclasses.replace(cfg, cond=args.conditional)
    if new_mean:
        cfg = dataclasses.replace(cfg, cond_mean=True)
    model = InterModel(cfg)
    if args.freeze_motion:
        model.motion.requires_grad_(False)
    params = model.residual_parameters() if args.freeze_motion else list(model.parameters())
    branch = {id(p) for name, p in model.named_parameters() if name.startswith(MEAN_BRANCH)}
    branch_lr = args.mean_branch_lr or args.lr
    groups = [{"params": [p for p in params if id(p) not in branch], "lr": args.lr}]
    if branch:
        groups.append({"params": [p for p in params if id(p) in branch], "lr": branch_lr})
    opt = torch.optim.Adam(groups, lr=args.lr)
    if ck is not None:
        missing, unexpected = model.load_state_dict(ck["model"], strict=not upgraded)
        if upgraded:
            new = (("pf2.", "pf4.", "inj2.", "inj4.") if new_cond else ()) + (MEAN_BRANCH if new_mean else ())
            assert not unexpected and all(k.startswith(new) for k in missing), missing
            what = " and ".join(w for w, on in (("synthesis", new_cond), ("mean", new_mean)) if on)
            print(f"conditional {what} added ({cfg.cond} channels, {len(missing)} new tensors, the branch at zero)")
        if ck["opt"] is not None and not upgraded:  # None: a model-only checkpoint (onnx_export/checkpoints)
            try:
                opt.load_state_dict(ck["opt"])
            except ValueError:  # trained another parameter set (--freeze-motion toggled)
                print("optimizer state is for another parameter set: Adam restarts")
        for g, lr in zip(opt.param_groups, (args.lr, branch_lr), strict=False):
            g["lr"] = lr
        step, best, sampler_state = ck["step"], ck["best"], ck["rng"]
        print(f"resumed {last} at step {step} (best val loss {best:.4f})")
        if upgraded:
            best = float("inf")
        if ck.get("level_weight_exp", 0.0) != args.level_weight_exp:
            best = float("inf")  # another val_loss: the old best is not comparable
            print(f"level weighting {ck.get('level_weight_exp', 0.0)} -> {args.level_weight_exp}: best reset")
        if bool(ck.get("half_share", 0.0)) != bool(args.half_share):
            best = float("inf")
            print(f"half-size validation {'on' if args.half_share else 'off'}: best reset")
    weights = level_weights(args.level_weight_exp) if args.level_weight_exp else None

    photos = training_images(verbose=True)
    frames = video_frames()
    print(f"video pairs from {len(frames)} Big Buck Bunny frames")
    sampler = MotionBatchSampler(photos, frames, size=args.patch, seed=step, max_shift=args.max_shift)
    if sampler_state is not None:
        sampler.set_state(sampler_state)
    torch.manual_seed(step)
    val = MotionBatchSampler(photos, frames, size=args.patch, seed=10_007).sample(8)

    log_new = not (args.run / "log.csv").exists()
    logf = open(args.run / "log.csv", "a", newline="")  # noqa: SIM115 (open for the whole run)
    fields = ["step", "time", "loss", "rd", "bpp", "mbpp", "psnr", "pred_psnr", "epe", "val_loss", "val"]
    log = csv.DictWriter(logf, fieldnames=fields)
    if log_new:
        log.writeheader()

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    t_end = time.time() + args.hours * 3600
    t_ckpt = time.time()
    while not stop["now"] and time.time() < t_end and (args.steps == 0 or step < args.steps):
        batch = sampler.sample(args.batch)
        level = torch.from_numpy(sampler.rng.integers(0, cfg.levels, size=args.batch))
        aux_w = max(0.1, 1.0 - 0.9 * step / max(args.aux_steps, 1))
        cubic = bool(sampler.rng.random() < args.cubic_share) if args.cubic_share > 0 else False
        half = bool(sampler.rng.random() < args.half_share) if args.half_share > 0 else False
        out = model(batch["ref"], batch["cur"], level, cubic=cubic, half=half)
        ls = losses(out, batch, level, aux_w, weights)
        opt.zero_grad(set_to_none=True)
        ls["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ls = {k: v.detach() for k, v in ls.items()}
        row = {"step": step, "time": round(time.time(), 1), "loss": round(float(ls["loss"]), 5),
               "rd": round(float(ls["rd"]), 5), "bpp": round(float(ls["bpp"]), 4),
               "mbpp": round(float(ls["mbpp"]), 4), "psnr": round(_psnr(ls["mse"]), 3),
               "pred_psnr": round(_psnr(ls["pred_mse"]), 3), "epe": round(float(ls["epe"]), 3)}
        if step % args.eval_every == 0:
            ev = validate(model, val, weights=weights, half=args.half_share > 0)
            row["val_loss"] = round(ev["val_loss"], 5)
            row["val"] = " ".join(f"{k}={v:.3f}" for k, v in ev.items())
            print(f"step {step}: {row['val']}", flush=True)
            if ev["val_loss"] < best:
                best = ev["val_loss"]
                save(args.run / "best.pt", model, None, step, best, None, cfg, args.level_weight_exp, args.half_share)
        if step % args.log_every == 0 or "val" in row:
            log.writerow(row)
            logf.flush()
        if time.time() - t_ckpt > args.ckpt_every_s:
            save(last, model, opt, step, best, sampler.state(), cfg, args.level_weight_exp, args.half_share)
            t_ckpt = time.time()
    save(last, model, opt, step, best, sampler.state(), cfg, args.level_weight_exp, args.half_share)
    if not (args.run / "best.pt").exists():
        save(args.run / "best.pt", model, None, step, math.inf, None, cfg, args.level_weight_exp, args.half_share)
    logf.close()
    print(f"stopped at step {step}; checkpoint {last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
