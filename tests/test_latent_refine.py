"""Encoder-side I-frame latent refinement (codec/latent_refine.py) with the shipped bundle's
synthesis_gradient graph: the steps lower the cost they follow, the encoder keeps a refined
latent only where the real cost (lambda*MSE + bits) drops, the stream stays an ordinary one,
and bundles without the graph encode as before."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from tests.clips import example_frames
from zvc69_rt.bitstream import StreamReader
from zvc69_rt.codec import latent_refine
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.errors import InputError
from zvc69_rt.models.bundle import DEFAULT_BUNDLE, ModelBundle, write_manifest

W, H = 320, 136  # padded to 320x192: a third of the rows are padding


@pytest.fixture(scope="module")
def frame():
    return example_frames(1)[0]


def _encoder(steps: int, **kw) -> Encoder:
    kw.setdefault("anneal_steps", 0)  # plain steps only (annealing: tests/test_latent_anneal.py)
    return Encoder(EncoderConfig(width=W, height=H, gop=1, quality=50, refine_steps=steps, **kw))


def test_shipped_bundle_has_the_graph_and_full_effort_uses_it():
    enc = _encoder(latent_refine.STEPS)
    assert enc.intra.gradient is not None and enc.refine_steps == latent_refine.STEPS
    assert _encoder(0).refine_steps == 0
    assert Encoder(EncoderConfig(width=W, height=H, gop=1, preset="realtime_1080p")).refine_steps == 0


@pytest.mark.parametrize("bad", [-1, latent_refine.STEPS * 100, True, 2.5])
def test_config_refuses_bad_step_counts(bad):
    with pytest.raises(InputError, match="refine_steps"):
        EncoderConfig(width=W, height=H, refine_steps=bad).validate()


def test_steps_lower_the_cost_they_follow_and_ignore_the_padding(frame):
    enc = _encoder(latent_refine.STEPS)
    x = enc._intra_picture(enc.preprocess(frame).x)
    lat = enc.intra.analyse(x, 50)
    weight = latent_refine.visible_weight(x.shape[1:], (H, W))
    assert weight.sum() == H * W and weight[..., H:, :].sum() == 0

    def cost(y):
        from zvc69_rt.entropy.gaussian import SCALE_TABLE

        _, ig = enc.intra.gain_vectors(50)
        mean, index = latent_refine.entropy_parameters(enc.intra, lat)  # the checkerboard's, as coded
        out = enc.intra.gradient.run({
            "y": y[None], "inv_gain": ig, "x": x[None], "weight": weight, "mean": mean[None],
            "scale": SCALE_TABLE[index.astype(np.intp)][None],
            "lag": np.array([enc.intra.lagrangian(50)], np.float32)})
        return float(out["distortion"][0]), float(out["bits"][0])

    refined = latent_refine.refine(enc.intra, x, lat, 50, weight)
    (d0, b0), (d1, b1) = cost(lat.y), cost(refined.y)
    assert d1 + b1 < 0.97 * (d0 + b0)
    assert refined.z_hat is lat.z_hat and not np.array_equal(refined.y, lat.y)
    # the padding does not steer the steps: any target there gives the same latent
    x2 = x.copy()
    x2[:, H:, :] = 1.0 - x2[:, H:, :]
    again = latent_refine.refine(enc.intra, x2, lat, 50, weight)
    np.testing.assert_array_equal(again.y, refined.y)


def test_encoder_keeps_the_refined_latent_where_it_costs_less(frame):
    refined, plain = _encoder(latent_refine.STEPS), _encoder(0)
    work = plain.preprocess(frame)
    a, b = refined.code_intra(work.x, 50), plain.code_intra(work.x, 50)
    assert a.cost < b.cost  # refinement pays on real footage at this quality
    assert a.data != b.data


def test_refined_stream_decodes_to_the_encoders_reconstruction(frame):
    frames = example_frames(2)
    # refined, then annealed (latent_refine.anneal) where that is cheaper
    enc = Encoder(EncoderConfig(width=W, height=H, gop=1, quality=60, refine_steps=5, anneal_steps=10))
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    reader = StreamReader(io.BytesIO(buf.getvalue()))
    dec = Decoder(reader.header)
    for f, (fh, data) in zip(frames, reader.iter_frames(), strict=True):
        rgb = dec.decode_rgb(fh, data)
        again = enc.code_intra(enc.preprocess(f).x, fh.quality_level)
        assert again.data == data  # deterministic
        np.testing.assert_array_equal(rgb, again.recon)


def test_bundle_without_the_graph_encodes_as_before(tmp_path, frame):
    folder = tmp_path / "no_gradient"
    shutil.copytree(DEFAULT_BUNDLE, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["graphs"][latent_refine.GRAPH]
    (folder / "synthesis_gradient.fp32.onnx").unlink()
    manifest.pop("hash")
    write_manifest(folder, manifest)
    bundle = ModelBundle.load(folder)
    enc = Encoder(EncoderConfig(width=W, height=H, gop=1, quality=50), bundle=bundle)
    assert enc.intra.gradient is None and enc.refine_steps == 0 and enc.anneal_steps == 0
    plain = _encoder(0)
    x = plain.preprocess(frame).x
    assert enc.code_intra(x, 50).data == plain.code_intra(x, 50).data


def test_engine_profiles_know_the_gradient_graph():
    """`zvc69 engines build` shapes every graph of the bundle: the gradient graph's latents
    are at 1/16 of the picture, its picture and weights at full size."""
    from engines.profiles import input_shapes, onnx_inputs, parse_profile

    bundle = ModelBundle.load()
    data = bundle.graph_path(latent_refine.GRAPH, "fp32").read_bytes()
    shapes = input_shapes(latent_refine.GRAPH, onnx_inputs(data), parse_profile("1080p"), bundle.alignment,
                          bundle.manifest.get("input_strides"))
    m = bundle.latent_channels
    assert shapes["y"][2] == shapes["mean"][2] == shapes["scale"][2] == (1, m, 1088 // 16, 1920 // 16)
    assert shapes["x"][2] == (1, 3, 1088, 1920) and shapes["weight"][2] == (1, 1, 1088, 1920)
    assert shapes["lag"] == ((1,), (1,), (1,))
