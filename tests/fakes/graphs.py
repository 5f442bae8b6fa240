"""Tiny synthetic ONNX graphs with dynamic H/W, shaped like the bundle's graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from zvc69_rt.models.bundle import write_manifest


def conv_relu(cin: int = 3, cout: int = 4, k: int = 3, stride: int = 1, with_gain: bool = False,
              seed: int = 0, input_name: str = "x", output_name: str = "y") -> bytes:
    """x[batch, cin, height, width] -> Relu(Conv(x)) (* gain[1, cout, 1, 1]) ."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((cout, cin, k, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", [input_name, "w", "b"], ["c"], pads=[k // 2] * 4, strides=[stride] * 2),
             helper.make_node("Relu", ["c"], ["r" if with_gain else output_name])]
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", cin, "height", "width"])]
    if with_gain:
        nodes.append(helper.make_node("Mul", ["r", "gain"], [output_name]))
        inputs.append(helper.make_tensor_value_info("gain", TensorProto.FLOAT, [1, cout, 1, 1]))
    out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", cout, "oh", "ow"])
    graph = helper.make_graph(nodes, "g", inputs, [out], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_bundle(folder: Path, **graphs: bytes) -> Path:
    """A bundle-shaped folder: NAME.fp32.onnx files and a manifest with a hash."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, data in graphs.items():
        (folder / f"{name}.fp32.onnx").write_bytes(data)
        entries[name] = {"fp32": f"{name}.fp32.onnx"}
    np.savez(folder / "tables.npz", dummy=np.zeros(1))
    manifest = {"format": "zvc69-bundle/1", "graphs": entries, "alignment": 64, "tables": "tables.npz",
                "latent_channels": 4, "hyperprior_channels": 4, "levels": 8}
    write_manifest(folder, manifest)  # the real hash over the files
    return folder
