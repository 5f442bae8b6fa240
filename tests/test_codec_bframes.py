"""B-frames: GOP structure and coding order, display-order decoding with the right pts,
bit-exact B reconstruction, pipelined == sequential bytes, and strict parsing."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.fakes.inter import pan as _pan
from tests.fakes.inter import random_inter_bundle
from zvc69_rt.bitstream import FrameHeader, StreamReader
from zvc69_rt.bitstream.header import HeaderFlags
from zvc69_rt.codec import bidir
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return random_inter_bundle(tmp_path_factory.mktemp("bframes") / "bundle")


def _encode(bundle, frames, **cfg):
    enc = Encoder(EncoderConfig(width=128, height=72, quality=60, **cfg), bundle=bundle)
    buf = io.BytesIO()
    pkts = encode_to_stream(enc, frames, buf)
    return enc, pkts, buf.getvalue()


def _decode(bundle, stream):
    reader = StreamReader(io.BytesIO(stream))
    dec = Decoder(reader.header, bundle=bundle)
    out = []
    for fh, data in [*reader.iter_frames(), (None, None)]:
        dec.send_packet(fh, data)
        while (f := dec.receive_frame()) is not None:
            out.append(f)
    return reader, out


def test_coding_order_types_and_display_order(bundle):
    frames = _pan(11)
    _, pkts, stream = _encode(bundle, frames, gop=8, bframes=2, b_pyramid=False)
    # anchors at GOP positions 0, 3, 6 and the GOP's last (7); the stream's last frame (10) is
    # made a P anchor at flush
    assert [p.pts for p in pkts] == [0, 3, 1, 2, 6, 4, 5, 7, 8, 10, 9]
    assert [p.frame_type for p in pkts] == [0, 1, 2, 2, 1, 2, 2, 1, 0, 1, 2]
    reader, out = _decode(bundle, stream)
    assert reader.header.flags & HeaderFlags.HAS_B_FRAMES
    assert [f.pts for f in out] == list(range(11))
    assert [e.frame_number for e in reader.keyframes()] == [0, 8]
    # (the inter model here is random: B pictures are checked bit-exactly below, not for quality)


def test_b_reconstruction_is_bit_exact(bundle):
    from zvc69_rt.codec.inter import ENCODER_GRAPHS, PFrameCodec
    from zvc69_rt.codec.runtime import load_runners

    runners, _ = load_runners(bundle, "onnxruntime", "fp32", ENCODER_GRAPHS)
    codec = bidir.BFrameCodec(PFrameCodec(bundle, runners, skip="never"))
    rng = np.random.default_rng(1)
    base = rng.random((3, 64, 192), dtype=np.float32)
    ref0, cur, ref1 = (np.roll(base, s, axis=2) for s in (0, 2, 4))
    data, recon = codec.code(codec.analyse(cur, ref0, ref1, 60))
    np.testing.assert_array_equal(codec.decompress(data, ref0, ref1, (4, 12), 60), recon)
    with pytest.raises((ZVC69FormatError, EntropyDecodeError)):
        codec.decompress(data[:-3], ref0, ref1, (4, 12), 60)


def test_b_frames_try_the_bicubic_warp_and_keep_the_cheaper(bundle, monkeypatch):
    """At full effort the chosen fields are coded a second time with the bicubic warp (each
    moving direction flagged); encode keeps the cheaper lambda*MSE + bits, and either
    coding decodes to the encoder's reconstruction. One RD candidate: no second coding."""
    from zvc69_rt.codec.inter import ENCODER_GRAPHS, PFrameCodec
    from zvc69_rt.codec.runtime import load_runners

    runners, _ = load_runners(bundle, "onnxruntime", "fp32", ENCODER_GRAPHS)
    codec = bidir.BFrameCodec(PFrameCodec(bundle, runners, skip="never"))
    assert codec.p.rd_candidates > 1
    rng = np.random.default_rng(1)
    base = rng.random((3, 64, 192), dtype=np.float32)
    ref0, cur, ref1 = (np.roll(base, s, axis=2) for s in (0, 2, 4))
    codings = []
    real_code = bidir.BFrameCodec.code

    def spy(self, a):
        data, recon = real_code(self, a)
        codings.append((a, data, recon))
        return data, recon

    monkeypatch.setattr(bidir.BFrameCodec, "code", spy)
    data, recon = codec.encode(cur, ref0, ref1, 60)
    assert len(codings) == 2
    (plain, d0, r0), (sharp, d1, r1) = codings
    assert not plain.forward.cubic and not plain.backward.cubic
    for before, after in ((plain.forward, sharp.forward), (plain.backward, sharp.backward)):
        assert after.cubic == (not before.is_zero)
        np.testing.assert_array_equal(after.vectors, before.vectors)
    assert sharp.forward.cubic or sharp.backward.cubic
    lam = codec.p.lagrangian(60)

    def cost(d, r):
        return lam * codec.p.distortion(cur, r) + 8 * len(d) / cur[0].size

    assert (data, recon) == ((d1, r1) if cost(d1, r1) < cost(d0, r0) else (d0, r0))
    for d, r in ((d0, r0), (d1, r1)):
        np.testing.assert_array_equal(codec.decompress(d, ref0, ref1, (4, 12), 60), r)

    codings.clear()
    fast = bidir.BFrameCodec(PFrameCodec(bundle, runners, skip="never", rd_candidates=1))
    fast.encode(cur, ref0, ref1, 60)
    assert len(codings) == 1 and not codings[0][0].forward.cubic


