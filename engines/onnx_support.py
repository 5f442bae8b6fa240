"""Which ONNX graphs TensorRT's ONNX parser will take: checked on the CPU, before a build.

A graph that TensorRT cannot parse is found out on the GPU host at `engines build` time,
minutes into a deployment. This module checks our graphs against the parser's published
operator matrix (onnx-tensorrt ``docs/operators.md`` for TensorRT 10.x: opset 9..20) and
the restrictions that matter for the operators we emit, so CI catches it instead.

Only the operators a codec graph plausibly uses are listed; anything else is reported
as unknown (add it here after checking the matrix, with its restriction, if any).
"""

from __future__ import annotations

from pathlib import Path

MIN_OPSET, MAX_OPSET = 9, 20  # TensorRT 10.0's parser range; 11.x keeps it

# op -> restriction checked below ("" = none that our graphs can violate)
SUPPORTED_OPS: dict[str, str] = {
    "Add": "", "Sub": "", "Mul": "", "Div": "", "Pow": "", "Sqrt": "", "Reciprocal": "",
    "Exp": "", "Log": "", "Abs": "", "Neg": "", "Floor": "", "Ceil": "", "Round": "",
    "Relu": "", "LeakyRelu": "", "PRelu": "", "Sigmoid": "", "Tanh": "", "Softplus": "",
    "Clip": "", "Min": "", "Max": "", "Where": "", "Equal": "", "Greater": "", "Less": "",
    "Cast": "", "Identity": "", "Constant": "",
    "Concat": "", "Split": "", "Slice": "", "Reshape": "", "Transpose": "", "Squeeze": "",
    "Unsqueeze": "", "Expand": "", "Flatten": "", "Shape": "", "Gather": "", "Range": "",
    "ConstantOfShape": "", "Tile": "", "Pad": "",
    "ReduceMean": "", "ReduceSum": "", "ReduceMax": "", "ReduceMin": "",
    "AveragePool": "", "MaxPool": "", "GlobalAveragePool": "", "Softmax": "", "LogSoftmax": "",
    "MatMul": "", "Gemm": "", "Erf": "", "BatchNormalization": "", "InstanceNormalization": "",
    "Conv": "weights are an initializer (or a DequantizeLinear of one)",
    "ConvTranspose": "weights are an initializer (or a DequantizeLinear of one)",
    "DepthToSpace": "", "SpaceToDepth": "",
    "Resize": "mode nearest/linear; coordinate_transformation_mode half_pixel, pytorch_half_pixel, "
              "tf_half_pixel_for_nn, asymmetric or align_corners",
    "GridSample": "2D input (rank 4); mode bilinear/linear, nearest or bicubic/cubic (TensorRT's GridSample "
                  "operator: NEAREST, LINEAR, CUBIC interpolation)",
    "QuantizeLinear": "zero point is 0 (symmetric)",
    "DequantizeLinear": "zero point is 0 (symmetric)",
}

_RESIZE_MODES = {"nearest", "linear"}
_RESIZE_COORDS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}


def _attr(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def check_model(model, name: str = "graph") -> list[str]:
    """Problems TensorRT's parser would have with this onnx.ModelProto (empty = parses)."""
    from onnx import numpy_helper

    problems: list[str] = []
    g = model.graph
    for imp in model.opset_import:  # other domains' imports are harmless until a node uses them
        if imp.domain in ("", "ai.onnx") and not MIN_OPSET <= imp.version <= MAX_OPSET:
            problems.append(f"{name}: opset {imp.version} outside TensorRT's {MIN_OPSET}..{MAX_OPSET}")
    inits = {i.name: i for i in g.initializer}
    producers = {out: n for n in g.node for out in n.output}
    for n in g.node:
        where = f"{name}: {n.op_type} node {n.name or n.output[0]!r}"
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: domain {n.domain!r} is not the ONNX standard domain (needs a plugin)")
            continue
        if n.op_type not in SUPPORTED_OPS:
            problems.append(f"{where}: operator not in the TensorRT ONNX support list")
            continue
        if n.op_type in ("Conv", "ConvTranspose"):
            w = n.input[1]
            src = producers.get(w)
            ok = w in inits or (src is not None and src.op_type == "DequantizeLinear" and src.input[0] in inits)
            if not ok:
                problems.append(f"{where}: weights {w!r} are computed, TensorRT needs an initializer")
        elif n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2]:
            zp = inits.get(n.input[2])
            if zp is None or numpy_helper.to_array(zp).any():
                problems.append(f"{where}: zero point must be a constant 0 (symmetric quantisation)")
        elif n.op_type == "Resize":
            mode = _attr(n, "mode", "nearest")
            coord = _attr(n, "coordinate_transformation_mode", "half_pixel")
            if mode not in _RESIZE_MODES or coord not in _RESIZE_COORDS:
                problems.append(f"{where}: mode={mode}, coordinate_transformation_mode={coord} unsupported")
        elif n.op_type == "GridSample":
            mode = _attr(n, "mode", "bilinear")
            if mode not in ("bilinear", "linear", "nearest", "bicubic", "cubic"):
                problems.append(f"{where}: mode={mode} unsupported")
    return problems


def check_file(path: Path) -> list[str]:
    import onnx

    return check_model(onnx.load(str(path), load_external_data=False), Path(path).name)


def check_bundle(bundle) -> list[str]:
    """Problems of every graph file (every precision) a ModelBundle lists."""
    problems: list[str] = []
    seen: set[Path] = set()
    for name, variants in sorted(bundle.manifest["graphs"].items()):
        for precision in variants:
            path = bundle.graph_path(name, precision)
            if path not in seen:
                seen.add(path)
                problems += check_file(path)
    return problems


def require_parsable(bundle) -> None:
    """InputError listing every problem, found in seconds rather than halfway through a build."""
    from zvc69_rt.errors import InputError

    problems = check_bundle(bundle)
    if problems:
        raise InputError("TensorRT's ONNX parser would refuse this bundle:\n  " + "\n  ".join(problems))
