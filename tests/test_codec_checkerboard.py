"""Checkerboard context for I-frame latents: packing, context, tables, and the codec round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zvc69_rt import entropy
from zvc69_rt.bitstream import HeaderFlags, StreamReader
from zvc69_rt.codec import checkerboard
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.checkerboard import ACTIVITY_LEVELS, NUM_SCALE_INDEXES, CheckerboardContext
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.codec.intra import IntraCodec
from zvc69_rt.codec.runtime import load_runners
from zvc69_rt.entropy import zvcp
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError
from zvc69_rt.frame import Frame
from zvc69_rt.models.bundle import ModelBundle


@given(c=st.integers(1, 3), h2=st.integers(1, 6), w2=st.integers(1, 6), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_split_merge_round_trip_and_anchor_positions(c, h2, w2, seed):
    a = np.random.default_rng(seed).integers(-50, 50, (c, 2 * h2, 2 * w2)).astype(np.int32)
    anchors, others = checkerboard.split(a)
    assert anchors.shape == others.shape == (c, 2 * h2, w2)
    np.testing.assert_array_equal(checkerboard.merge(anchors, others), a)
    ii, jj = np.mgrid[0 : 2 * h2, 0 : 2 * w2]
    assert sorted(anchors.ravel()) == sorted(a[:, (ii + jj) % 2 == 0].ravel())


def test_anchor_context_by_hand():
    # one channel, 2x4 latent; anchors (row+col even) at (0,0) (0,2) (1,1) (1,3)
    anchors = np.array([[[3, -1], [20, 0]]], np.int32)  # rows: (0,0)=3 (0,2)=-1; (1,1)=20 (1,3)=0
    mean = np.full((1, 2, 4), 0.5, np.float32)
    activity, neighbours = checkerboard.anchor_context(anchors, mean)
    # non-anchors: (0,1): neighbours (0,0) (0,2) (1,1) -> |3|+|-1|+|20| = 24 -> capped at 15
    #              (0,3): (0,2) (1,3) -> 1;  (1,0): (0,0) (1,1) -> 23 -> 15;  (1,2): (1,1) (1,3) (0,2) -> 21 -> 15
    np.testing.assert_array_equal(activity, [[[ACTIVITY_LEVELS - 1, 1], [ACTIVITY_LEVELS - 1, ACTIVITY_LEVELS - 1]]])
    # mean y_hat of the neighbours inside the picture (symbol + 0.5)
    np.testing.assert_allclose(neighbours, [[[(3.5 - 0.5 + 20.5) / 3, (-0.5 + 0.5) / 2],
                                             [(3.5 + 20.5) / 2, (20.5 + 0.5 - 0.5) / 3]]])


def _identity_context(m, alpha=0.0):
    lut = np.broadcast_to(np.arange(NUM_SCALE_INDEXES, dtype=np.uint8)[None, :, None],
                          (m, NUM_SCALE_INDEXES, ACTIVITY_LEVELS)).copy()
    return {"ctx_lut": lut, "ctx_alpha": np.full(m, alpha, np.float32)}


def test_tables_are_validated():
    assert CheckerboardContext.from_tables({}, 4) is None
    good = _identity_context(4)
    assert CheckerboardContext.from_tables(good, 4) is not None
    for bad in ({**good, "ctx_lut": good["ctx_lut"][:, :, :8]},
                {**good, "ctx_lut": good["ctx_lut"].astype(np.int16)},
                {**good, "ctx_lut": np.full_like(good["ctx_lut"], NUM_SCALE_INDEXES)},
                {**good, "ctx_alpha": np.full(4, np.nan, np.float32)},
                {"ctx_lut": good["ctx_lut"]}):
        with pytest.raises(ZVC69FormatError, match="ctx_"):
            CheckerboardContext.from_tables(bad, 4)


@pytest.fixture(scope="module")
def bundle():
    b = ModelBundle.load()
    if not b.has_checkerboard:
        pytest.skip("the shipped bundle has no checkerboard tables")
    return b


@pytest.fixture(scope="module")
def runners(bundle):
    return load_runners(bundle, "onnxruntime")[0]


def _photo(h=128, w=192, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 11) * np.cos(yy / 7)
    return np.clip(np.stack([base, base * 0.8 + 0.1, 1 - base]) + rng.normal(0, 0.04, (3, h, w)), 0, 1).astype(
        np.float32)


@pytest.mark.parametrize("num_slices", [None, 2])
@pytest.mark.parametrize("quality", [0, 50, 100])
def test_parse_gives_back_what_the_encoder_quantised(bundle, runners, quality, num_slices):
    codec = IntraCodec(bundle, runners, num_slices=num_slices)
    assert codec.context is not None
    lat = codec.analyse(_photo(), quality)
    data, symbols, mean = codec.code(lat)
    q_sym, q_mean = codec.quantise(lat)
    np.testing.assert_array_equal(symbols, q_sym)
    np.testing.assert_array_equal(mean, q_mean)
    z_hat, p_sym, p_mean = codec.parse(data, lat.y.shape[1:])
    np.testing.assert_array_equal(z_hat, lat.z_hat)
    np.testing.assert_array_equal(p_sym, symbols)
    np.testing.assert_allclose(p_mean, mean, atol=1e-5)
    view = memoryview(data)
    if num_slices is None:  # a small picture, y one slice: z, anchors, non-anchors as one chain
        assert entropy.is_chain(view) and zvcp.parse_chain(view)[0] == 3
        assert entropy.payload_size(view) == len(data)
    else:  # sliced: three ZVCP payloads
        zlen = entropy.payload_size(view, 0)
        alen = entropy.payload_size(view, zlen)
        assert not entropy.is_chain(view)
        assert zlen + alen + entropy.payload_size(view, zlen + alen) == len(data)
    # the non-anchors' mean moved off the hyper mean where alpha != 0, the anchors' did not
    anchors_mean, others_mean = checkerboard.split(mean)
    hyper_a, hyper_n = checkerboard.split(lat.mean)
    np.testing.assert_array_equal(anchors_mean, hyper_a)
    assert np.abs(others_mean - hyper_n).max() > 1e-3


def test_identity_tables_code_the_plain_symbols(bundle, runners):
    """With the lookup the identity and alpha 0 the context changes nothing but the payload
    split: a check that the two passes put every symbol back where it belongs."""
    plain = IntraCodec(bundle, runners, checkerboard=False)
    ident = IntraCodec(bundle, runners)
    ident.context = CheckerboardContext.from_tables(_identity_context(bundle.latent_channels), bundle.latent_channels)
    lat = plain.analyse(_photo(), 40)
    _, sym_plain, mean_plain = plain.code(lat)
    data, sym_ctx, mean_ctx = ident.code(lat)
    np.testing.assert_array_equal(sym_ctx, sym_plain)
    np.testing.assert_array_equal(mean_ctx, mean_plain)
    np.testing.assert_array_equal(ident.parse(data, lat.y.shape[1:])[1], sym_plain)


def test_fitted_tables_save_bits(bundle, runners):
    """The point of the context: fewer y bits than the hyperprior alone on a picture the fit
    never saw (a held-out photo), at the qualities video I-frames use (measured: -3.7 % at
    quality 10, -4.7 % at 40; the second payload costs 32 bytes)."""
    from zvc69_rt.eval.datasets import eval_images

    photo = eval_images(max_size=512, names=["motorcycle_right"])[0][1]
    h, w = photo.shape[0] // 64 * 64, photo.shape[1] // 64 * 64
    x = photo[:h, :w].transpose(2, 0, 1).astype(np.float32) / 255
    plain = IntraCodec(bundle, runners, checkerboard=False, num_slices=1)
    ctx = IntraCodec(bundle, runners, num_slices=1)
    for q in (10, 40):
        lat = plain.analyse(x, q)
        assert len(ctx.code(lat)[0]) < 0.98 * len(plain.code(lat)[0])


@pytest.mark.parametrize("num_slices", [1, 2])  # a chain, three sliced payloads
def test_every_truncation_is_an_error(bundle, runners, num_slices):
    codec = IntraCodec(bundle, runners, num_slices=num_slices)
    lat = codec.analyse(_photo(64, 64), 30)
    data = codec.code(lat)[0]
    for cut in range(0, len(data), max(1, len(data) // 60)):
        with pytest.raises((EntropyDecodeError, ZVC69FormatError)):
            codec.parse(data[:cut], lat.y.shape[1:])
    with pytest.raises(EntropyDecodeError):
        codec.parse(data + b"\0", lat.y.shape[1:])


def _stream(bundle, frames):
    buf = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=96, height=64, gop=1, quality=30), bundle=bundle), frames, buf)
    return buf.getvalue()


def _frames(n=2):
    out = []
    for i in range(n):
        rgb = _photo(64, 96, seed=i)
        y = (rgb.mean(0) * 255).astype(np.uint8)
        ch, cw = Frame.chroma_shape(96, 64)
        out.append(Frame(y=y, u=np.full((ch, cw), 128, np.uint8), v=np.full((ch, cw), 120, np.uint8), pts=i))
    return out


def test_stream_flag_and_decoder_checks(bundle):
    data = _stream(bundle, _frames())
    r = StreamReader(io.BytesIO(data))
    assert int(r.header.flags) & HeaderFlags.CHECKERBOARD
    dec = Decoder(r.header, bundle=bundle)
    assert dec.intra.context is not None
    # the encoder's reconstruction is what the decoder outputs (closed loop)
    enc = Encoder(EncoderConfig(width=96, height=64, gop=1, quality=30), bundle=bundle)
    lat = enc.intra.analyse(enc.preprocess(_frames(1)[0]).x, 30)
    recon = enc.intra.synthesise(*enc.intra.quantise(lat), 30)
    data_one = enc.intra.code(lat)[0]
    np.testing.assert_array_equal(dec.intra.decompress(data_one, lat.y.shape[1:], 30), recon)
    # the same bundle still decodes a stream written without the context (flag clear)
    plain = Decoder(r.header.copy(flags=HeaderFlags(int(r.header.flags) & ~HeaderFlags.CHECKERBOARD)), bundle=bundle)
    assert plain.intra.context is None
    # GMM_ENTROPY is refused by name
    with pytest.raises(ZVC69FormatError, match="GMM_ENTROPY"):
        Decoder(r.header.copy(flags=HeaderFlags(int(r.header.flags) | HeaderFlags.GMM_ENTROPY)), bundle=bundle)


def test_flag_without_tables_is_refused(bundle, tmp_path):
    import json
    import shutil

    from zvc69_rt.models.bundle import write_manifest

    folder = tmp_path / "b"
    shutil.copytree(bundle.folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / manifest["tables"]) as npz:
        tables = {k: npz[k] for k in npz.files if not k.startswith("ctx_")}
    np.savez(folder / manifest["tables"], **tables)
    manifest.pop("hash")
    write_manifest(folder, manifest)
    stripped = ModelBundle.load(folder)
    assert not stripped.has_checkerboard
    hdr = Encoder(EncoderConfig(width=64, height=64, gop=1), bundle=stripped).file_header()
    assert not int(hdr.flags) & HeaderFlags.CHECKERBOARD
    with pytest.raises(ZVC69FormatError, match="CHECKERBOARD"):
        Decoder(hdr.copy(flags=HeaderFlags(int(hdr.flags) | HeaderFlags.CHECKERBOARD)), bundle=stripped)


@given(h2=st.integers(1, 5), w2=st.integers(1, 5), seed=st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_kernel_matches_the_numpy_definition(h2, w2, seed):
    """The numba pass the codec uses gives what anchor_context (the fit's numpy form) defines."""
    rng = np.random.default_rng(seed)
    m, h, w = 3, 2 * h2, 2 * w2
    anchors = rng.integers(-20, 20, (m, h, w2)).astype(np.int32)
    mean = rng.normal(0, 2, (m, h, w)).astype(np.float32)
    index = rng.integers(0, NUM_SCALE_INDEXES, (m, h, w)).astype(np.uint8)
    lut = rng.integers(0, NUM_SCALE_INDEXES, (m, NUM_SCALE_INDEXES, ACTIVITY_LEVELS)).astype(np.uint8)
    ctx = CheckerboardContext(lut, rng.uniform(-1, 1, m).astype(np.float32))
    got_mean, got_index = ctx.non_anchor_parameters(anchors, mean, index)
    activity, neighbours = checkerboard.anchor_context(anchors, mean)
    _, hyper_mean = checkerboard.split(mean)
    _, hyper_index = checkerboard.split(index)
    np.testing.assert_array_equal(got_index, lut[np.arange(m)[:, None, None], hyper_index, activity])
    np.testing.assert_allclose(got_mean, hyper_mean + ctx.alpha[:, None, None] * (neighbours - hyper_mean),
                               rtol=1e-5, atol=1e-5)


def test_kernel_refuses_mismatched_shapes():
    ctx = CheckerboardContext.from_tables(_identity_context(2), 2)
    with pytest.raises(ValueError, match="disagree"):
        ctx.non_anchor_parameters(np.zeros((2, 4, 3), np.int32), np.zeros((2, 4, 4), np.float32),
                                  np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="hyper scale index"):
        ctx.non_anchor_parameters(np.zeros((2, 4, 2), np.int32), np.zeros((2, 4, 4), np.float32),
                                  np.full((2, 4, 4), 64, np.uint8))


def test_fit_recovers_a_planted_context():
    """onnx_export.fit_checkerboard on synthetic latents whose non-anchors are wider where
    their anchor neighbours are active and lean toward their neighbours' mean: the fitted
    lookup must widen with activity and alpha must find the lean."""
    from onnx_export.fit_checkerboard import _non_anchor_context, _symbol_bits, fit
    from zvc69_rt.entropy.gaussian import SCALE_TABLE, gaussian_table

    rng = np.random.default_rng(0)
    m, h, w = 2, 16, 16
    rows = []
    for _ in range(60):
        anchors = rng.choice([0.0, 6.0], size=(m, h, w // 2)) * rng.standard_normal((m, h, w // 2))
        mean = np.zeros((m, h, w), np.float32)
        activity, neighbours = checkerboard.anchor_context(np.rint(anchors).astype(np.int32), mean)
        scale = np.where(activity >= 8, 4.0, 0.5)
        others = 0.5 * neighbours + scale * rng.standard_normal(neighbours.shape)
        y = checkerboard.merge(anchors.astype(np.float32), others.astype(np.float32))
        index = np.full((m, h, w), 20, np.uint8)  # one hyper index everywhere: only the context differs
        rows.append(_non_anchor_context(y, mean, index))
    lut, alpha = fit(rows, _symbol_bits(gaussian_table()), min_count=50)
    np.testing.assert_allclose(alpha, 0.5, atol=0.1)
    quiet, busy = SCALE_TABLE[lut[:, 20, 0]], SCALE_TABLE[lut[:, 20, ACTIVITY_LEVELS - 1]]
    assert np.all(quiet < 1.0) and np.all(busy > 2.5), (quiet, busy)


def test_extreme_decoded_symbols_stay_in_the_table():
    """A hostile payload can decode to any int32 (escapes): the activity saturates instead of
    overflowing, so the lookup never leaves the table (the kernel has no bounds checks)."""
    m = 2
    rng = np.random.default_rng(1)
    lut = rng.integers(0, NUM_SCALE_INDEXES, (m, NUM_SCALE_INDEXES, ACTIVITY_LEVELS)).astype(np.uint8)
    ctx = CheckerboardContext(lut, np.full(m, 0.5, np.float32))
    extremes = np.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max], np.int32)
    anchors = extremes[rng.integers(0, 2, (m, 4, 2))]
    mean, index = np.zeros((m, 4, 4), np.float32), np.full((m, 4, 4), 7, np.uint8)
    _, got = ctx.non_anchor_parameters(anchors, mean, index)
    np.testing.assert_array_equal(got, np.broadcast_to(lut[:, 7, ACTIVITY_LEVELS - 1][:, None, None], got.shape))
    np.testing.assert_array_equal(checkerboard.anchor_context(anchors, mean)[0], ACTIVITY_LEVELS - 1)
