"""Every graph we ship (and the inter graphs we export) uses only operators TensorRT's ONNX
parser takes, within their restrictions; the checker catches what it would refuse, and
`zvc69 engines build` refuses such a bundle before touching TensorRT."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from zvc69_rt.engines.onnx_support import SUPPORTED_OPS, check_bundle, check_model

from tests.fakes.graphs import conv_relu, write_bundle
from zvc69_rt.cli import main
from zvc69_rt.models.bundle import DEFAULT_BUNDLE, ModelBundle


def _graph(nodes, inits=(), opset=17, inputs=("x",)):
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in inputs]
    out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", ins, [out], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def test_shipped_bundle_parses_in_every_precision():
    bundle = ModelBundle.load(DEFAULT_BUNDLE)
    assert check_bundle(bundle) == []
    ops = {n.op_type for name, variants in bundle.manifest["graphs"].items() for p in variants
           for n in onnx.load(str(bundle.graph_path(name, p))).graph.node}
    assert {"Conv", "DepthToSpace", "QuantizeLinear", "DequantizeLinear"} <= ops <= set(SUPPORTED_OPS)


def test_exported_inter_graphs_parse(tmp_path):
    torch = pytest.importorskip("torch")
    from onnx_export.export_inter import export_inter_bundle
    from onnx_export.inter_model import InterConfig, InterModel

    out = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, out)
    torch.manual_seed(0)
    model = InterModel(InterConfig(N=16, F=8)).eval()
    export_inter_bundle(model, out, ("fp32",), into=True, calib=(torch.rand(1, 3, 128, 128),) * 2)
    bundle = ModelBundle.load(out)
    assert check_bundle(bundle) == []
    ops = {n.op_type for name in bundle.manifest["graphs"]
           for n in onnx.load(str(bundle.graph_path(name, "fp32"))).graph.node}
    assert "GridSample" in ops  # motion compensation is checked too


def test_unknown_operator_and_custom_domain_are_reported():
    m = _graph([helper.make_node("NonZero", ["x"], ["y"])])
    assert "operator not in the TensorRT ONNX support list" in check_model(m)[0]
    m = _graph([helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft")])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "domain 'com.microsoft' is not the ONNX standard domain" in check_model(m)[0]


def test_opset_out_of_range():
    m = _graph([helper.make_node("Relu", ["x"], ["y"])], opset=21)
    assert check_model(m) == ["graph: opset 21 outside TensorRT's 9..20"]


def test_conv_weights_must_be_constant():
    m = _graph([helper.make_node("Conv", ["x", "w"], ["y"])], inputs=("x", "w"))
    assert "weights 'w' are computed" in check_model(m)[0]
    ok = _graph([helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["w"]),
                 helper.make_node("Conv", ["x", "w"], ["y"])],
                inits=[_init("wq", np.zeros((3, 3, 1, 1), np.int8)), _init("s", np.float32(0.1)),
                       _init("zp", np.int8(0))])
    assert check_model(ok) == []


def test_asymmetric_quantisation_is_reported():
    m = _graph([helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"])],
               inits=[_init("s", np.float32(0.1)), _init("zp", np.int8(3))])
    assert "zero point must be a constant 0" in check_model(m)[0]


def test_resize_and_gridsample_modes():
    cubic = _graph([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="cubic")],
                   inits=[_init("sc", np.array([1, 1, 2, 2], np.float32))])
    assert "mode=cubic" in check_model(cubic)[0]
    linear = _graph([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear",
                                      coordinate_transformation_mode="half_pixel")],
                    inits=[_init("sc", np.array([1, 1, 2, 2], np.float32))])
    assert check_model(linear) == []
    for mode in ("bilinear", "bicubic", "cubic", "nearest"):  # TensorRT's GridSample: LINEAR, CUBIC, NEAREST
        gs = _graph([helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode)], inputs=("x", "grid"))
        assert check_model(gs) == [], mode
    gs = _graph([helper.make_node("GridSample", ["x", "grid"], ["y"], mode="lanczos")], inputs=("x", "grid"))
    assert "mode=lanczos" in check_model(gs)[0]


def test_engines_build_refuses_a_bundle_trt_cannot_parse(tmp_path, capsys):
    bad = helper.make_model(
        helper.make_graph([helper.make_node("NonZero", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)]),
        opset_imports=[helper.make_opsetid("", 17)])
    b = write_bundle(tmp_path / "b", analysis=conv_relu(), synthesis=bad.SerializeToString())
    # refused before TensorRT is even imported: no doubles installed, no GPU needed
    assert main(["engines", "build", "--precision", "fp32", "--model", str(b), "--cache", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "TensorRT's ONNX parser would refuse this bundle" in err and "NonZero" in err