def test_b_frame_with_motion_aq_is_bit_exact(bundle, monkeypatch):
    """A B-frame's residual quantised by the forward field's motion (flag 2): the decoder
    takes the steps from the same decoded forward motion."""
    from zvc69_rt.codec.inter import ENCODER_GRAPHS, PFrameCodec
    from zvc69_rt.codec.runtime import load_runners

    runners, _ = load_runners(bundle, "onnxruntime", "fp32", ENCODER_GRAPHS)
    codec = bidir.BFrameCodec(PFrameCodec(bundle, runners, skip="never"))
    monkeypatch.setattr(PFrameCodec, "code_residual", lambda self, a: self.code_latents(a, 4))
    rng = np.random.default_rng(2)
    base = rng.random((3, 64, 192), dtype=np.float32)
    ref0, cur, ref1 = (np.roll(base, s, axis=2) for s in (0, 12, 24))
    cur = np.clip(cur + rng.normal(0, 0.05, cur.shape), 0, 1).astype(np.float32)  # a residual to code
    data, recon = codec.code(codec.analyse(cur, ref0, ref1, 60))
    parsed = codec.parse(data, (4, 12))
    assert parsed.residual.step is not None
    np.testing.assert_array_equal(codec.decompress(data, ref0, ref1, (4, 12), 60), recon)


def test_sequential_equals_pipelined(bundle):
    from zvc69_rt.pipeline import PipelineConfig, PipelinedEncoder

    frames = _pan(9)
    _, seq, _ = _encode(bundle, frames, gop=16, bframes=3, b_pyramid=False)
    pipe = PipelinedEncoder(Encoder(EncoderConfig(width=128, height=72, quality=60, gop=16, bframes=3, b_pyramid=False),
                                    bundle=bundle), PipelineConfig(queue_depth=3, num_workers=2))
    par = []
    for f in frames:
        pipe.submit(f)
        while (p := pipe.try_recv()) is not None:
            par.append(p)
    par += pipe.flush(timeout=120)
    assert [(p.pts, p.frame_type, p.data) for p in par] == [(p.pts, p.frame_type, p.data) for p in seq]


def test_static_scene_b_frames_average_and_cost_little(bundle):
    still = _pan(1) * 5
    still = [type(f)(y=f.y, u=f.u, v=f.v, pts=i) for i, f in enumerate(still)]
    _, pkts, _ = _encode(bundle, still, gop=5, bframes=3, b_pyramid=False)
    sizes = {p.pts: (p.frame_type, len(p.data)) for p in pkts}
    i_size = sizes[0][1]
    for pts in (1, 2, 3):
        assert sizes[pts][0] == 2 and sizes[pts][1] < 0.05 * i_size


def test_decoder_refuses_b_frames_it_cannot_predict(bundle):
    frames = _pan(4)
    _, _, stream = _encode(bundle, frames, gop=4, bframes=2, b_pyramid=False)
    reader = StreamReader(io.BytesIO(stream))
    records = list(reader.iter_frames())
    assert [fh.frame_type for fh, _ in records] == [0, 1, 2, 2]
    dec = Decoder(reader.header, bundle=bundle)
    dec.decode_rgb(*records[0])
    with pytest.raises(ZVC69FormatError, match="without references decoded before it on both sides"):
        dec.decode_rgb(*records[2])  # B before its future anchor
    # a header without HAS_B_FRAMES cannot carry B-frames
    from dataclasses import replace

    hdr = replace(reader.header, flags=HeaderFlags(int(reader.header.flags) & ~HeaderFlags.HAS_B_FRAMES))
    dec = Decoder(hdr, bundle=bundle)
    dec.decode_rgb(*records[0])
    dec.decode_rgb(*records[1])
    with pytest.raises(ZVC69FormatError, match="no HAS_B_FRAMES"):
        dec.decode_rgb(*records[2])


