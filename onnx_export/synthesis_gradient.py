"""The I-frame rate-distortion gradient as an ONNX graph, for encoder-side latent refinement
(zvc69_rt/codec/latent_refine.py).

The analysis transform maps a picture to its latent in one amortised pass; for the fixed
synthesis and entropy model that latent is rarely the one of least rate-distortion cost. A
few gradient steps on the latent itself close part of that gap (training photos, 20 steps:
-6 % BD-rate, docs/INTRA.md "Latent refinement"). The runtime has no autograd (it never
imports torch), so the gradient is exported as a graph: the synthesis run forward, then its
adjoint written out with forward operators only (autograd does not export, and TensorRT
parses only forward operators):

    y [1,M,h,w] --*inv_gain--> SubpixelUp --IGDN--> ... --SubpixelUp--> (.+1)/2 --clip--> x_hat
    d = lag/3 * sum(weight * (x_hat - x)^2)            (weight: 1 on visible pixels, 0 on padding)
    r = -log2(Phi((y-mean+1/2)/scale) - Phi((y-mean-1/2)/scale))   (the training's rate proxy)
    grad = d(d + sum r)/dy, through
        clip       -> mask 0 < x_hat < 1
        DepthToSpace -> SpaceToDepth (its inverse is its adjoint: a permutation)
        3x3 conv   -> 3x3 conv with the kernel transposed and flipped (stride 1, pad 1)
        IGDN v = u*s, s = sqrt(beta + gamma u^2)  ->  g*s + u * gamma^T(g*u/s)

The P-frame residual (residual_synthesis_gradient, session 20) is the same chain on the
residual synthesis: x_hat = clip(pred + rs(y * inv_gain) / 2), the conditional synthesis'
prediction features added inside it (constants in y, so the adjoint passes them by).

The relaxation is continuous (no rounding inside): with rounding (straight-through) the
steps made the cost worse, the rounding flips they cause are not what the gradient sees.
Encoder-only: FP32 at every precision (the manifest's fp16/int8 entries name the fp32 file).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from onnx_export.inter_model import InterModel
from onnx_export.layers import GDN, SubpixelUp
from onnx_export.model import IntraModel
from zvc69_rt.codec.latent_refine import GRAPH, RESIDUAL_GRAPH

_LN2 = math.log(2.0)
#: Below this probability the rate gradient takes the Gaussian tail's asymptote.
TAIL_P = 1e-6


def _space_to_depth(g: torch.Tensor) -> torch.Tensor:
    """The inverse (and adjoint) of PixelShuffle(2), written with Reshape/Transpose."""
    b, c, h, w = g.shape
    g = g.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return g.reshape(b, c * 4, h // 2, w // 2)


def _normal_cdf(t: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(t * (1 / math.sqrt(2))))


def _normal_pdf(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * t * t) * (1 / math.sqrt(2 * math.pi))


class SynthesisGradient(nn.Module):
    """Inputs y, inv_gain [1,M,1,1], x [1,3,H,W], weight [1,1,H,W], mean, scale (like y),
    lag [1] (lambda*255^2 of the quality); outputs grad (like y), x_hat, distortion and bits
    ([1] each, the two terms of the cost)."""

    def __init__(self, model: IntraModel):
        super().__init__()
        self.layers = nn.ModuleList(model.gs)
        _check_layers(self.layers)

    def forward(self, y, inv_gain, x, weight, mean, scale, lag):
        h, saved = _synthesis_forward(self.layers, y * inv_gain)
        x_lin = (h + 1) / 2
        return _cost_gradient(self.layers, saved, x_lin, y, inv_gain, x, weight, mean, scale, lag)


def _synthesis_forward(layers, h, added=None):
    """The synthesis layers on h, with added[i] added after layer i (the P model's prediction
    branch); returns the output and what the adjoint needs (each IGDN's input and norm)."""
    saved = []
    for i, layer in enumerate(layers):
        if isinstance(layer, SubpixelUp):
            h = F.pixel_shuffle(layer[0](h), 2)
        else:
            c = layer.channels
            s = torch.sqrt(F.conv2d(h * h, layer.gamma().reshape(c, c, 1, 1), layer.beta()))
            saved.append((h, s))
            h = h * s
        if added and i in added:
            h = h + added[i]  # constant in y: the adjoint passes through it unchanged
    return h, saved


def _cost_gradient(layers, saved, x_lin, y, inv_gain, x, weight, mean, scale, lag):
    """(grad, x_hat, distortion, bits) for x_hat = clip(x_lin) where x_lin = a + h / 2 and h
    is the synthesis output (_synthesis_forward): the distortion's adjoint, then the rate's."""
    x_hat = torch.clamp(x_lin, 0, 1)
    err = (x_hat - x) * weight
    distortion = (lag / 3) * (err * (x_hat - x)).sum().reshape(1)
    inside = (x_lin > 0).to(y.dtype) * (x_lin < 1).to(y.dtype)  # no boolean And: fewer operators to parse
    g = (lag / 3) * err * inside  # d distortion / d h, with the /2 of x_lin and the 2 of the square
    for layer in reversed(layers):
        if isinstance(layer, SubpixelUp):
            w = layer[0].weight
            g = F.conv2d(_space_to_depth(g), w.transpose(0, 1).flip(2, 3), padding=1)
        else:
            u, s = saved.pop()
            c = layer.channels
            gamma_t = layer.gamma().transpose(0, 1).reshape(c, c, 1, 1)
            g = g * s + u * F.conv2d(g * u / s, gamma_t)
    g = g * inv_gain
    r = y - mean
    hi, lo = (r + 0.5) / scale, (r - 0.5) / scale
    p = torch.clamp(_normal_cdf(hi) - _normal_cdf(lo), min=1e-9)
    bits = (-torch.log2(p)).sum().reshape(1)
    # far in a tail p underflows (FP32 cdf differences): there -log2 p ~ r^2 / (2 scale^2 ln 2)
    g_rate = torch.where(p > TAIL_P, -(_normal_pdf(hi) - _normal_pdf(lo)) / (scale * p * _LN2),
                         r / (scale * scale * _LN2))
    return g + g_rate, x_hat, distortion, bits


def _check_layers(layers) -> None:
    for layer in layers:
        if not isinstance(layer, SubpixelUp | GDN) or (isinstance(layer, GDN) and not layer.inverse):
            raise TypeError(f"synthesis layer {type(layer).__name__}: the gradient graph knows SubpixelUp and IGDN")


class ResidualSynthesisGradient(nn.Module):
    """The P-frame residual's cost gradient (zvc69_rt.codec.latent_refine.refine_residual):
    x_hat = clip(pred + rs(y * inv_gain) / 2), with the conditional synthesis' prediction
    branch added where the model has one (constant in y). Inputs y [1,M,h,w], inv_gain,
    pred and x [1,3,8h,8w], weight [1,1,8h,8w], mean, scale, lag; outputs as SynthesisGradient."""

    def __init__(self, model: InterModel):
        super().__init__()
        self.m = model
        self.layers = nn.ModuleList(model.rs)
        _check_layers(self.layers)

    def forward(self, y, inv_gain, pred, x, weight, mean, scale, lag):
        added = None
        if self.m.cfg.cond:
            p2 = self.m.pf2(pred * 2 - 1)
            added = {1: self.m.inj4(self.m.pf4(p2)), 3: self.m.inj2(p2)}
        h, saved = _synthesis_forward(self.layers, y * inv_gain, added)
        return _cost_gradient(self.layers, saved, pred + h * 0.5, y, inv_gain, x, weight, mean, scale, lag)


INPUTS = ["y", "inv_gain", "x", "weight", "mean", "scale", "lag"]
RESIDUAL_INPUTS = ["y", "inv_gain", "pred", "x", "weight", "mean", "scale", "lag"]
OUTPUTS = ["grad", "x_hat", "distortion", "bits"]


def export_gradient_graph(model: IntraModel, path: Path) -> None:
    from onnx_export.export import _export

    model.eval()
    M, H, W = model.cfg.M, 128, 128
    y = torch.randn(1, M, H // 16, W // 16)
    args = (y, torch.ones(1, M, 1, 1), torch.rand(1, 3, H, W), torch.ones(1, 1, H, W), torch.zeros_like(y),
            torch.ones_like(y), torch.ones(1))
    dyn = {0: "batch", 2: "height", 3: "width"}
    axes = {n: dyn for n in ("y", "x", "weight", "mean", "scale", "grad", "x_hat")}
    with torch.no_grad():
        _export(SynthesisGradient(model), args, path, INPUTS, OUTPUTS, axes)


def export_residual_gradient_graph(model: InterModel, path: Path) -> None:
    from onnx_export.export import _export

    model.eval()
    M, H, W = model.cfg.M, 128, 128
    y = torch.randn(1, M, H // 8, W // 8)
    args = (y, torch.ones(1, M, 1, 1), torch.rand(1, 3, H, W), torch.rand(1, 3, H, W), torch.ones(1, 1, H, W),
            torch.zeros_like(y), torch.ones_like(y), torch.ones(1))
    dyn = {0: "batch", 2: "height", 3: "width"}
    axes = {n: dyn for n in ("y", "pred", "x", "weight", "mean", "scale", "grad", "x_hat")}
    with torch.no_grad():
        _export(ResidualSynthesisGradient(model), args, path, RESIDUAL_INPUTS, OUTPUTS, axes)


def add_residual_to_bundle(checkpoint: Path, bundle: Path) -> dict:
    """Export the residual gradient graph of the P model in ``checkpoint`` (train_inter's)
    into ``bundle`` (add_residual_graph)."""
    from onnx_export.train_inter import load_checkpoint

    return add_residual_graph(load_checkpoint(checkpoint).eval(), bundle, str(checkpoint))


def add_residual_graph(model: InterModel, bundle: Path, source: str = "the P model") -> dict:
    """Export ``model``'s residual gradient graph into ``bundle``, whose residual_synthesis
    must be that model's (checked on random inputs), and rewrite its manifest."""
    import numpy as np
    import onnxruntime as ort

    from zvc69_rt.models.bundle import write_manifest

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.pop("hash", None)
    rng = np.random.default_rng(0)
    feeds = {"y_hat": rng.normal(0, 2, (1, model.cfg.M, 4, 4)).astype(np.float32),
             "inv_gain": np.ones((1, model.cfg.M, 1, 1), np.float32),
             "pred": rng.random((1, 3, 32, 32), dtype=np.float32)}
    synth = ort.InferenceSession(str(bundle / manifest["graphs"]["residual_synthesis"]["fp32"]),
                                 providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ours = model.residual_synthesis(*(torch.from_numpy(feeds[k]) for k in ("y_hat", "inv_gain", "pred"))).numpy()
    if float(np.abs(synth.run(None, feeds)[0] - ours).max()) > 1e-4:
        raise SystemExit(f"{source} is not the P model of {bundle}: their residual syntheses differ")
    name = f"{RESIDUAL_GRAPH}.fp32.onnx"
    export_residual_gradient_graph(model, bundle / name)
    manifest["graphs"][RESIDUAL_GRAPH] = {"fp32": name, "fp16": name, "int8": name}
    return write_manifest(bundle, manifest)


def add_to_bundle(checkpoint: Path, bundle: Path) -> dict:
    """Export the gradient graph of the intra model in ``checkpoint`` into ``bundle`` (whose
    synthesis must be that model's: checked on a random latent) and rewrite its manifest."""
    import numpy as np
    import onnxruntime as ort

    from onnx_export.export import load_checkpoint
    from zvc69_rt.models.bundle import write_manifest

    model = load_checkpoint(checkpoint).eval()
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.pop("hash", None)
    y = np.random.default_rng(0).normal(0, 2, (1, model.cfg.M, 4, 4)).astype(np.float32)
    ig = np.ones((1, model.cfg.M, 1, 1), np.float32)
    synth = ort.InferenceSession(str(bundle / manifest["graphs"]["synthesis"]["fp32"]), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ours = torch.clamp((model.gs(torch.from_numpy(y)) + 1) / 2, 0, 1).numpy()
    if float(np.abs(synth.run(None, {"y_hat": y, "inv_gain": ig})[0] - ours).max()) > 1e-4:
        raise SystemExit(f"{checkpoint} is not the intra model of {bundle}: their syntheses differ")
    name = f"{GRAPH}.fp32.onnx"
    export_gradient_graph(model, bundle / name)
    manifest["graphs"][GRAPH] = {"fp32": name, "fp16": name, "int8": name}
    return write_manifest(bundle, manifest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="the bundle's intra model (e.g. onnx_export/checkpoints/intra_last.pt), "
                    "or with --inter its P model (train_inter's, e.g. onnx_export/checkpoints/inter_last.pt)")
    ap.add_argument("--into", type=Path, required=True, help="the model bundle to add the graph to")
    ap.add_argument("--inter", action="store_true", help=f"export the P residual's graph ({RESIDUAL_GRAPH})")
    args = ap.parse_args(argv)
    m = (add_residual_to_bundle if args.inter else add_to_bundle)(args.checkpoint, args.into)
    print(json.dumps({"hash": m["hash"], "out": str(args.into)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
