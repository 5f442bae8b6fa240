"""graph_cost: MACs and bytes counted from the ONNX graph at a given resolution."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.fakes.graphs import conv_relu
from zvc69_rt.pipeline.graph_cost import H100, GraphCost, graph_cost, h100_estimate


def test_conv_relu_counts_by_hand():
    c = graph_cost(conv_relu(cin=3, cout=4, k=3), {"x": (1, 3, 8, 8)})
    assert c.macs == 4 * 8 * 8 * 3 * 3 * 3  # every output element: Cin * k * k products
    assert c.other_ops == 4 * 8 * 8  # Relu
    assert c.weight_bytes == (4 * 3 * 3 * 3 + 4) * 4
    io = (3 * 64 + 4 * 64) * 4
    assert c.activation_bytes == io + 2 * 4 * 64 * 4  # conv output written then read by Relu
    s2 = graph_cost(conv_relu(cin=3, cout=4, k=3, stride=2), {"x": (1, 3, 16, 16)})
    assert s2.macs == 4 * 8 * 8 * 27  # stride 2: the output grid decides
    big = graph_cost(conv_relu(), {"x": (1, 3, 1088, 1920)})
    assert big.macs == 4 * 1088 * 1920 * 27


def test_conv_transpose_group_and_matmul():
    w = numpy_helper.from_array(np.zeros((8, 2, 4, 4), np.float32), "w")  # Cin=8, Cout/g=2, g=2
    m = numpy_helper.from_array(np.zeros((4, 5), np.float32), "m")
    g = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1], group=2),
         helper.make_node("MatMul", ["t", "m"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w, m])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    c = graph_cost(model, {"x": (1, 8, 2, 2)})  # ConvTranspose -> [1, 4, 4, 4]; MatMul [.., 4] x [4, 5]
    assert c.macs == 8 * 2 * 2 * (2 * 16) + (1 * 4 * 4 * 5) * 4
    with pytest.raises(ValueError, match="needs a shape"):
        graph_cost(model, {})
    with pytest.raises(ValueError, match="rank"):
        graph_cost(model, {"x": (8, 2, 2)})
    assert isinstance(onnx.load_from_string(model.SerializeToString()), onnx.ModelProto)


def test_h100_estimate_is_a_roofline():
    c = GraphCost(macs=500 * 10**9, other_ops=0, weight_bytes=0, activation_bytes=10**6)  # 1 TFLOP
    e = h100_estimate({"g": c}, "sxm", utilisation=1.0)
    assert e["graphs"]["g"]["bound"] == "compute"
    assert e["ms_per_frame"] == pytest.approx(1e3 / H100["sxm"]["fp16_tflops"])
    m = GraphCost(macs=1, other_ops=0, weight_bytes=0, activation_bytes=335 * 10**9)
    e = h100_estimate({"g": m}, "sxm")
    assert e["graphs"]["g"]["bound"] == "memory" and e["ms_per_frame"] == pytest.approx(100.0)
    assert "estimate" in e["label"]
