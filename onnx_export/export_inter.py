"""Export a trained P-frame model (onnx_export.train_inter) as ONNX graphs + tables.

    python -m onnx_export.export_inter runs/inter/best.pt --out /tmp/inter_bundle      # standalone
    python -m onnx_export.export_inter runs/inter/best.pt --into zvc69_rt/models/bundles/default

Graphs (fp32, fp16 with FP32 I/O, and int8 Q/DQ for the encoder-only graphs (INT8_GRAPHS);
dynamic batch/height/width; H, W multiples of 64):
    motion_estimation.*.onnx         ref, cur [1,3,H,W]            -> flow [1,2,H/4,W/4] (pixels)
    motion_compensation.*.onnx       ref [1,3,H,W], motion [1,2,H/4,W/4] -> pred [1,3,H,W]
                                     (bilinear upsampling + GridSample, opset 17; FP32 only:
                                     the manifest's fp16 entry names the fp32 file)
    motion_compensation_cubic.*.onnx the same with a bicubic GridSample, clamped to [0, 1]
                                     (session 6; motion data flags the frames that use it)
    residual_analysis.*.onnx         cur, pred [1,3,H,W], gain [1,64,1,1] -> y [1,64,H/8,W/8], z [1,32,H/32,W/32]
    residual_hyper_synthesis.*.onnx  z_hat [1,32,h,w] -> mean [1,64,4h,4w]; a model with the
                                     conditional mean (InterConfig.cond_mean) also takes
                                     pred [1,3,32h,32w] and gain [1,64,1,1] (manifest
                                     "conditional_mean": true, input_strides for pred)
    residual_synthesis.*.onnx        y_hat [1,64,h,w], inv_gain [1,64,1,1], pred [1,3,8h,8w] -> x_hat (clamped)
Tables, all prefixed "p_" so they can live in the intra bundle's tables.npz beside the
intra ones: p_gains, p_inv_gains, p_lambdas, p_z_cdf/_cdf_length/_offset (residual
hyperprior), p_sh* (exact integer residual scale head, IntegerScaleHead format).
The manifest gets an "inter" section (channels, factors, graph names).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onnx_export.export import _export, _integer_scale_head, _to_fp16, _to_int8, _z_cdf_tables
from onnx_export.inter_model import InterModel, upsample_motion, warp
from onnx_export.model import LAMBDAS

TABLE_PREFIX = "p_"
GRAPHS = ("motion_estimation", "motion_compensation", "motion_compensation_cubic", "residual_analysis",
          "residual_hyper_synthesis", "residual_synthesis")
#: Weightless graphs whose sampling coordinates need FP32 (1080p+): every precision's
#: manifest entry names the fp32 file.
FP32_ONLY = ("motion_compensation", "motion_compensation_cubic")
FP16_BLOCK_LIST = ["Sqrt", "Reciprocal", "Div", "Pow", "GridSample", "Resize", "Range"]
#: Graphs with a real INT8 (Q/DQ) variant. Only encoder-only graphs qualify: their output
#: only steers what the encoder codes (the flow is quantised and chosen by rate-distortion
#: cost), never what the decoder reconstructs, so INT8 there cannot make encoder and
#: decoder disagree. Of the two, residual_analysis stays FP16: its INT8 variant cost +59 %
#: bits at -0.48 dB on bikes.mp4 (level 5, 16-frame IPPP, session 3), INT8 motion estimation
#: nothing measurable. The decoder-side graphs' "int8" entry is their FP16 file, as for the
#: intra synthesis (docs/INTER.md: INT8).
INT8_GRAPHS = ("motion_estimation",)


class _MotionEstimation(nn.Module):
    def __init__(self, m: InterModel):
        super().__init__()
        self.motion = m.motion

    def forward(self, ref, cur):
        return self.motion(ref, cur)


class _MotionCompensation(nn.Module):
    def __init__(self, mode: str = "bilinear"):
        super().__init__()
        self.mode = mode

    def forward(self, ref, motion):
        return warp(ref, upsample_motion(motion), self.mode)


class _ResidualAnalysis(nn.Module):
    def __init__(self, m: InterModel):
        super().__init__()
        self.m = m

    def forward(self, cur, pred, gain):
        return self.m.residual_analysis(cur, pred, gain)


class _ResidualHyperSynthesis(nn.Module):
    def __init__(self, m: InterModel):
        super().__init__()
        self.rhs_mean = m.rhs_mean

    def forward(self, z_hat):
        return self.rhs_mean(z_hat)


class _ConditionalResidualHyperSynthesis(nn.Module):
    def __init__(self, m: InterModel):
        super().__init__()
        self.m = m

    def forward(self, z_hat, pred, gain):
        return self.m.residual_mean(z_hat, pred, gain)


class _ResidualSynthesis(nn.Module):
    def __init__(self, m: InterModel):
        super().__init__()
        self.m = m

    def forward(self, y_hat, inv_gain, pred):
        return self.m.residual_synthesis(y_hat, inv_gain, pred)


def calibration_pairs(count: int = 6, size: int = 256, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(ref, cur) from the training sources, for the integer scale head's activation ranges."""
    from onnx_export.data import training_images
    from onnx_export.motion_data import MotionBatchSampler, video_frames

    b = MotionBatchSampler(training_images(verbose=False), video_frames(), size=size, seed=seed).sample(count)
    return b["ref"], b["cur"]


