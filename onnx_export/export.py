"""Export a trained IntraModel checkpoint as a runtime model bundle (no torch at runtime).

    python -m onnx_export.export runs/intra/best.pt --out zvc69_rt/models/bundles/default

Bundle layout (manifest.json lists everything and the hash covers it):
    analysis.{fp32,fp16,int8}.onnx          x[1,3,H,W], gain[1,M,1,1] -> y[1,M,H/16,W/16], z[1,N,H/64,W/64]
    hyper_synthesis.{fp32,fp16}.onnx        z_hat[1,N,h,w] -> mean[1,M,4h,4w]  (its int8 entry: the fp16 file)
    synthesis.{fp32,fp16}.onnx              y_hat[1,M,h,w], inv_gain[1,M,1,1] -> x_hat[1,3,16h,16w]  (int8 entry: fp16)
    tables.npz                              gains, z CDFs (quantized), integer scale head

Graphs are split at the quantization boundaries; the scale branch is not a graph but
an exact integer head (zvc69_rt.models.scale_head) so CDF selection is bit-identical
everywhere. FP16 graphs keep FP32 I/O and run GDN's normalisation in FP32; INT8 graphs
are explicit Q/DQ (symmetric, per-channel weights) calibrated on training pictures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onnx_export.model import LAMBDAS, IntraModel, ModelConfig

OPSET = 17
SCALE_TAIL_MASS = 1e-9


class _Analysis(nn.Module):
    def __init__(self, m: IntraModel):
        super().__init__()
        self.ga, self.ha = m.ga, m.ha

    def forward(self, x, gain):
        y = self.ga(x * 2 - 1) * gain
        return y, self.ha(y)


class _HyperSynthesis(nn.Module):
    def __init__(self, m: IntraModel):
        super().__init__()
        self.hs_mean = m.hs_mean

    def forward(self, z_hat):
        return self.hs_mean(z_hat)


class _Synthesis(nn.Module):
    def __init__(self, m: IntraModel):
        super().__init__()
        self.gs = m.gs

    def forward(self, y_hat, inv_gain):
        return torch.clamp((self.gs(y_hat * inv_gain) + 1) / 2, 0, 1)


def load_checkpoint(path: Path) -> IntraModel:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = IntraModel(ModelConfig(**ck["cfg"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dyn: dict) -> None:
    torch.onnx.export(
        module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=dyn,
        opset_version=OPSET, dynamo=False, do_constant_folding=True,
    )
    _fold_constants(path)


def _fold_constants(path: Path) -> None:
    """ORT basic-level optimisation folds GDN's reparametrisation into constants
    (the FP16 converter trips over the unfolded form) without fusing ops TensorRT
    would not parse."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "folded.onnx"
        so.optimized_model_filepath = str(tmp)
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        path.write_bytes(tmp.read_bytes())


FP16_BLOCK_LIST = ["Sqrt", "Reciprocal", "Div", "Pow"]  # GDN's normalisation stays FP32
#: Graphs whose "int8" variant is the FP16 graph. The mean adds straight onto the decoded
#: symbols (y_hat = sym + mean), so its quantisation error is latent error: INT8 means cost
#: up to 3 dB at low quality (decoding an FP32 stream, 256x192, quality 30); FP16 means
#: 0.01 dB, with INT8 synthesis <= 0.22 dB at every quality. The graph is tiny (H/64..H/16).
INT8_AS_FP16 = ("hyper_synthesis", "synthesis")
# synthesis too, since session 2's step-30000 model: its INT8 synthesis (first and last conv
# float, percentile-calibrated activations) lost 1.1-3.0 dB decoding FP32 streams (MinMax
# calibration: 2.1-5.0 dB), against 0.1-0.2 dB for session 1's. Until the INT8 synthesis is
# fixed (e.g. quantisation-aware fine-tuning), --precision int8 decodes in FP16.


def _to_fp16(src: Path, dst: Path) -> None:
    """FP16 graph with FP32 inputs/outputs. The converter's keep_io_types mishandles a
    graph output that other nodes also consume (analysis's y feeds ha), so convert
    everything and add the I/O casts ourselves."""
    import onnx
    from onnx import TensorProto, helper
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=False,
                                             op_block_list=FP16_BLOCK_LIST)
    g = model.graph
    casts_in, casts_out = [], []
    for inp in g.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        inner = inp.name + "__fp16"
        for node in g.node:
            node.input[:] = [inner if n == inp.name else n for n in node.input]
        inp.type.tensor_type.elem_type = TensorProto.FLOAT
        casts_in.append(helper.make_node("Cast", [inp.name], [inner], to=TensorProto.FLOAT16))
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        inner = out.name + "__fp16"
        for node in g.node:
            node.output[:] = [inner if n == out.name else n for n in node.output]
            node.input[:] = [inner if n == out.name else n for n in node.input]
        out.type.tensor_type.elem_type = TensorProto.FLOAT
        casts_out.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT))
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


