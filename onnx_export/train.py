"""Resumable training of the ZVC69 intra model on CPU.

    python -m onnx_export.train --run runs/intra --hours 2        # start or resume
    python -m onnx_export.train --run runs/intra --plot           # loss curve PNG

Checkpoints (model + optimizer + sampler state) are written every few minutes and at
exit to RUN/last.pt; the checkpoint with the best held-out RD loss is RUN/best.pt.
Held-out photos (data.eval_images) are never sampled for training.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch

from onnx_export.data import PatchSampler, eval_images, training_images
from onnx_export.model import LAMBDAS, IntraModel, ModelConfig


def level_weights(exponent: float) -> torch.Tensor:
    """Loss weight per level, (lambda / geometric-mean lambda)^-exponent, mean 1.

    A plain mean over levels lets the top level, whose lambda*D + R is ~15x the bottom
    one's (held-out estimate, step 47,500: 7.09 vs 0.45), drive the shared transforms;
    exponent ~0.6 evens the levels out (the low ones are what video I-frames use)."""
    lam = torch.tensor(LAMBDAS, dtype=torch.float64)
    w = (lam / torch.exp(torch.log(lam).mean())) ** -exponent
    return (w / w.mean()).float()


def rd_loss(out: dict, x: torch.Tensor, level: torch.Tensor, aux_fidelity: float = 0.0,
            weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lambda*255^2*MSE + bpp, plus aux_fidelity times the same distortion term for the
    unquantised latent's synthesis (out["x_tilde"]) when given; per sample times
    weights[level] when given (level_weights)."""
    _, _, h, w = x.shape
    bits = (-torch.log2(out["y_lik"])).flatten(1).sum(1) + (-torch.log2(out["z_lik"])).flatten(1).sum(1)
    bpp = bits / (h * w)
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    lam = torch.tensor(LAMBDAS, dtype=torch.float32)[level]
    wt = torch.ones_like(lam) if weights is None else weights[level]
    loss = (wt * (lam * 255**2 * mse + bpp)).mean()
    if aux_fidelity and "x_tilde" in out:
        loss = loss + aux_fidelity * (wt * lam * 255**2 * ((out["x_tilde"] - x) ** 2).flatten(1).mean(1)).mean()
    return loss, bpp, mse


@torch.no_grad()
def evaluate(model: IntraModel, images: dict[str, np.ndarray], levels=(0, 3, 7),
             weights: torch.Tensor | None = None) -> dict[str, float]:
    """Estimated bpp/PSNR on held-out photos (rounded latents, likelihood bits); eval_loss
    is the mean of the levels' lambda*D + R, weighted like the training loss when given."""
    model.eval()
    res: dict[str, float] = {}
    total = 0.0
    ceiling: list[float] = []
    for lv in levels:
        bpps, psnrs, losses = [], [], []
        for img in images.values():
            x = torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0).float()
            level = torch.tensor([lv])
            g, ig = model.gains(level.float())
            y = model.ga(x * 2 - 1) * g[:, :, None, None]
            z_hat = torch.round(model.ha(y))
            mean = model.hs_mean(z_hat)
            scale = torch.exp(model.hs_scale(z_hat))
            from onnx_export.entropy_models import gaussian_likelihood

            y_hat = torch.round(y - mean) + mean
            x_hat = ((model.gs(y_hat * ig[:, :, None, None]) + 1) / 2).clamp(0, 1)
            bits = -torch.log2(gaussian_likelihood(y_hat, mean, scale)).sum() - torch.log2(
                model.z_density.likelihood(z_hat)
            ).sum()
            bpp = float(bits) / (img.shape[0] * img.shape[1])
            mse = float(((x_hat - x) ** 2).mean())
            bpps.append(bpp)
            psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))
            if lv == max(levels):  # the transforms' ceiling: synthesis of the unquantised latent
                x_tilde = ((model.gs(y * ig[:, :, None, None]) + 1) / 2).clamp(0, 1)
                ceiling.append(10 * math.log10(1 / max(float(((x_tilde - x) ** 2).mean()), 1e-12)))
            losses.append(LAMBDAS[lv] * 255**2 * mse + bpp)
        res[f"bpp_q{lv}"] = float(np.mean(bpps))
        res[f"psnr_q{lv}"] = float(np.mean(psnrs))
        total += float(np.mean(losses)) * (1.0 if weights is None else float(weights[lv]))
    norm = len(levels) if weights is None else float(sum(float(weights[lv]) for lv in levels))
    res["eval_loss"] = total / norm
    res["psnr_noq"] = float(np.mean(ceiling))
    model.train()
    return res


def save(path: Path, model, opt, step: int, best: float, rng_state, cfg: ModelConfig,
         level_weight_exp: float = 0.0) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"model": model.state_dict(), "opt": opt.state_dict() if opt else None, "step": step, "best": best,
         "rng": rng_state, "cfg": cfg.__dict__, "level_weight_exp": level_weight_exp},
        tmp,
    )
    os.replace(tmp, path)