def inter_tables(model: InterModel, ref: torch.Tensor, cur: torch.Tensor) -> dict[str, np.ndarray]:
    """Gains, residual hyperprior CDFs and the integer scale head (unprefixed names)."""
    cfg = model.cfg
    with torch.no_grad():
        gains = torch.stack([model.gains(float(lv))[0] for lv in range(cfg.levels)]).numpy()
        inv_gains = torch.stack([model.gains(float(lv))[1] for lv in range(cfg.levels)]).numpy()
        z_calib = []
        levels = np.linspace(0, cfg.levels - 1, ref.shape[0])
        for i in range(ref.shape[0]):
            r, c = ref[i : i + 1], cur[i : i + 1]
            pred = warp(r, upsample_motion(torch.round(model.motion(r, c) * 4) / 4))
            g, _ = model.gains(float(levels[i]))
            _, z = model.residual_analysis(c, pred, g[None, :, None, None])
            z_calib.append(z)
    t = {"gains": gains.astype(np.float32), "inv_gains": inv_gains.astype(np.float32),
         "lambdas": np.array(LAMBDAS[: cfg.levels], dtype=np.float64)}
    t.update(_z_cdf_tables(model))
    t.update(_integer_scale_head(model, z_calib))
    return t


def int8_calibration_feeds(ref: torch.Tensor, cur: torch.Tensor) -> dict[str, list[dict[str, np.ndarray]]]:
    """Real (ref, cur) training pairs as inputs of the INT8_GRAPHS, for activation ranges.
    (Session 3 also calibrated residual_analysis, fed the model's own prediction and gains
    over the levels, before its INT8 variant was dropped: see INT8_GRAPHS.)"""
    pairs = [{"ref": ref[i : i + 1].numpy(), "cur": cur[i : i + 1].numpy()} for i in range(ref.shape[0])]
    return {"motion_estimation": pairs}


