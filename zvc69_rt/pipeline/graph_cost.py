"""FLOPs and bytes of an ONNX graph at a given resolution, from the graph itself.

Fix the dynamic input dims, run ONNX shape inference, then walk the nodes: Conv,
ConvTranspose, MatMul and Gemm count multiply-accumulates (1 MAC = 2 FLOPs); every
other node counts one op per output element (elementwise work). Bytes are a roofline
lower bound for a fused engine: weights read once + graph inputs read + graph outputs
written + every intermediate written once and read once (fusion can only remove some
of that traffic, so the estimate's memory time is an upper bound on what fusion saves).

The H100 figures below are estimates (datasheet peaks), not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# NVIDIA H100 datasheet: dense FP16/BF16 tensor throughput (no sparsity), HBM bandwidth.
H100 = {
    "sxm": {"fp16_tflops": 989.4, "int8_tops": 1978.9, "hbm_tbps": 3.35},
    "pcie": {"fp16_tflops": 756.0, "int8_tops": 1513.0, "hbm_tbps": 2.0},
}

_ONNX_BYTES = {1: 4, 10: 2, 11: 8, 16: 2, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1}


@dataclass(frozen=True)
class GraphCost:
    macs: int  # Conv / ConvTranspose / MatMul / Gemm
    other_ops: int  # one per output element of every other node
    weight_bytes: int
    activation_bytes: int  # graph I/O + every intermediate written and read (no fusion)
    fused_activation_bytes: int = 0  # graph I/O + only Conv/MatMul outputs (elementwise fused away)

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_ops

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes

    @property
    def fused_bytes(self) -> int:
        return self.weight_bytes + self.fused_activation_bytes

    def roofline_s(self, tflops: float, tbps: float, fused: bool = False) -> tuple[float, float]:
        """(compute-bound seconds, memory-bound seconds) at the given peaks."""
        return self.flops / (tflops * 1e12), (self.fused_bytes if fused else self.bytes) / (tbps * 1e12)


def _shape(vi) -> tuple[list[int], int]:
    t = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    return dims, _ONNX_BYTES.get(t.elem_type, 4)


def graph_cost(model, input_shapes: dict[str, tuple[int, ...]]):
    """Cost of one run with the given concrete input shapes. ``model``: ModelProto or bytes/path."""
    import onnx

    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    elif not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # do not touch the caller's
    inits = {i.name: i for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if vi.name not in input_shapes:
            raise ValueError(f"graph input {vi.name!r} needs a shape")
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != len(input_shapes[vi.name]):
            raise ValueError(f"graph input {vi.name!r} has rank {len(dims)}, got shape {input_shapes[vi.name]}")
        for d, v in zip(dims, input_shapes[vi.name], strict=True):
            d.Clear()
            d.dim_value = int(v)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    info = {vi.name: _shape(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.input)
            + list(inferred.graph.output)}
    for name, t in inits.items():
        info[name] = (list(t.dims), _ONNX_BYTES.get(t.data_type, 4))
    for node in inferred.graph.node:  # Constant nodes are weights too
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    info[node.output[0]] = (list(a.t.dims), _ONNX_BYTES.get(a.t.data_type, 4))

    def numel(name: str) -> int:
        dims, _ = info.get(name, ([], 4))
        if any(d < 0 for d in dims):
            raise ValueError(f"tensor {name!r} has unknown shape {dims} after inference")
        return int(np.prod(dims, dtype=np.int64)) if dims else 1

    def nbytes(name: str) -> int:
        return numel(name) * info.get(name, ([], 4))[1]

    macs = other = 0
    for node in inferred.graph.node:
        op = node.op_type
        if op == "Constant":
            continue
        out = node.output[0]
        if op in ("Conv", "ConvTranspose"):
            wdims, _ = info[node.input[1]]
            k = int(np.prod(wdims[2:], dtype=np.int64))
            if op == "Conv":  # W: [Cout, Cin/g, k...]: every output element sums Cin/g * k products
                macs += numel(out) * wdims[1] * k
            else:  # W: [Cin, Cout/g, k...]: every input element scatters into Cout/g * k outputs
                macs += numel(node.input[0]) * wdims[1] * k
        elif op in ("MatMul", "Gemm"):
            a_dims, _ = info[node.input[0]]
            kdim = a_dims[-1] if not (op == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute)) \
                else a_dims[-2]
            macs += numel(out) * kdim
        else:
            other += sum(numel(o) for o in node.output if o)
    weights = sum(nbytes(n) for n in inits) + sum(
        nbytes(n.output[0]) for n in inferred.graph.node if n.op_type == "Constant")
    io = sum(nbytes(v.name) for v in inferred.graph.input if v.name not in inits) + sum(
        nbytes(v.name) for v in inferred.graph.output)
    outputs = {v.name for v in inferred.graph.output}
    inter = sum(2 * nbytes(o) for n in inferred.graph.node if n.op_type != "Constant"
                for o in n.output if o and o not in outputs)
    heavy = sum(2 * nbytes(n.output[0]) for n in inferred.graph.node
                if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm") and n.output[0] not in outputs)
    return GraphCost(int(macs), int(other), int(weights), int(io + inter), int(io + heavy))


def bundle_costs(bundle, width: int, height: int, precision: str = "fp16",
                 graphs: tuple[str, ...] = ("analysis", "hyper_synthesis", "synthesis")) -> dict[str, GraphCost]:
    """Per-graph cost of encoding one intra frame of width x height with this bundle."""
    from zvc69_rt.engines.profiles import Profile, input_shapes, onnx_inputs

    prof = Profile(f"{width}x{height}", width, height)
    out = {}
    for g in graphs:
        path = bundle.graph_path(g, precision)
        data = path.read_bytes()
        shapes = input_shapes(g, onnx_inputs(data), prof, bundle.alignment, bundle.manifest.get("input_strides"))
        out[g] = graph_cost(data, {k: v[2] for k, v in shapes.items()})
    return out


def h100_estimate(costs: dict[str, GraphCost], variant: str = "sxm", utilisation: float = 0.35,
                  fused: bool = False) -> dict:
    """Roofline time per frame on an H100 (an estimate): per graph the larger of compute
    time at ``utilisation`` x FP16 dense peak and memory time at the HBM peak (unfused
    traffic by default; ``fused`` counts only Conv/MatMul outputs)."""
    peak = H100[variant]
    rows = {}
    total = 0.0
    for g, c in costs.items():
        tc, tm = c.roofline_s(peak["fp16_tflops"] * utilisation, peak["hbm_tbps"], fused)
        t = max(tc, tm)
        total += t
        rows[g] = {"gflops": c.flops / 1e9, "mbytes": c.bytes / 1e6, "compute_ms": 1e3 * tc,
                   "memory_ms": 1e3 * tm, "bound": "compute" if tc >= tm else "memory"}
    return {"variant": variant, "utilisation": utilisation, "fused": fused, "graphs": rows, "ms_per_frame": 1e3 * total,
            "fps": 1.0 / total if total else 0.0, "label": "estimate (datasheet peaks), not a measurement"}
