"""Rebuild a training checkpoint from a shipped intra bundle.

    python -m onnx_export.recover zvc69_rt/models/bundles/default --out runs/intra/last.pt

Training runs live in ``runs/``, which does not survive a machine change; the shipped
bundle does (it is in the repo). Its FP32 graphs hold every transform weight, and its
tables hold the gains, the integer scale head and the z CDFs, so training can resume
from the shipped model instead of from scratch:

    analysis.fp32.onnx   Conv/GDN weights -> ga, ha  (GDN gamma/beta un-reparametrised)
    hyper_synthesis      Conv weights     -> hs_mean
    synthesis.fp32.onnx  Conv/GDN weights -> gs
    tables.npz           gains            -> log_gain, log_inv_gain
                         sh*_w/b/mult     -> hs_scale (dequantised: an exact float
                                             equivalent of the integer head, up to rounding)
                         z_cdf            -> z_density (refitted to the table's pmf)

The optimizer state is not in a bundle; a recovered checkpoint restarts Adam.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onnx_export.layers import GDN
from onnx_export.model import IntraModel, ModelConfig


def _onnx_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of every Conv node, in graph order."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    return [(init[n.input[1]], init[n.input[2]]) for n in g.node if n.op_type == "Conv"]


def _slots(module: nn.Module) -> list[nn.Module]:
    """Conv2d and GDN modules in forward order: the graph's Conv nodes, one each."""
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, GDN))]


def _load_slots(slots: list[nn.Module], weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
    if len(slots) != len(weights):
        raise ValueError(f"graph has {len(weights)} convolutions, the model {len(slots)}")
    for m, (w, b) in zip(slots, weights):
        if isinstance(m, GDN):
            c = m.channels
            gamma = torch.from_numpy(w.reshape(c, c).astype(np.float32))
            beta = torch.from_numpy(b.astype(np.float32))
            m.gamma.param.data = torch.sqrt(torch.clamp(gamma + m.gamma.pedestal, min=m.gamma.pedestal))
            m.beta.param.data = torch.sqrt(torch.clamp(beta + m.beta.pedestal, min=m.beta.pedestal))
        else:
            if tuple(m.weight.shape) != w.shape:
                raise ValueError(f"shape mismatch: model {tuple(m.weight.shape)} vs graph {w.shape}")
            m.weight.data = torch.from_numpy(w.astype(np.float32))
            m.bias.data = torch.from_numpy(b.astype(np.float32))


def _scale_head_float(tables: dict[str, np.ndarray], head: nn.Sequential) -> None:
    """Float weights computing what the integer head computes, in its integer activation units.

    Layer i's integer output is relu((conv(x, w_i) + b_i) * mult_i / 2**shift); the last
    layer's log-scale is acc * u, with u recovered from the thresholds floor(log s_k / u).
    """
    from zvc69_rt.entropy import SCALE_TABLE

    convs = [m for m in head if isinstance(m, nn.Conv2d)]
    n = int(tables["sh_num_layers"])
    log_table = np.log(SCALE_TABLE[:63].astype(np.float64))
    for i, conv in enumerate(convs[:n]):
        w = tables[f"sh{i}_w"].astype(np.float64)
        b = tables[f"sh{i}_b"].astype(np.float64)
        if i < n - 1:
            k = tables[f"sh{i}_mult"].astype(np.float64) / 2.0 ** int(tables[f"sh{i}_shift"])
        else:
            thr = tables["sh_thresholds"].astype(np.float64)
            big = np.abs(thr) > 50  # where floor() costs little relative precision
            ratio = np.where(big, log_table[None, :] / np.where(thr == 0, 1, thr + 0.5), np.nan)
            k = np.nanmedian(ratio, axis=1)
        conv.weight.data = torch.from_numpy((w * k[:, None, None, None]).astype(np.float32))
        conv.bias.data = torch.from_numpy((b * k).astype(np.float32))


def _fit_z_density(tables: dict[str, np.ndarray], model: IntraModel, steps: int = 1500) -> float:
    """Refit the factorized prior to the shipped pmf (cross-entropy over its support)."""
    cdf, length, offset = tables["z_cdf"], tables["z_cdf_length"], tables["z_offset"]
    R = 64
    target = np.zeros((cdf.shape[0], 2 * R + 1))
    for c in range(cdf.shape[0]):
        pmf = np.diff(cdf[c, : length[c]].astype(np.float64)) / 2.0**16
        lo = int(offset[c]) + R
        pmf = pmf[: 2 * R + 1 - lo]
        target[c, lo : lo + len(pmf)] = pmf
    target /= target.sum(1, keepdims=True)
    t = torch.from_numpy(target).float()
    dens = model.z_density
    opt = torch.optim.Adam(dens.parameters(), lr=1e-2)
    k = torch.arange(-R, R + 1, dtype=torch.float32).reshape(1, 1, -1).expand(cdf.shape[0], 1, -1)
    for _ in range(steps):
        lower = torch.sigmoid(dens.cdf_logits(k - 0.5))
        upper = torch.sigmoid(dens.cdf_logits(k + 0.5))
        p = (upper - lower).reshape(cdf.shape[0], -1).clamp_min(1e-9)
        loss = -(t * torch.log2(p)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    entropy = float(-(t * torch.log2(t.clamp_min(1e-12))).sum(1).mean())
    return float(loss.detach()) - entropy  # bits/symbol lost to the refit (KL)


def recover(bundle: Path) -> tuple[IntraModel, dict]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    if manifest.get("kind") != "intra":
        raise ValueError(f"{bundle}: not an intra bundle")
    n = manifest["hyperprior_channels"]
    nt = manifest.get("transform_channels", n)  # absent before session 3: the transforms had N
    cfg = ModelConfig(N=n, M=manifest["latent_channels"], levels=manifest["levels"], NT=None if nt == n else nt)
    model = IntraModel(cfg)
    graphs = manifest["graphs"]
    ana = _onnx_weights(bundle / graphs["analysis"]["fp32"])
    n_ga = len(_slots(model.ga))
    _load_slots(_slots(model.ga), ana[:n_ga])
    _load_slots(_slots(model.ha), ana[n_ga:])
    _load_slots(_slots(model.hs_mean), _onnx_weights(bundle / graphs["hyper_synthesis"]["fp32"]))
    _load_slots(_slots(model.gs), _onnx_weights(bundle / graphs["synthesis"]["fp32"]))
    with np.load(bundle / "tables.npz") as f:
        tables = {k: f[k] for k in f.files}
    model.log_gain.data = torch.log(torch.from_numpy(tables["gains"]).float())
    model.log_inv_gain.data = torch.log(torch.from_numpy(tables["inv_gains"]).float())
    _scale_head_float(tables, model.hs_scale)
    kl = _fit_z_density(tables, model)
    return model, {"step": int(manifest.get("source", {}).get("step", 0)), "z_refit_kl_bits": kl,
                   "bundle_hash": manifest.get("hash")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write (e.g. runs/intra/last.pt)")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model, info = recover(args.bundle)
    best = float("inf")
    if not args.no_eval:
        from onnx_export.data import eval_images
        from onnx_export.train import evaluate

        ev = evaluate(model, eval_images(max_side=512))
        best = ev["eval_loss"]
        info["eval"] = ev
    from onnx_export.train import save

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(args.out, model, None, info["step"], best, None, model.cfg)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
