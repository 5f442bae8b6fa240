"""Engine building and the engine cache, against the strict TensorRT/pycuda doubles:
key fields, reuse, rebuild of stale/foreign/corrupt plans, timing cache, profiles."""

from __future__ import annotations

import json

import pytest
from zvc69_rt.engines import EngineBuildError, EngineCache, GraphSpec, input_shapes, parse_profile
from zvc69_rt.engines.builder import build_plan

from tests.fakes import pycuda_fake, tensorrt_fake
from tests.fakes.graphs import conv_relu, write_bundle
from zvc69_rt.errors import InputError


@pytest.fixture
def trt(monkeypatch):
    pycuda_fake.install(monkeypatch)
    return tensorrt_fake.install(monkeypatch)


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "bundle", analysis=conv_relu(), synthesis=conv_relu(cin=4, cout=3, with_gain=True))


def make_cache(trt, d, gpu=("NVIDIA H100 80GB HBM3", "9.0")):
    return EngineCache(d, trt, gpu[0], gpu[1], workspace_bytes=1 << 28)


def test_profiles_parse_and_shapes():
    p = parse_profile("1080p")
    assert (p.width, p.height, p.padded(64)) == (1920, 1080, (1088, 1920))
    assert parse_profile("4K").name == "4k" and parse_profile("2560x1440").name == "2560x1440"
    for bad in ("8k", "1920*1080", "10x10", "0x0"):
        with pytest.raises(InputError, match="--profile"):
            parse_profile(bad)
    dims = [("y_hat", ["batch", 96, "height", "width"]), ("inv_gain", [1, 96, 1, 1])]
    s = input_shapes("synthesis", dims, p)
    assert s["y_hat"] == ((1, 96, 4, 4), (1, 96, 68, 120), (1, 96, 68, 120))  # 1088/16, 1920/16
    assert s["inv_gain"] == ((1, 96, 1, 1),) * 3
    h = input_shapes("hyper_synthesis", [("z_hat", ["batch", 64, "h", "w"])], p)
    assert h["z_hat"][2] == (1, 64, 17, 30)
    o = input_shapes("mystery", [("t", [1, 8, "h", "w"])], p, strides={"mystery": {"t": 4}})
    assert o["t"][2] == (1, 8, 272, 480)
    with pytest.raises(InputError, match="input_strides"):
        input_shapes("mystery", [("t", [1, 8, "h", "w"])], p)
    with pytest.raises(InputError, match="only batch and NCHW"):
        input_shapes("analysis", [("x", [1, "c", 8, 8])], p)


def test_build_reuse_and_key_fields(trt, bundle, tmp_path):
    cache = make_cache(trt, tmp_path / "cache")
    spec = GraphSpec.from_path(bundle / "analysis.fp32.onnx")
    manifest_hash = json.loads((bundle / "manifest.json").read_text())["hash"]
    assert (spec.name, spec.precision, spec.bundle_hash) == ("analysis", "fp32", manifest_hash)
    first = cache.get_or_build(spec, parse_profile("720p"))
    assert first.built and tensorrt_fake.STATS["builds"] == 1
    k = first.key
    assert (k.graph, k.precision, k.profile, k.trt_version, k.gpu_name, k.compute_capability) == (
        "analysis", "fp32", "720p", "10.13.0", "NVIDIA H100 80GB HBM3", "9.0")
    assert k.shapes["x"] == [[1, 3, 64, 64], [1, 3, 768, 1280], [1, 3, 768, 1280]]
    again = cache.get_or_build(spec, parse_profile("720p"))
    assert not again.built and again.plan == first.plan and tensorrt_fake.STATS["builds"] == 1
    meta = json.loads(first.plan_path.with_suffix(".json").read_text())
    assert meta["key"]["graph_sha256"] == k.graph_sha256 and meta["plan_bytes"] == len(first.plan)
    assert cache.timing_cache_path.is_file()
    # another profile is another engine, side by side
    other = cache.get_or_build(spec, parse_profile("1080p"))
    assert other.built and other.plan_path != first.plan_path and first.plan_path.is_file()


