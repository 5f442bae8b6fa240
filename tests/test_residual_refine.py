"""Encoder-side refinement of P residual latents (codec/latent_refine.refine_residual, the
bundle's residual_synthesis_gradient graph): the steps lower the cost they follow, the
encoder keeps a refined coding only where the real cost drops, refined streams decode
bit-exactly to the encoder's reconstruction, and the graph loads only where it is used."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.fakes.inter import assert_closed_loop, pan, random_inter_bundle
from zvc69_rt.codec import latent_refine
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder, encoder_graphs
from zvc69_rt.codec.inter import ENCODER_GRAPHS, PFrameCodec
from zvc69_rt.codec.runtime import load_runners
from zvc69_rt.entropy.gaussian import SCALE_TABLE
from zvc69_rt.errors import InputError


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return random_inter_bundle(tmp_path_factory.mktemp("rrefine") / "bundle", cond=6, gradient=True)


def _frames(seed: int = 1):
    rng = np.random.default_rng(seed)
    base = rng.random((3, 64, 192), dtype=np.float32)
    cur = np.clip(np.roll(base, 6, axis=2) + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)
    return base, cur


def _p_codec(bundle, steps: int, **kw) -> PFrameCodec:
    runners, _ = load_runners(bundle, "onnxruntime", "fp32", (*ENCODER_GRAPHS, latent_refine.RESIDUAL_GRAPH))
    return PFrameCodec(bundle, runners, skip="never", refine_steps=steps, **kw)


def _proxy_cost(pc: PFrameCodec, a, y: np.ndarray, weight: np.ndarray) -> float:
    _, ig = pc.gain_vectors(a.quality)
    out = pc.gradient.run({"y": y[None], "inv_gain": ig, "pred": a.pred[None], "x": a.cur[None], "weight": weight,
                           "mean": a.mean[None], "scale": SCALE_TABLE[pc.scale_head(a.z_hat).astype(np.intp)][None],
                           "lag": np.array([pc.lagrangian(a.quality)], np.float32)})
    return float(out["distortion"][0] + out["bits"][0])


def test_steps_lower_the_cost_they_follow_and_ignore_the_padding(bundle):
    pc = _p_codec(bundle, 10)
    ref, cur = _frames()
    a = pc.analyse(cur, ref, 60)
    weight = latent_refine.visible_weight(cur.shape[1:], (48, 192))
    refined = latent_refine.refine_residual(pc, a, weight, 10)
    assert refined is not a and not np.array_equal(refined.y, a.y)
    assert np.array_equal(refined.z_hat, a.z_hat) and refined.scale_index is not None
    assert _proxy_cost(pc, a, refined.y, weight) < 0.99 * _proxy_cost(pc, a, a.y, weight)
    # changing the rows the weight drops moves nothing
    other = a.__class__(**{**a.__dict__, "cur": np.where(np.arange(64)[None, :, None] >= 48, 0.0, a.cur)})
    np.testing.assert_allclose(latent_refine.refine_residual(pc, other, weight, 10).y, refined.y, atol=1e-5)
    assert latent_refine.refine_residual(pc, a, weight, 0) is a


def test_without_the_graph_nothing_is_refined(bundle):
    runners, _ = load_runners(bundle, "onnxruntime", "fp32", ENCODER_GRAPHS)
    pc = PFrameCodec(bundle, runners, refine_steps=20)
    assert pc.gradient is None and pc.refine_steps == 0


def test_encoder_keeps_the_refined_coding_only_where_cheaper(bundle):
    ref, cur = _frames(2)
    plain, refined = _p_codec(bundle, 0, rd_candidates=2), _p_codec(bundle, 10, rd_candidates=2)
    d0, r0 = plain.encode(cur, ref, 60)
    d1, r1 = refined.encode(cur, ref, 60)
    assert refined.rd_cost(cur, d1, r1, 60) <= plain.rd_cost(cur, d0, r0, 60)
    assert d1 != d0  # this frame's refinement pays off: the coding changed
    np.testing.assert_array_equal(refined.decompress(d1, ref, (4, 12), 60), r1)


def test_reduced_sizes_refine_toward_the_frames_cost(bundle, monkeypatch):
    """A half/quarter-size residual is refined at the frame's lambda, its error counted once
    per full-size pixel it covers."""
    pc = _p_codec(bundle, 3)
    ref, cur = _frames(3)
    a = pc.analyse(cur, ref, 40)
    seen = []
    real = latent_refine.refine_residual

    def spy(codec, b, weight, steps, step_size, lag=None):
        seen.append((b.cur.shape, lag, float(weight.sum())))
        return real(codec, b, weight, steps, step_size, lag)

    monkeypatch.setattr(latent_refine, "refine_residual", spy)
    for halvings in (1, 2):
        data, recon = pc.code_half(a, 60, halvings=halvings, refine=True)
        np.testing.assert_array_equal(pc.decompress(_motion(pc, a) + data, ref, (4, 12), 40), recon)
    k = latent_refine.RESIDUAL_DISTORTION_WEIGHT
    assert [s[1] for s in seen] == [pytest.approx(pc.lagrangian(40) * 4 * k), pytest.approx(pc.lagrangian(40) * 16 * k)]
    assert [s[0] for s in seen] == [(3, 64, 128), (3, 64, 64)]  # reduced pictures are padded to 64


def _motion(pc, a) -> bytes:
    from zvc69_rt.codec.motion import encode_motion

    return encode_motion(a.motion, pc.num_slices)


def test_stream_closed_loop_is_bit_exact(bundle):
    enc = Encoder(EncoderConfig(width=128, height=72, gop=8, quality=60, refine_steps=0, p_refine_steps=5),
                  bundle=bundle, adaptive_intra=False)
    assert enc.inter.refine_steps == 5
    assert assert_closed_loop(enc, pan(4), bundle) == [0, 1, 1, 1]


def test_graph_loads_only_where_used(bundle):
    def graphs(**kw):
        return encoder_graphs(EncoderConfig(width=128, height=72, **kw), bundle)

    assert latent_refine.RESIDUAL_GRAPH in graphs(gop=8, p_refine_steps=4)
    assert latent_refine.RESIDUAL_GRAPH not in graphs(gop=8, p_refine_steps=0)
    assert latent_refine.RESIDUAL_GRAPH not in graphs(gop=1, p_refine_steps=4)
    assert latent_refine.RESIDUAL_GRAPH not in graphs(gop=8, p_refine_steps=4, preset="realtime_1080p")
    rt = Encoder(EncoderConfig(width=128, height=72, gop=8, p_refine_steps=4, preset="realtime_1080p"), bundle=bundle)
    assert rt.inter.refine_steps == 0


def test_asking_for_steps_without_the_graph_warns(tmp_path):
    plain = random_inter_bundle(tmp_path / "plain")  # a P model exported without the gradient graph
    assert latent_refine.RESIDUAL_GRAPH not in plain.manifest["graphs"]
    with pytest.warns(UserWarning, match="residual_synthesis_gradient"):
        enc = Encoder(EncoderConfig(width=128, height=72, gop=8, p_refine_steps=4), bundle=plain)
    assert enc.inter.refine_steps == 0


@pytest.mark.parametrize("bad", [-1, 10_000, True, 1.5])
def test_config_refuses_bad_step_counts(bad):
    with pytest.raises(InputError, match="p_refine_steps"):
        EncoderConfig(width=128, height=72, p_refine_steps=bad).validate()