def test_blend_map_roundtrip_and_corruption():
    rng = np.random.default_rng(0)
    modes = rng.choice([-1, 0, 0, 0, 1], size=(1, 6, 10)).astype(np.int32)
    data = bidir.encode_modes(modes)
    got, used = bidir.decode_modes(memoryview(data), 0, modes.shape, "B")
    np.testing.assert_array_equal(got, modes)
    assert used == len(data)
    assert bidir.encode_modes(np.zeros((1, 6, 10), np.int32)) == bytes((bidir.ALL_AVERAGE,))
    with pytest.raises(ZVC69FormatError, match="blend row 64"):
        bidir.decode_modes(memoryview(bytes((64,)) + data[1:]), 0, modes.shape, "B")
    # a map whose symbols leave -1..1 (valid payload, wrong values) is a format error
    twos = bidir.encode_modes(np.full((1, 6, 10), 2, np.int32))
    with pytest.raises(ZVC69FormatError, match="outside -1..1"):
        bidir.decode_modes(memoryview(twos), 0, (1, 6, 10), "B")


def test_frame_header_type_b_roundtrips():
    fh = FrameHeader(frame_type=2, quality_level=50, frame_size=1, latent_height=2, latent_width=2, pts=5)
    assert FrameHeader.unpack(fh.pack()).frame_type == 2


@pytest.mark.parametrize("args, coding_order", [(["--bframes", "2", "--no-b-pyramid"], [0, 3, 1, 2, 6, 4, 5]),
                                                (["--bframes", "3"], [0, 4, 2, 1, 3, 6, 5])])
def test_cli_roundtrip_returns_every_frame_in_display_order(bundle, tmp_path, args, coding_order):
    from zvc69_rt.cli import main
    from zvc69_rt.io.y4m import Y4MReader, Y4MWriter

    frames = _pan(7)
    src = tmp_path / "in.y4m"
    with open(src, "wb") as fh:
        w = Y4MWriter(fh, 128, 72, 25, 1)
        for f in frames:
            w.write(f)
    folder = str(bundle.folder)
    assert main(["encode", str(src), "-o", str(tmp_path / "o.zvc"), "--model", folder, "--gop", "8",
                 *args, "--psnr", "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "o.zvc"), "-o", str(tmp_path / "o.y4m"), "--model", folder,
                 "--quiet"]) == 0
    with open(tmp_path / "o.y4m", "rb") as fh:
        out = list(Y4MReader(fh))
    assert len(out) == 7
    with open(tmp_path / "o.zvc", "rb") as fz:
        assert [fh.pts for fh, _ in StreamReader(fz).iter_frames()] == coding_order


@pytest.mark.parametrize("preset", ["low_latency", "high_throughput"])
def test_cli_preset_runs_the_pipeline_with_the_sequential_bytes(bundle, tmp_path, preset):
    from zvc69_rt.cli import main
    from zvc69_rt.io.y4m import Y4MWriter

    frames = _pan(6)
    src = tmp_path / "in.y4m"
    with open(src, "wb") as fh:
        w = Y4MWriter(fh, 128, 72, 25, 1)
        for f in frames:
            w.write(f)
    out = tmp_path / "o.zvc"
    assert main(["encode", str(src), "-o", str(out), "--model", str(bundle.folder), "--gop", "6",
                 "--bframes", "1", "--preset", preset, "--quality", "60", "--quiet"]) == 0
    enc = Encoder(EncoderConfig(width=128, height=72, fps_num=25, quality=60, gop=6, bframes=1, preset=preset,
                                model=str(bundle.folder)), bundle=bundle)
    assert enc.inter.rd_candidates == (1 if preset == "low_latency" else 3)
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    assert out.read_bytes() == buf.getvalue()