def export_graphs(model: InterModel, out: Path, precisions=("fp32",),
                  calib: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, dict[str, str]]:
    """calib: (ref, cur) pairs for the INT8 graphs (needed when precisions has int8)."""
    cfg = model.cfg
    model.eval()
    H = W = 128
    dyn = {0: "batch", 2: "height", 3: "width"}
    specs = {
        "motion_estimation": (_MotionEstimation(model), (torch.rand(1, 3, H, W), torch.rand(1, 3, H, W)),
                              ["ref", "cur"], ["flow"]),
        "motion_compensation": (_MotionCompensation(), (torch.rand(1, 3, H, W), torch.randn(1, 2, H // 4, W // 4)),
                                ["ref", "motion"], ["pred"]),
        "motion_compensation_cubic": (_MotionCompensation("bicubic"),
                                      (torch.rand(1, 3, H, W), torch.randn(1, 2, H // 4, W // 4)),
                                      ["ref", "motion"], ["pred"]),
        "residual_analysis": (_ResidualAnalysis(model),
                              (torch.rand(1, 3, H, W), torch.rand(1, 3, H, W), torch.ones(1, cfg.M, 1, 1)),
                              ["cur", "pred", "gain"], ["y", "z"]),
        "residual_hyper_synthesis": (_ResidualHyperSynthesis(model), (torch.zeros(1, cfg.Nz, H // 32, W // 32),),
                                     ["z_hat"], ["mean"]),
        "residual_synthesis": (_ResidualSynthesis(model),
                               (torch.zeros(1, cfg.M, H // 8, W // 8), torch.ones(1, cfg.M, 1, 1),
                                torch.rand(1, 3, H, W)),
                               ["y_hat", "inv_gain", "pred"], ["x_hat"]),
    }
    if cfg.cond_mean:
        specs["residual_hyper_synthesis"] = (
            _ConditionalResidualHyperSynthesis(model),
            (torch.zeros(1, cfg.Nz, H // 32, W // 32), torch.rand(1, 3, H, W), torch.ones(1, cfg.M, 1, 1)),
            ["z_hat", "pred", "gain"], ["mean"])
    if "int8" in precisions and calib is None:
        raise ValueError("INT8 export needs calibration pairs (calib=(ref, cur))")
    feeds = int8_calibration_feeds(*calib) if "int8" in precisions else {}
    files: dict[str, dict[str, str]] = {}
    for name, (mod, args, ins, outs) in specs.items():
        axes = {n: dyn for n in ins + outs if n not in ("gain", "inv_gain")}
        fp32 = out / f"{name}.fp32.onnx"
        _export(mod, args, fp32, ins, outs, axes)
        files[name] = {"fp32": fp32.name}
        if "fp16" in precisions and name in FP32_ONLY:
            files[name]["fp16"] = fp32.name  # no weights; sampling coordinates need FP32 at 1080p+
        elif "fp16" in precisions:
            _to_fp16_inter(fp32, out / f"{name}.fp16.onnx")
            files[name]["fp16"] = f"{name}.fp16.onnx"
        if "int8" in precisions and name in INT8_GRAPHS:
            _to_int8(fp32, out / f"{name}.int8.onnx", feeds[name])
            files[name]["int8"] = f"{name}.int8.onnx"
        elif "fp16" in files[name]:
            # decoder-side graph (INT8 there would be drift, see INT8_GRAPHS), or no INT8 export asked for
            files[name]["int8"] = files[name]["fp16"]
    return files


def _to_fp16_inter(src: Path, dst: Path) -> None:
    import onnx_export.export as ex

    saved = ex.FP16_BLOCK_LIST
    try:
        ex.FP16_BLOCK_LIST = FP16_BLOCK_LIST
        _to_fp16(src, dst)
    finally:
        ex.FP16_BLOCK_LIST = saved


def inter_manifest_section(model: InterModel, files: dict) -> dict:
    cfg = model.cfg
    section = {"format": "zvc69-inter/1", "latent_channels": cfg.M, "hyperprior_channels": cfg.Nz,
               "motion_factor": 4, "residual_factor": 8, "levels": cfg.levels, "table_prefix": TABLE_PREFIX,
               "graphs": sorted(files)}
    if cfg.cond_mean:
        section["conditional_mean"] = True
    return section


#: Spatial strides of the conditional residual_hyper_synthesis' inputs (engines.profiles):
#: the default table knows the graph by its z_hat only.
CONDITIONAL_MEAN_STRIDES = {"residual_hyper_synthesis": {"z_hat": 32, "pred": 1}}


def export_inter_bundle(model: InterModel, out: Path, precisions=("fp32", "fp16"), into: bool = False,
                        calib: tuple[torch.Tensor, torch.Tensor] | None = None, note: str = "") -> dict:
    """Write the P-frame graphs and tables to `out`: a new standalone bundle, or (into=True)
    added to the existing intra bundle there (its manifest and hash are rewritten)."""
    from zvc69_rt.models.bundle import write_manifest

    out.mkdir(parents=True, exist_ok=True)
    ref, cur = calib if calib is not None else calibration_pairs()
    files = export_graphs(model, out, precisions, calib=(ref, cur))
    tables = {TABLE_PREFIX + k: v for k, v in inter_tables(model, ref, cur).items()}
    section = inter_manifest_section(model, files)
    if into:
        manifest = json.loads((out / "manifest.json").read_text())
        manifest.pop("hash", None)
        with np.load(out / manifest["tables"]) as npz:
            merged = {k: npz[k] for k in npz.files if not k.startswith(TABLE_PREFIX)}
        merged.update(tables)
        np.savez(out / manifest["tables"], **merged)
        # the residual's gradient graph (onnx_export.synthesis_gradient --inter) was the old model's
        stale = (*GRAPHS, "residual_synthesis_gradient")
        manifest["graphs"] = {k: v for k, v in manifest["graphs"].items() if k not in stale}
        manifest["graphs"].update(files)
        manifest["inter"] = section
        manifest.setdefault("source", {})["inter_note"] = note
        strides = {k: v for k, v in manifest.get("input_strides", {}).items() if k not in GRAPHS}
        strides.update(CONDITIONAL_MEAN_STRIDES if model.cfg.cond_mean else {})
        manifest.pop("input_strides", None)
        if strides:
            manifest["input_strides"] = strides
        return write_manifest(out, manifest)
    np.savez(out / "tables.npz", **tables)
    manifest = {
        "format": "zvc69-bundle/1", "kind": "inter", "latent_channels": model.cfg.M,
        "hyperprior_channels": model.cfg.Nz, "levels": model.cfg.levels, "alignment": 64,
        "graphs": files, "tables": "tables.npz", "inter": section, "source": {"note": note},
    }
    if model.cfg.cond_mean:
        manifest["input_strides"] = dict(CONDITIONAL_MEAN_STRIDES)
    return write_manifest(out, manifest)


def main(argv=None) -> int:
    from onnx_export.train_inter import load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    dest = ap.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, help="write a standalone P-frame bundle here")
    dest.add_argument("--into", type=Path, help="add the P-frame graphs to this existing (intra) bundle")
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    model = load_checkpoint(args.checkpoint)
    step = int(torch.load(args.checkpoint, weights_only=False)["step"])
    m = export_inter_bundle(model, args.out or args.into, tuple(args.precisions.split(",")),
                            into=args.into is not None, note=args.note or f"{args.checkpoint} step {step}")
    print(json.dumps({"hash": m["hash"], "out": str(args.out or args.into)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
