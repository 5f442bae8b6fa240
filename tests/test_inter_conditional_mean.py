"""The conditional residual mean (InterConfig.cond_mean): the residual's entropy mean sees the
prediction, so the decoder computes it after motion compensation. The symbols stay a
function of the payload alone; the reconstruction must still match the encoder's bit for
bit, for P- and B-frames, and every graph input must be known to the engine builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.profiles import input_shapes, onnx_inputs, parse_profile
from tests.fakes.inter import assert_closed_loop, pan, random_inter_bundle
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return random_inter_bundle(tmp_path_factory.mktemp("cmean") / "bundle", cond=8, cond_mean=True)


def test_manifest_and_graph_take_the_prediction(bundle):
    manifest = json.loads((bundle.folder / "manifest.json").read_text())
    assert manifest["inter"]["conditional_mean"] is True
    assert manifest["input_strides"]["residual_hyper_synthesis"] == {"z_hat": 32, "pred": 1}
    graph = bundle.folder / manifest["graphs"]["residual_hyper_synthesis"]["fp32"]
    names = [n for n, _ in onnx_inputs(graph.read_bytes())]
    assert names == ["z_hat", "pred", "gain"]
    shapes = input_shapes("residual_hyper_synthesis", onnx_inputs(graph.read_bytes()), parse_profile("1080p"),
                          bundle.alignment, manifest["input_strides"])
    assert shapes["z_hat"][2] == (1, 32, 1088 // 32, 1920 // 32)
    assert shapes["pred"][2] == (1, 3, 1088, 1920)
    assert shapes["gain"][0] == shapes["gain"][2] == (1, 64, 1, 1)


def _codec(bundle):
    enc = Encoder(EncoderConfig(width=128, height=72, gop=4, quality=60), bundle=bundle, adaptive_intra=False)
    return enc, enc.inter


def test_mean_depends_on_prediction_and_quality(bundle):
    _, pc = _codec(bundle)
    assert pc.conditional_mean
    z = np.random.default_rng(1).integers(-2, 3, (pc.Nz, 2, 2)).astype(np.int32)
    a, b = np.full((3, 64, 64), 0.3, np.float32), np.random.default_rng(2).random((3, 64, 64), dtype=np.float32)
    m_a, m_b = pc.residual_mean(z, a, 50), pc.residual_mean(z, b, 50)
    assert m_a.shape == (pc.M, 8, 8)
    assert not np.allclose(m_a, m_b)
    assert not np.allclose(m_b, pc.residual_mean(z, b, 90))  # the prediction term is in gained units


def _frames(shift: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    base = rng.random((3, 64, 192), dtype=np.float32)
    ref0, cur, ref1 = (np.roll(base, s, axis=2) for s in (0, shift, 2 * shift))
    cur = np.clip(cur + rng.normal(0, 0.05, cur.shape), 0, 1).astype(np.float32)  # a residual to code
    return ref0, cur, ref1


def _p_codec(bundle, **kw):
    from zvc69_rt.codec.inter import ENCODER_GRAPHS, PFrameCodec
    from zvc69_rt.codec.runtime import load_runners

    runners, _ = load_runners(bundle, "onnxruntime", "fp32", ENCODER_GRAPHS)
    return PFrameCodec(bundle, runners, skip="never", **kw)


@pytest.mark.parametrize("form", ["plain", "motion_aq", "half", "quarter", "searched_z"])
def test_p_residual_forms_decode_to_the_encoders_reconstruction(bundle, form):
    """Each way a P residual is coded (flags 1-4, and a searched hyper latent) reconstructs
    in the decoder exactly as in the encoder, with the mean taken from the decoder's own
    prediction (the half and quarter sizes from the reduced prediction, at their quality)."""
    pc = _p_codec(bundle)
    ref, cur, _ = _frames(6)
    a = pc.analyse(cur, ref, 60)
    assert a.y is not None
    if form == "plain":
        data, recon = pc.code_latents(a, 0)
    elif form == "motion_aq":
        data, recon = pc.code_latents(a, 4)
    elif form in ("half", "quarter"):
        data, recon = pc.code_half(a, 70, halvings=1 if form == "half" else 2)
    else:
        data, recon = pc.code_latents(pc._searched(a), 0)
    from zvc69_rt.codec.motion import encode_motion

    data = encode_motion(a.motion, pc.num_slices) + data
    parsed = pc.parse(data, (4, 12))
    assert parsed.residual_coded and parsed.z_hat is not None
    np.testing.assert_array_equal(pc.decompress(data, ref, (4, 12), 60), recon)


def test_b_frame_residual_decodes_to_the_encoders_reconstruction(bundle):
    from zvc69_rt.codec import bidir

    codec = bidir.BFrameCodec(_p_codec(bundle))
    ref0, cur, ref1 = _frames(4)
    data, recon = codec.code(codec.analyse(cur, ref0, ref1, 60))
    assert codec.parse(data, (4, 12)).residual.residual_coded
    np.testing.assert_array_equal(codec.decompress(data, ref0, ref1, (4, 12), 60), recon)


def test_stream_closed_loop_is_bit_exact(bundle):
    """Through Encoder/StreamWriter/StreamReader/Decoder: every decoded frame equals the
    encoder's reference after it."""
    enc = Encoder(EncoderConfig(width=128, height=72, gop=8, quality=60), bundle=bundle, adaptive_intra=False)
    enc.propagation = False
    types = assert_closed_loop(enc, pan(5), bundle)
    assert types == [0, 1, 1, 1, 1]