class _Calib:
    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


#: Convs kept in float inside INT8 graphs, by name prefix: the hyper-analysis reads the
#: gained latent, whose range changes ~10x between quality levels, so one INT8 activation
#: scale cannot serve every level. Measured (session 3, bikes.mp4, level 5, all-intra,
#: step-32000 model): INT8 hyper-analysis +34 % bits and -1.2 dB; with it in float, INT8
#: analysis costs -2 % bits and -0.26 dB against FP32.
INT8_KEEP_FLOAT = ("/ha/", "/rha/")


def _to_int8(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Q/DQ INT8 for every conv except the first and last of each graph (the pixel-facing
    layers are the accuracy-critical ones: 0.77 dB PSNR drop with them in INT8) and those
    under INT8_KEEP_FLOAT."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    convs = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "Conv"]
    keep = [convs[0], convs[-1]] if len(convs) > 2 else []
    keep += [c for c in convs if c.startswith(INT8_KEEP_FLOAT) and c not in keep]
    quantize_static(
        str(src), str(dst), _Calib(feeds), quant_format=QuantFormat.QDQ,
        nodes_to_exclude=keep,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
        op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.Percentile,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "CalibPercentile": 99.99},
    )


def _integer_scale_head(model: IntraModel, z_calib: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """Post-training int8 quantisation of hs_scale with exact integer thresholds."""
    from zvc69_rt.entropy import SCALE_TABLE

    convs = [m for m in model.hs_scale if isinstance(m, nn.Conv2d)]
    # activation ranges after each ReLU from calibration data
    act_max = []
    with torch.no_grad():
        for i in range(len(convs) - 1):
            vals = []
            for z in z_calib:
                x = torch.clamp(torch.round(z), -127, 127)
                for j in range(i + 1):
                    x = torch.relu(nn.functional.pixel_shuffle(convs[j](x), 2))
                vals.append(x.flatten())
            v = torch.cat(vals)
            act_max.append(float(torch.quantile(v[v > 0][:1_000_000], 0.9999)) if (v > 0).any() else 1.0)
    t: dict[str, np.ndarray] = {"sh_num_layers": np.array(len(convs))}
    s_in = 1.0
    shift = 24
    for i, conv in enumerate(convs):
        w = conv.weight.detach().double().numpy()
        b = conv.bias.detach().double().numpy()
        s_w = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / 127.0
        wq = np.clip(np.round(w / s_w[:, None, None, None]), -127, 127).astype(np.int8)
        u = s_in * s_w
        t[f"sh{i}_w"] = wq
        t[f"sh{i}_b"] = np.round(b / u).astype(np.int64)
        t[f"sh{i}_shift"] = np.array(shift)
        if i < len(convs) - 1:
            s_out = act_max[i] / 255.0
            t[f"sh{i}_mult"] = np.round(u / s_out * 2**shift).astype(np.int64)
            assert t[f"sh{i}_mult"].max() < 2**31
            s_in = s_out
        else:
            t[f"sh{i}_mult"] = np.zeros(w.shape[0], dtype=np.int64)
            log_table = np.log(SCALE_TABLE[:63].astype(np.float64))
            t["sh_thresholds"] = np.floor(log_table[None, :] / u[:, None]).astype(np.int64)
    return t


def _z_cdf_tables(model: IntraModel) -> dict[str, np.ndarray]:
    from zvc69_rt.entropy import CdfTable

    R = 64
    pmf = model.z_density.pmf_table(-R, R).double().numpy()  # [N, 2R+1]
    pmfs, offsets = [], []
    for c in range(pmf.shape[0]):
        p = pmf[c]
        cum = np.cumsum(p)
        lo = int(np.searchsorted(cum, SCALE_TAIL_MASS / 2))
        hi = int(np.searchsorted(cum, 1 - SCALE_TAIL_MASS / 2))
        hi = min(max(hi, lo), len(p) - 1)
        pmfs.append(p[lo : hi + 1])
        offsets.append(lo - R)
    table = CdfTable.from_pmfs(pmfs, np.array(offsets, dtype=np.int32))
    return {"z_cdf": table.cdf, "z_cdf_length": table.cdf_length, "z_offset": table.offset}


def calibration_inputs(model: IntraModel, count: int = 16, size: int = 256, seed: int = 1):
    from onnx_export.data import PatchSampler, training_images

    sampler = PatchSampler(training_images(verbose=False), size=size, seed=seed)
    x = torch.from_numpy(sampler.sample(count))
    levels = torch.linspace(0, model.cfg.levels - 1, count)
    return x, levels


def export_bundle(ckpt: Path, out: Path, precisions=("fp32", "fp16", "int8"), note: str = "") -> dict:
    from zvc69_rt.models.bundle import write_manifest

    model = load_checkpoint(ckpt)
    cfg = model.cfg
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.onnx"):
        old.unlink()
    x, levels = calibration_inputs(model)
    with torch.no_grad():
        gains = torch.stack([model.gains(float(lv))[0] for lv in range(cfg.levels)]).numpy()
        inv_gains = torch.stack([model.gains(float(lv))[1] for lv in range(cfg.levels)]).numpy()
    H = W = 256
    dyn_img = {0: "batch", 2: "height", 3: "width"}
    graphs = {
        "analysis": (
            _Analysis(model), (torch.rand(1, 3, H, W), torch.ones(1, cfg.M, 1, 1)),
            ["x", "gain"], ["y", "z"], {"x": dyn_img, "y": dyn_img, "z": dyn_img},
        ),
        "hyper_synthesis": (
            _HyperSynthesis(model), (torch.zeros(1, cfg.N, H // 64, W // 64),),
            ["z_hat"], ["mean"], {"z_hat": dyn_img, "mean": dyn_img},
        ),
        "synthesis": (
            _Synthesis(model), (torch.zeros(1, cfg.M, H // 16, W // 16), torch.ones(1, cfg.M, 1, 1)),
            ["y_hat", "inv_gain"], ["x_hat"], {"y_hat": dyn_img, "x_hat": dyn_img},
        ),
    }
    # calibration feeds for INT8, from real training pictures at several levels
    feeds: dict[str, list] = {"analysis": [], "hyper_synthesis": [], "synthesis": []}
    z_calib = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            g, ig = model.gains(float(levels[i]))
            xi = x[i : i + 1]
            y, z = _Analysis(model)(xi, g[None, :, None, None])
            z_hat = torch.round(z)
            z_calib.append(z)
            mean = model.hs_mean(z_hat)
            y_hat = torch.round(y - mean) + mean
            feeds["analysis"].append({"x": xi.numpy(), "gain": g[None, :, None, None].numpy()})
            feeds["hyper_synthesis"].append({"z_hat": z_hat.numpy()})
            feeds["synthesis"].append({"y_hat": y_hat.numpy(), "inv_gain": ig[None, :, None, None].numpy()})
    files: dict[str, dict[str, str]] = {}
    for name, (mod, args, ins, outs, dyn) in graphs.items():
        files[name] = {}
        fp32 = out / f"{name}.fp32.onnx"
        _export(mod, args, fp32, ins, outs, dyn)
        files[name]["fp32"] = fp32.name
        if "fp16" in precisions:
            _to_fp16(fp32, out / f"{name}.fp16.onnx")
            files[name]["fp16"] = f"{name}.fp16.onnx"
        if "int8" in precisions and name in INT8_AS_FP16 and "fp16" in files[name]:
            files[name]["int8"] = files[name]["fp16"]
        elif "int8" in precisions:
            _to_int8(fp32, out / f"{name}.int8.onnx", feeds[name])
            files[name]["int8"] = f"{name}.int8.onnx"
    # lambdas: the encoder's RD choices for I-frames (reduced resolution) weigh bits against MSE with them
    tables = {"gains": gains.astype(np.float32), "inv_gains": inv_gains.astype(np.float32),
              "lambdas": np.array(LAMBDAS[: cfg.levels], dtype=np.float64)}
    tables.update(_z_cdf_tables(model))
    tables.update(_integer_scale_head(model, z_calib))
    np.savez(out / "tables.npz", **tables)
    manifest = {
        "format": "zvc69-bundle/1",
        "kind": "intra",
        "latent_channels": cfg.M,
        "hyperprior_channels": cfg.N,
        "transform_channels": cfg.transform_channels,
        "levels": cfg.levels,
        "alignment": 64,
        "graphs": files,
        "tables": "tables.npz",
        "source": {"checkpoint": str(ckpt), "step": int(torch.load(ckpt, weights_only=False)["step"]), "note": note},
    }
    return write_manifest(out, manifest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, default=Path("zvc69_rt/models/bundles/default"))
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    m = export_bundle(args.checkpoint, args.out, tuple(args.precisions.split(",")), args.note)
    print(json.dumps({"hash": m["hash"], "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
