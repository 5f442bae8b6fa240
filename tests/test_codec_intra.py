"""End-to-end intra coding with the shipped model bundle on ONNX Runtime (CPU)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from zvc69_rt.bitstream import FrameFlags, FrameHeader, HeaderFlags, StreamReader
from zvc69_rt.codec import residual_layer
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.errors import EntropyDecodeError, ModelMismatchError, ZVC69FormatError
from zvc69_rt.eval.metrics import psnr_yuv
from zvc69_rt.frame import Frame
from zvc69_rt.models.bundle import ModelBundle


@pytest.fixture(scope="module")
def bundle():
    return ModelBundle.load()


def _natural_frames(width, height, n, seed=0):
    """Smooth moving gradients plus texture: cheap stand-in for camera content."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    tex = rng.normal(0, 12, (height, width)).astype(np.float32)
    for i in range(n):
        y = 128 + 60 * np.sin((xx + 3 * i) / 17) * np.cos(yy / 23) + tex
        ch, cw = Frame.chroma_shape(width, height)
        u = 128 + 30 * np.sin(np.mgrid[0:ch, 0:cw][1] / 9 + i)
        v = 128 + 30 * np.cos(np.mgrid[0:ch, 0:cw][0] / 11)
        frames.append(Frame(y=np.clip(y, 0, 255).astype(np.uint8), u=np.clip(u, 0, 255).astype(np.uint8),
                            v=np.clip(v, 0, 255).astype(np.uint8), pts=i))
    return frames


def _encode(frames, cfg, bundle):
    buf = io.BytesIO()
    encode_to_stream(Encoder(cfg, bundle=bundle), frames, buf)
    return buf.getvalue()


def _decode(data, bundle, precision="fp32"):
    r = StreamReader(io.BytesIO(data))
    dec = Decoder(r.header, bundle=bundle, precision=precision)
    out = []
    for fh, payload in r.iter_frames():
        dec.send_packet(fh, payload)
        while (f := dec.receive_frame()) is not None:
            out.append(f)
    return r.header, out


@pytest.mark.parametrize("size", [(72, 66), (130, 97)])
def test_round_trip_any_size(bundle, size):
    w, h = size  # neither is a multiple of 16; 97 is odd
    frames = _natural_frames(w, h, 2)
    data = _encode(frames, EncoderConfig(width=w, height=h, gop=1, quality=80), bundle)
    header, out = _decode(data, bundle)
    assert header.flags & HeaderFlags.INTEGERIZED
    assert header.model_hash == bundle.hash_prefix
    assert [f.pts for f in out] == [0, 1]
    for a, b in zip(frames, out):
        assert (b.width, b.height) == (w, h)
        assert psnr_yuv(a, b) > 20


def test_quality_orders_rate_and_distortion(bundle):
    frames = _natural_frames(128, 128, 1)
    sizes, psnrs = [], []
    for q in (0, 57, 100):
        data = _encode(frames, EncoderConfig(width=128, height=128, gop=1, quality=q), bundle)
        sizes.append(len(data))
        psnrs.append(psnr_yuv(frames[0], _decode(data, bundle)[1][0]))
    assert sizes[0] < sizes[1] < sizes[2]
    assert psnrs[0] < psnrs[2]


def test_encoder_is_deterministic(bundle):
    frames = _natural_frames(96, 80, 2)
    cfg = EncoderConfig(width=96, height=80, gop=1)
    assert _encode(frames, cfg, bundle) == _encode(frames, cfg, bundle)


@pytest.mark.parametrize("quality", [30, 70])
@pytest.mark.parametrize("precision,max_drop", [("fp16", 0.1), ("int8", 0.5)])
def test_fp32_stream_decodes_exactly_with_other_precisions(bundle, precision, max_drop, quality):
    """Entropy decoding is exact across precisions (integer scale head); only the float
    synthesis differs a little."""
    frames = _natural_frames(128, 96, 1)
    data = _encode(frames, EncoderConfig(width=128, height=96, gop=1, quality=quality), bundle)
    r = StreamReader(io.BytesIO(data))
    fh, payload = next(iter(r.iter_frames()))
    ref = Decoder(r.header, bundle=bundle, precision="fp32")
    other = Decoder(r.header, bundle=bundle, precision=precision)
    intra = payload
    if fh.flags & FrameFlags.RESIDUAL_LAYER:  # the default encoder's layer (at quality 70 here)
        intra, _, layer = residual_layer.split(payload, "I-frame")
        motion = residual_layer.zero_motion(ref.padded_size)
        r32, ro = (d._residual_layer_codec().parse_residual(layer, 0, ref.latent_size, "layer", motion)
                   for d in (ref, other))
        np.testing.assert_array_equal(r32.z_hat, ro.z_hat)
        np.testing.assert_array_equal(r32.symbols, ro.symbols)
    z32, s32, _ = ref.intra.parse(intra, (fh.latent_height, fh.latent_width))
    zo, so, _ = other.intra.parse(intra, (fh.latent_height, fh.latent_width))
    np.testing.assert_array_equal(z32, zo)
    np.testing.assert_array_equal(s32, so)
    p32 = psnr_yuv(frames[0], _decode(data, bundle, "fp32")[1][0])
    po = psnr_yuv(frames[0], _decode(data, bundle, precision)[1][0])
    assert abs(p32 - po) < max_drop


def test_wrong_model_hash_is_refused(bundle):
    frames = _natural_frames(64, 64, 1)
    enc = Encoder(EncoderConfig(width=64, height=64, gop=1), bundle=bundle)
    hdr = enc.file_header().copy(model_hash=b"\x00\x01\x02\x03")
    with pytest.raises(ModelMismatchError, match="model"):
        Decoder(hdr, bundle=bundle)
    assert frames  # the frames themselves are irrelevant: the header alone is refused


def _one_frame(bundle):
    frames = _natural_frames(64, 64, 1)
    enc = Encoder(EncoderConfig(width=64, height=64, gop=1), bundle=bundle)
    pkt = enc.encode(frames[0])[0]
    fh = FrameHeader(frame_type=0, quality_level=pkt.quality, frame_size=len(pkt.data),
                     latent_height=pkt.latent_height, latent_width=pkt.latent_width, pts=0)
    return Decoder(enc.file_header(), bundle=bundle), fh, pkt.data


def test_latent_size_must_match_header(bundle):
    dec, fh, data = _one_frame(bundle)
    bad = FrameHeader(frame_type=0, quality_level=fh.quality_level, frame_size=fh.frame_size,
                      latent_height=4096, latent_width=4096, pts=0)
    with pytest.raises(ZVC69FormatError, match="latent"):
        dec.send_packet(bad, data)


@pytest.mark.parametrize("cut", [1, 8, 20])
def test_truncated_frame_data_raises(bundle, cut):
    dec, fh, data = _one_frame(bundle)
    with pytest.raises(EntropyDecodeError):
        dec.send_packet(fh, data[:-cut])


def test_corrupted_frame_data_never_crashes(bundle):
    dec, fh, data = _one_frame(bundle)
    rng = np.random.default_rng(1)
    for _ in range(50):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), size=3):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            dec.send_packet(fh, bytes(b))
            dec.receive_frame()
        except ZVC69FormatError:
            pass
