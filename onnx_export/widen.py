"""Widen a trained intra model's latent (M channels) or its transforms' channels (NT)
without changing what it computes.

    python -m onnx_export.widen runs/intra/last.pt --M 192 --out runs/intra192/last.pt
    python -m onnx_export.widen runs/intra192/last.pt --NT 128 --out runs/intra_nt128/last.pt

Transforms (NT, session 3): the N=64 analysis/synthesis of the M=192 model reconstructs
the held-out photos at 32.4-32.5 dB at the top level without any quantisation, while its
real top-level PSNR is 32.2 dB: the transforms cap the RD curve. Their hidden layers
widen the same way (the hyperprior keeps N):

    conv into a hidden layer         new output rows: small random  (sub-pixel convs: 4 rows per channel)
    GDN / IGDN of that layer         new beta 1, new gamma rows/columns 0 but their own diagonal
    conv out of the hidden layer     new input columns: zero        (the next layer unchanged)

Why: at the top quality level the shipped N=64/M=96 model reconstructs the held-out
photos at 30.5 dB *without any quantisation* (28.4/36.5/27.6/30.6 dB on the four
photos at step 18,000), so its high-rate end is capped by the transform, not by
training time; more latent channels (the spec's 192) give the high levels room.

The new channels start silent (Net2Net-style, function-preserving):

    ga last conv     new output rows: small random   (so gradients reach them)
    gs first conv    new input columns: zero          (x_hat unchanged)
    ha first conv    new input columns: zero          (z unchanged)
    hs_mean last     new output rows: zero            (mean 0)
    hs_scale last    new output rows: zero, bias log(SCALE_BOUND)   (cheapest scale)
    gains            new columns: the mean of the old ones, per level

The optimizer restarts (parameter shapes change); the step count carries over.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import nn

from onnx_export.model import IntraModel, ModelConfig

NEW_WEIGHT_STD = 0.1  # relative to the old rows' standard deviation


def _grow(t: torch.Tensor, dim: int, extra: int, fill: torch.Tensor | float) -> torch.Tensor:
    shape = list(t.shape)
    shape[dim] = extra
    add = fill if isinstance(fill, torch.Tensor) else torch.full(shape, float(fill))
    return torch.cat((t, add.reshape(shape).to(t.dtype)), dim)


def _state(model: IntraModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _rebuild(cfg: ModelConfig, sd: dict[str, torch.Tensor]) -> IntraModel:
    """A new model of config cfg holding the grown state sd, every shape checked first."""
    new = IntraModel(cfg)
    shapes = {k: v.shape for k, v in new.state_dict().items()}
    bad = {k: (tuple(v.shape), tuple(shapes[k])) for k, v in sd.items() if v.shape != shapes[k]}
    if bad:
        raise AssertionError(f"widening left shapes wrong: {bad}")
    new.load_state_dict(sd)
    return new


def widen(model: IntraModel, M: int, seed: int = 0) -> IntraModel:
    old = model.cfg.M
    if M <= old:
        raise ValueError(f"M={M} does not widen the latent ({old} channels)")
    extra = M - old
    g = torch.Generator().manual_seed(seed)
    sd = _state(model)

    def last_conv(seq: nn.Sequential) -> str:
        return [n for n, m in seq.named_modules() if isinstance(m, nn.Conv2d)][-1]

    def first_conv(seq: nn.Sequential) -> str:
        return next(n for n, m in seq.named_modules() if isinstance(m, nn.Conv2d))

    # analysis: new latent channels, small random
    k = f"ga.{last_conv(model.ga)}"
    w = sd[f"{k}.weight"]
    noise = torch.randn((extra, *w.shape[1:]), generator=g) * float(w.std()) * NEW_WEIGHT_STD
    sd[f"{k}.weight"] = _grow(w, 0, extra, noise)
    sd[f"{k}.bias"] = _grow(sd[f"{k}.bias"], 0, extra, 0.0)
    # consumers of y: zero columns
    for key in (f"gs.{first_conv(model.gs)}.weight", f"ha.{first_conv(model.ha)}.weight"):
        sd[key] = _grow(sd[key], 1, extra, 0.0)
    # entropy parameters of the new channels: mean 0, the smallest scale
    k = f"hs_mean.{last_conv(model.hs_mean)}"
    sd[f"{k}.weight"] = _grow(sd[f"{k}.weight"], 0, extra, 0.0)
    sd[f"{k}.bias"] = _grow(sd[f"{k}.bias"], 0, extra, 0.0)
    k = f"hs_scale.{last_conv(model.hs_scale)}"
    sd[f"{k}.weight"] = _grow(sd[f"{k}.weight"], 0, extra, 0.0)
    sd[f"{k}.bias"] = _grow(sd[f"{k}.bias"], 0, extra, math.log(0.11))
    for key in ("log_gain", "log_inv_gain"):
        mean = sd[key].mean(1, keepdim=True).expand(-1, extra)
        sd[key] = _grow(sd[key], 1, extra, mean.contiguous())
    return _rebuild(ModelConfig(N=model.cfg.N, M=M, levels=model.cfg.levels, NT=model.cfg.NT), sd)


def widen_transforms(model: IntraModel, NT: int, seed: int = 0) -> IntraModel:
    """The same model with NT channels in every hidden layer of ga and gs."""
    from onnx_export.layers import GDN

    old = model.cfg.transform_channels
    if NT <= old:
        raise ValueError(f"NT={NT} does not widen the transforms ({old} channels)")
    extra = NT - old
    g = torch.Generator().manual_seed(seed)
    sd = _state(model)

    def grow_out(key: str, rows: int) -> None:  # a conv's new output rows, small random
        w = sd[f"{key}.weight"]
        noise = torch.randn((rows, *w.shape[1:]), generator=g) * float(w.std()) * NEW_WEIGHT_STD
        sd[f"{key}.weight"] = _grow(w, 0, rows, noise)
        sd[f"{key}.bias"] = _grow(sd[f"{key}.bias"], 0, rows, 0.0)

    def grow_in(key: str) -> None:  # a conv's new input columns, zero
        sd[f"{key}.weight"] = _grow(sd[f"{key}.weight"], 1, extra, 0.0)

    def grow_gdn(key: str, gdn: GDN) -> None:  # new channels normalise only by themselves
        # stored as sqrt(value + pedestal): beta 1, gamma 0 off the new diagonal, gamma_init on it
        ped = gdn.beta.pedestal
        beta = sd[f"{key}.beta.param"]
        sd[f"{key}.beta.param"] = _grow(beta, 0, extra, (1.0 + ped) ** 0.5)
        gamma = sd[f"{key}.gamma.param"]
        full = torch.full((old + extra, old + extra), ped ** 0.5, dtype=gamma.dtype)
        full[:old, :old] = gamma
        idx = torch.arange(old, old + extra)
        full[idx, idx] = (0.1 + ped) ** 0.5
        sd[f"{key}.gamma.param"] = full

    for seq_name, seq in (("ga", model.ga), ("gs", model.gs)):
        convs = [n for n, m in seq.named_modules() if isinstance(m, nn.Conv2d)]
        gdns = [(n, m) for n, m in seq.named_modules() if isinstance(m, GDN)]
        for i, conv in enumerate(convs):
            if i < len(convs) - 1:  # feeds a hidden layer: its output grows
                rows = 4 * extra if seq_name == "gs" else extra  # sub-pixel: 4 rows per output channel
                grow_out(f"{seq_name}.{conv}", rows)
            if i > 0:  # reads a hidden layer: its input grows
                grow_in(f"{seq_name}.{conv}")
        for name, gdn in gdns:
            grow_gdn(f"{seq_name}.{name}", gdn)
    c = model.cfg
    return _rebuild(ModelConfig(N=c.N, M=c.M, levels=c.levels, NT=NT), sd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--M", type=int, help="latent channels")
    what.add_argument("--NT", type=int, help="analysis/synthesis channels")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from onnx_export.train import save

    ck = torch.load(args.checkpoint, weights_only=False)
    model = IntraModel(ModelConfig(**ck["cfg"]))
    model.load_state_dict(ck["model"])
    wide = widen(model, args.M) if args.M else widen_transforms(model, args.NT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(args.out, wide, None, ck["step"], ck["best"], None, wide.cfg)
    print(f"{args.checkpoint} ({model.cfg}) -> {args.out} ({wide.cfg}) at step {ck['step']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
