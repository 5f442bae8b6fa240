"""`zvc69 engines build`: exit 2 with an install hint without TensorRT; with the doubles
it builds every graph of a bundle, then reuses them."""

from __future__ import annotations

import json
import sys

from tests.fakes import pycuda_fake, tensorrt_fake
from tests.fakes.graphs import conv_relu, write_bundle
from zvc69_rt.cli import main


def test_without_tensorrt_exits_2_saying_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["engines", "build", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert "TensorRT is not installed" in err and "zvc69-rt[gpu]" in err


def test_bad_profile_is_an_input_error(capsys):
    assert main(["engines", "build", "--profile", "huge"]) == 1
    assert "--profile 'huge'" in capsys.readouterr().err


def test_build_then_reuse(monkeypatch, tmp_path, capsys):
    pycuda_fake.install(monkeypatch)
    tensorrt_fake.install(monkeypatch)
    b = write_bundle(tmp_path / "b", analysis=conv_relu(), synthesis=conv_relu(cin=4, cout=3))
    args = ["engines", "build", "--precision", "fp32", "--profile", "256x128", "--cache", str(tmp_path / "c"),
            "--model", str(b), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["status"] for r in first["graphs"]] == ["built", "built"] and first["device_mib"] > 0
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["status"] for r in second["graphs"]] == ["cached", "cached"]
    assert main([*args[:2], "--precision", "int8", *args[4:]]) == 0
    third = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(r["status"] == "skipped (no int8 variant)" for r in third["graphs"])