def plot(run: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    loss = np.array([float(r["loss"]) for r in rows])
    k = 20
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid") if len(loss) > k else loss
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(steps[len(steps) - len(smooth):], smooth)
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("train RD loss (lambda*255^2*MSE + bpp), smoothed")
    ax[0].set_yscale("log")
    ev = [r for r in rows if r.get("eval_loss")]
    if ev:
        ax[1].plot([int(r["step"]) for r in ev], [float(r["eval_loss"]) for r in ev], marker="o")
        ax[1].set_xlabel("step")
        ax[1].set_ylabel("held-out RD loss (estimated bits)")
    fig.suptitle(f"ZVC69 intra training: {run}")
    fig.tight_layout()
    out = run / "loss_curve.png"
    fig.savefig(out, dpi=110)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/intra"))
    ap.add_argument("--hours", type=float, default=1.0, help="wall-clock budget of this invocation")
    ap.add_argument("--steps", type=int, default=0, help="stop at this total step count (0 = no limit)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--N", type=int, default=ModelConfig.N)
    ap.add_argument("--M", type=int, default=ModelConfig.M)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--ckpt-every-s", type=float, default=300)
    ap.add_argument("--curriculum-steps", type=int, default=3000, help="low levels only before this step")
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (new run only)")
    ap.add_argument("--aux-fidelity", type=float, default=0.0,
                    help="weight of an extra distortion term for the unquantised latent's synthesis: trains "
                    "the transforms as an autoencoder (session 3: the model's no-quantisation PSNR was "
                    "the ceiling of its RD curve)")
    ap.add_argument("--level-weight-exp", type=float, default=0.0,
                    help="weight each level's loss by (lambda/mean lambda)^-E (0 = plain mean; session 7 "
                    "experiment: 0.6); eval_loss and best.pt follow the same weights")
    ap.add_argument("--plot", action="store_true", help="only write RUN/loss_curve.png")
    args = ap.parse_args(argv)
    if args.plot:
        print(plot(args.run))
        return 0

    torch.set_num_threads(args.threads)
    weights = level_weights(args.level_weight_exp) if args.level_weight_exp else None
    args.run.mkdir(parents=True, exist_ok=True)
    last = args.run / "last.pt"
    cfg = ModelConfig(N=args.N, M=args.M)
    step, best, rng_state = 0, float("inf"), None
    if last.exists():
        ck = torch.load(last, weights_only=False)
        cfg = ModelConfig(**ck["cfg"])
    model = IntraModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    if last.exists():
        model.load_state_dict(ck["model"])
        if ck["opt"] is not None:  # None: recovered from a bundle (onnx_export.recover)
            opt.load_state_dict(ck["opt"])
        for g in opt.param_groups:
            g["lr"] = args.lr
        step, best, rng_state = ck["step"], ck["best"], ck["rng"]
        print(f"resumed {last} at step {step} (best held-out loss {best:.4f})")
        if ck.get("level_weight_exp", 0.0) != args.level_weight_exp:
            best = float("inf")  # another eval_loss: the old best is not comparable
            print(f"level weighting {ck.get('level_weight_exp', 0.0)} -> {args.level_weight_exp}: best reset")
    elif args.init:
        model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
        print(f"initialised from {args.init}")

    sampler = PatchSampler(training_images(), size=args.patch, seed=step)
    if rng_state is not None:
        sampler.rng.bit_generator.state = rng_state
    held_out = eval_images(max_side=512)
    log_new = not (args.run / "log.csv").exists()
    logf = open(args.run / "log.csv", "a", newline="")  # noqa: SIM115 (open for the whole run)
    fields = ["step", "time", "loss", "bpp", "psnr", "eval_loss", "eval"]
    log = csv.DictWriter(logf, fieldnames=fields)
    if log_new:
        log.writeheader()

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    t_end = time.time() + args.hours * 3600
    t_ckpt = time.time()
    levels_all = len(LAMBDAS)
    while not stop["now"] and time.time() < t_end and (args.steps == 0 or step < args.steps):
        top = levels_all // 2 if step < args.curriculum_steps else levels_all
        level = torch.from_numpy(sampler.rng.integers(0, top, size=args.batch))
        x = torch.from_numpy(sampler.sample(args.batch))
        out = model(x, level, fidelity=args.aux_fidelity > 0)
        loss, bpp, mse = rd_loss(out, x, level, args.aux_fidelity, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        row = {"step": step, "time": round(time.time(), 1), "loss": round(loss.item(), 5),
               "bpp": round(float(bpp.detach().mean()), 4),
               "psnr": round(float(-10 * torch.log10(mse.detach().mean())), 3)}
        if step % args.eval_every == 0:
            ev = evaluate(model, held_out, weights=weights)
            row["eval_loss"] = round(ev["eval_loss"], 5)
            row["eval"] = " ".join(f"{k}={v:.3f}" for k, v in ev.items())
            print(f"step {step}: {row['eval']}", flush=True)
            if ev["eval_loss"] < best:
                best = ev["eval_loss"]
                save(args.run / "best.pt", model, None, step, best, None, cfg, args.level_weight_exp)
        if step % 10 == 0 or "eval" in row:
            log.writerow(row)
            logf.flush()
        if time.time() - t_ckpt > args.ckpt_every_s:
            save(last, model, opt, step, best, sampler.rng.bit_generator.state, cfg, args.level_weight_exp)
            t_ckpt = time.time()
    save(last, model, opt, step, best, sampler.rng.bit_generator.state, cfg, args.level_weight_exp)
    logf.close()
    print(f"stopped at step {step}; checkpoint {last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