# -- B pyramid (BBi reference B-frames) ---------------------------------------------------------
def test_pyramid_coding_order_references_and_bit_exact_decode(bundle, monkeypatch):
    """bframes 3: I0 P4 BBi2 B1 B3 (B1 and B3 predict from BBi2); every B/BBi picture the
    decoder makes equals the encoder's closed-loop reconstruction, in display order."""
    frames = _pan(9)
    recons = []  # in coding order, which is the stream's order (two B-frames may share bytes)
    real_encode = bidir.BFrameCodec.encode

    def spy(self, *args):
        data, recon = real_encode(self, *args)
        recons.append((data, recon))
        return data, recon

    monkeypatch.setattr(bidir.BFrameCodec, "encode", spy)
    _, pkts, stream = _encode(bundle, frames, gop=8, bframes=3, b_pyramid=True, b_quality_offset=5)
    assert [p.pts for p in pkts] == [0, 4, 2, 1, 3, 7, 6, 5, 8]
    assert [p.frame_type for p in pkts] == [0, 1, 3, 2, 2, 1, 3, 2, 0]
    # I at 60, P and BBi 16 below (p_quality_offset), non-reference B 5 below those
    assert [p.quality for p in pkts] == [60, 44, 44, 39, 39, 44, 44, 39, 60]
    reader = StreamReader(io.BytesIO(stream))
    dec = Decoder(reader.header, bundle=bundle)
    coded = iter(recons)
    for fh, data in reader.iter_frames():
        rgb = dec.decode_rgb(fh, data)
        if fh.frame_type in (2, 3):
            want_data, want = next(coded)
            assert bytes(data) == want_data
            np.testing.assert_array_equal(rgb, want, err_msg=f"pts {fh.pts}")
    assert next(coded, None) is None
    _, out = _decode(bundle, stream)
    assert [f.pts for f in out] == list(range(9))


def test_pyramid_at_the_stream_end_and_pipelined(bundle):
    from zvc69_rt.pipeline import PipelineConfig, PipelinedEncoder

    frames = _pan(8)  # 5, 6, 7 still wait at the end: flush makes 7 a P anchor, 6 a BBi, 5 a B
    cfg = {"gop": 16, "bframes": 3, "b_pyramid": True}
    _, seq, stream = _encode(bundle, frames, **cfg)
    assert [(p.pts, p.frame_type) for p in seq] == [(0, 0), (4, 1), (2, 3), (1, 2), (3, 2), (7, 1), (6, 3), (5, 2)]
    _, out = _decode(bundle, stream)
    assert [f.pts for f in out] == list(range(8))
    pipe = PipelinedEncoder(Encoder(EncoderConfig(width=128, height=72, quality=60, **cfg), bundle=bundle),
                            PipelineConfig(queue_depth=3, num_workers=2))
    for f in frames:
        pipe.submit(f)
    par = pipe.flush(timeout=120)
    assert [(p.pts, p.frame_type, p.data) for p in par] == [(p.pts, p.frame_type, p.data) for p in seq]


def test_decoder_bounds_bbi_references_and_refuses_ambiguous_pts(bundle):
    from dataclasses import replace

    from zvc69_rt.codec.decoder import MAX_REFERENCES

    _, _, stream = _encode(bundle, _pan(5), gop=8, bframes=3, b_pyramid=True)
    records = list(StreamReader(io.BytesIO(stream)).iter_frames())
    (i_fh, i_data), (p_fh, p_data), (bbi_fh, bbi_data) = records[:3]
    assert bbi_fh.frame_type == 3
    reader = StreamReader(io.BytesIO(stream))
    dec = Decoder(reader.header, bundle=bundle)
    dec.decode_rgb(i_fh, i_data)
    dec.decode_rgb(replace(p_fh, pts=1000), p_data)  # a hostile stream: anchors far apart
    for k in range(MAX_REFERENCES - 2):
        dec.decode_rgb(replace(bbi_fh, pts=10 + k), bbi_data)
    with pytest.raises(ZVC69FormatError, match="more than 15 BBi"):
        dec.decode_rgb(replace(bbi_fh, pts=500), bbi_data)
    with pytest.raises(ZVC69FormatError, match="both sides of its pts"):
        dec.decode_rgb(replace(records[3][0], pts=10), records[3][1])  # pts of a reference: ambiguous
    with pytest.raises(ZVC69FormatError, match="both sides of its pts"):
        dec.decode_rgb(replace(records[3][0], pts=2000), records[3][1])  # nothing after it


def test_b_frames_need_increasing_pts(bundle):
    from zvc69_rt.errors import InputError

    frames = _pan(3)
    frames[2].pts = 1
    enc = Encoder(EncoderConfig(width=128, height=72, quality=60, gop=8, bframes=2), bundle=bundle)
    enc.encode(frames[0])
    enc.encode(frames[1])
    with pytest.raises(InputError, match="pts 1 after pts 1.*strictly increasing"):
        enc.encode(frames[2])


@pytest.mark.parametrize("kwargs, match", [({"b_pyramid": 1}, "true or false"),
                                           ({"b_quality_offset": -1}, "b_quality_offset"),
                                           ({"bframes": 16, "gop": 32}, "at most 15")])
def test_pyramid_config_validation(kwargs, match):
    from zvc69_rt.errors import InputError

    with pytest.raises(InputError, match=match):
        EncoderConfig(width=128, height=72, **kwargs).validate()