@pytest.mark.parametrize("change", ["trt_version", "gpu", "graph_bytes"])
def test_stale_or_foreign_engines_are_rebuilt_not_loaded(trt, bundle, tmp_path, monkeypatch, change):
    d = tmp_path / "cache"
    spec = GraphSpec.from_path(bundle / "analysis.fp32.onnx")
    old = make_cache(trt, d).get_or_build(spec, parse_profile("720p"))
    if change == "trt_version":
        trt = tensorrt_fake.install(monkeypatch, version="11.4.0")
        cache = make_cache(trt, d)
    elif change == "gpu":
        cache = make_cache(trt, d, gpu=("NVIDIA A100-SXM4-80GB", "8.0"))
    else:
        (bundle / "analysis.fp32.onnx").write_bytes(conv_relu(seed=7))
        cache = make_cache(trt, d)
    builds = tensorrt_fake.STATS["builds"]
    new = cache.get_or_build(GraphSpec.from_path(bundle / "analysis.fp32.onnx"), parse_profile("720p"))
    assert new.built and new.key != old.key and tensorrt_fake.STATS["builds"] == builds + 1
    assert not old.plan_path.exists()  # the stale plan is gone, not kept beside the new one


def test_foreign_plan_under_the_right_name_is_rebuilt(trt, bundle, tmp_path):
    """A plan copied in from another machine, sidecar edited to look right: the SHA check or
    the key check refuses it."""
    cache = make_cache(trt, tmp_path / "cache")
    spec = GraphSpec.from_path(bundle / "analysis.fp32.onnx")
    e = cache.get_or_build(spec, parse_profile("720p"))
    e.plan_path.write_bytes(e.plan[:-10])  # truncated
    r = cache.get_or_build(spec, parse_profile("720p"))
    assert r.built and "SHA-256" in r.rebuilt_reason
    meta_path = r.plan_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["key"]["gpu_name"] = "Some Other GPU"
    meta_path.write_text(json.dumps(meta))
    r2 = cache.get_or_build(spec, parse_profile("720p"))
    assert r2.built and "gpu_name" in r2.rebuilt_reason
    meta_path.write_text("{not json")
    assert cache.get_or_build(spec, parse_profile("720p")).rebuilt_reason == "sidecar is not valid JSON"


def test_timing_cache_is_reused_and_foreign_ones_ignored(trt, bundle, tmp_path):
    cache = make_cache(trt, tmp_path / "c")
    cache.get_or_build(GraphSpec.from_path(bundle / "analysis.fp32.onnx"), parse_profile("720p"))
    cache.get_or_build(GraphSpec.from_path(bundle / "synthesis.fp32.onnx"), parse_profile("720p"))
    data = json.loads(cache.timing_cache_path.read_bytes()[6:])
    assert data["n"] == 2  # the second build started from the first one's cache
    # a timing cache from another GPU/version is not merged (ignore_mismatch=False)
    foreign = b"FAKETC" + json.dumps({"h": {"trt": "10.0.0", "gpu": "x", "cc": "7.5"}, "n": 50}).encode()
    _, tc = build_plan(trt, conv_relu(), {"x": ((1, 3, 8, 8),) * 3}, foreign, 1 << 20)
    assert json.loads(tc[6:])["n"] == 1


def test_build_errors_are_reported(trt, tmp_path):
    with pytest.raises(EngineBuildError, match="could not parse"):
        build_plan(trt, b"not an onnx graph", {}, b"", 1 << 20)
    with pytest.raises(EngineBuildError, match="no optimization-profile shapes for input 'x'"):
        build_plan(trt, conv_relu(), {}, b"", 1 << 20)
    with pytest.raises(EngineBuildError, match="does not have"):
        build_plan(trt, conv_relu(), {"x": ((1, 3, 8, 8),) * 3, "ghost": ((1,),) * 3}, b"", 1 << 20)
    with pytest.raises(InputError, match="no such file"):
        GraphSpec.from_path(tmp_path / "missing.fp16.onnx")


def test_removed_tensorrt_apis_do_not_exist_in_the_double(trt):
    """The double is strict: code using removed 10.x/11.x APIs would fail in CI."""
    for name in ("BuilderFlag", "IInt8EntropyCalibrator2", "volume"):
        with pytest.raises(AttributeError):
            getattr(trt, name)
    cfg = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        cfg.int8_calibrator = object()
    with pytest.raises(AttributeError):
        cfg.set_flag(0)
