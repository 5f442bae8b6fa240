"""`zvc69 eval drift`: FP32-encoded P-frames decoded with FP16 graphs; symbols stay exact."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from tests.fakes.inter import pan, random_inter_bundle
from zvc69_rt.eval.drift import precision_drift


def test_fp16_decode_of_fp32_stream(tmp_path):
    bundle = random_inter_bundle(tmp_path / "b", ("fp32", "fp16"))
    res = precision_drift(pan(5), bundle, gop=8, quality=57)
    assert res["frames"] == 5 and [r["type"] for r in res["rows"]] == ["I", "P", "P", "P", "P"]
    assert res["all_symbols_identical"]
    # fp16 graphs do differ from fp32 ones: finite PSNR between the decodes, yet close
    assert all(r["psnr_drift"] > 30 for r in res["rows"])
    assert any(math.isfinite(r["psnr_drift"]) for r in res["rows"])


def test_same_precision_has_no_drift(tmp_path):
    bundle = random_inter_bundle(tmp_path / "b")
    res = precision_drift(pan(3), bundle, gop=8, quality=57, decode_precision="fp32")
    assert res["all_symbols_identical"] and all(math.isinf(r["psnr_drift"]) for r in res["rows"])


def test_video_codec_adapter_with_p_and_b_frames(tmp_path):
    from zvc69_rt.eval.zvc69_adapter import video_codec

    bundle = random_inter_bundle(tmp_path / "b")
    for bframes in (0, 2):
        codec = video_codec(gop=8, bframes=bframes, model=str(bundle.folder))
        frames = pan(5)
        bits, out = codec(frames, 4)
        assert bits > 0 and [f.pts for f in out] == [0, 1, 2, 3, 4]
        bits2, _ = codec(frames, 6)  # a second encoder reuses the loaded graphs
        assert bits2 != bits
