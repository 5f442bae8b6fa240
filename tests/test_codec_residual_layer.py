"""I-frame residual layers (RESIDUAL_LAYER): the byte layout, the encoder's choice, a decoder
that reconstructs exactly what the encoder predicted from, and refusals of broken layers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from zvc69_rt.bitstream import FrameFlags, FrameHeader, StreamReader
from zvc69_rt.cli import build_parser
from zvc69_rt.codec import residual_layer
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.errors import ZVC69FormatError
from zvc69_rt.frame import Frame


def test_layer_byte_layout():
    data = residual_layer.join(b"abc", 57, b"\x01xyz")
    assert data == b"\x03\x00\x00\x00abc" + bytes([57]) + b"\x01xyz"
    intra, quality, residual = residual_layer.split(data, "I-frame")
    assert bytes(intra) == b"abc" and quality == 57 and bytes(residual) == b"\x01xyz"
    for flag in (3, 4):  # half and quarter size
        assert residual_layer.split(residual_layer.join(b"", 0, bytes([flag, 9])), "x")[2][0] == flag
    for bad in (b"", b"\x00xyz"):  # nothing, or a skipped residual: no layer at all
        with pytest.raises(ValueError):
            residual_layer.join(b"abc", 50, bad)


@pytest.mark.parametrize("data,message", [
    (b"\x03\x00", "too short for its length field"),
    (b"\x09\x00\x00\x00abc\x32\x01", "claims 9 bytes, but only 5 follow"),
    (b"\x03\x00\x00\x00abc\x32", "claims 3 bytes, but only 4 follow"),  # quality without a flag
    (b"\x03\x00\x00\x00abc\x65\x01", "quality 101 is outside 0..100"),
    (b"\x03\x00\x00\x00abc\x32\x00", "flag 0 is not 1"),
    (b"\x03\x00\x00\x00abc\x32\x02", "flag 2 is not 1"),  # motion AQ: a layer has no motion
])
def test_split_refuses_broken_layers(data, message):
    with pytest.raises(ZVC69FormatError, match=rf"^frame 7: residual layer: .*{message}"):
        residual_layer.split(data, "frame 7")


def _zone_plate(i: int, w: int = 192, h: int = 128) -> Frame:
    """Fine detail the intra transforms saturate on at the top quality (where layers pay)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    luma = 128 + 50 * np.sin((x + i) ** 2 / 300 + y**2 / 500) + 30 * np.sin(x / 3.1) * np.cos(y / 2.3)
    ch, cw = Frame.chroma_shape(w, h)
    cy, cx = np.mgrid[0:ch, 0:cw]
    return Frame(y=np.clip(luma, 0, 255).astype(np.uint8), u=(128 + 40 * np.sin(cx / 5)).astype(np.uint8),
                 v=(128 + 40 * np.cos(cy / 4)).astype(np.uint8), pts=i)


@pytest.fixture(scope="module")
def frames():
    return [_zone_plate(i) for i in range(3)]


def _encode(frames, **kw) -> tuple[bytes, list[np.ndarray], list]:
    f0 = frames[0]
    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, **kw))
    packets, recons = [], []
    for f in frames:
        packets += enc.encode(f)
        recons.append(enc._reference.copy() if enc._reference is not None else None)
    packets += enc.flush()
    buf = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=f0.width, height=f0.height, **kw)), frames, buf)
    return buf.getvalue(), recons, packets


def test_high_quality_i_frame_carries_a_layer_and_decodes_as_the_encoder_predicted(frames):
    stream, recons, packets = _encode(frames, quality=100, gop=3, intra_residual=True)
    assert packets[0].flags & FrameFlags.RESIDUAL_LAYER
    assert all(not p.flags & FrameFlags.RESIDUAL_LAYER for p in packets[1:])  # P-frames never
    reader = StreamReader(io.BytesIO(stream))
    dec = Decoder(reader.header)
    decoded = [dec.decode_rgb(fh, payload) for fh, payload in reader.iter_frames()]
    for got, want in zip(decoded, recons, strict=True):  # closed loop: bit-exact on the same backend
        np.testing.assert_array_equal(got, want)


def test_all_intra_layered_stream_decodes_without_p_frames_and_beats_the_plain_i_frame(frames):
    f0 = frames[0]
    layered, _, [packet] = _encode(frames[:1], quality=100, gop=1, intra_residual=True)
    plain, _, [plain_packet] = _encode(frames[:1], quality=100, gop=1, intra_residual=False)
    assert packet.flags & FrameFlags.RESIDUAL_LAYER and not plain_packet.flags & FrameFlags.RESIDUAL_LAYER
    # the layer's I-frame part is the plain I-frame, or the half-size one the layer pays more over
    intra, quality, _ = residual_layer.split(packet.data, "I-frame")
    assert quality == 100
    assert bytes(intra) == plain_packet.data or packet.flags & FrameFlags.REDUCED_RES

    def psnr(stream: bytes) -> float:
        reader = StreamReader(io.BytesIO(stream))
        dec = Decoder(reader.header)  # gop 1: loads the residual graphs on first use
        ((fh, payload),) = list(reader.iter_frames())
        dec.send_packet(fh, payload)
        out = dec.receive_frame()
        return 10 * np.log10(255**2 / np.mean((out.y.astype(float) - f0.y) ** 2))

    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, quality=100, gop=1, intra_residual=False))
    x = enc.preprocess(f0).x
    with_layer = Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1, intra_residual=True)).code_intra(x, 100)
    assert with_layer.cost < enc.code_intra(x, 100).cost  # chosen because it costs less at the frame's lambda
    assert psnr(layered) > psnr(plain) + 1.0


def test_a_half_size_base_under_a_layer_decodes_as_the_encoder_predicted(frames):
    """REDUCED_RES and RESIDUAL_LAYER together: upsample the half picture, then the layer."""
    import dataclasses

    from zvc69_rt.bitstream import StreamWriter
    from zvc69_rt.codec.reduced_res import downsample_2x
    from zvc69_rt.io.padding import pad_to_multiple

    f0 = frames[0]
    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1, intra_residual=True, refine_steps=0))
    x = enc.preprocess(f0).x
    small, _ = pad_to_multiple(downsample_2x(x[:, :f0.height, :f0.width]), enc.bundle.alignment, "smooth")
    half, _ = enc._intra_candidate(x, small, small.shape[1:], 57, 71, True, False)
    forced = enc._with_residual_layer(x, dataclasses.replace(half, cost=float("inf")), [half], 57)
    assert forced.flags == FrameFlags.REDUCED_RES | FrameFlags.RESIDUAL_LAYER and forced.quality == 71
    buf = io.BytesIO()
    writer = StreamWriter(buf, enc.file_header())
    writer.write_frame(0, forced.quality, *enc.reduced_latent_size, 0, forced.data, forced.flags)
    writer.close()
    reader = StreamReader(io.BytesIO(buf.getvalue()))
    ((fh, payload),) = list(reader.iter_frames())
    np.testing.assert_array_equal(Decoder(reader.header).decode_rgb(fh, payload), forced.recon)


def test_low_quality_keeps_plain_i_frames_where_the_layer_costs_more(frames):
    f0 = frames[0]
    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, quality=0, gop=1, intra_residual=True))
    (packet,) = enc.encode(f0) + enc.flush()
    assert not packet.flags & FrameFlags.RESIDUAL_LAYER


def test_rate_control_and_realtime_presets_do_not_layer(frames):
    f0 = frames[0]
    vbr = Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1, intra_residual=True, rate_control="vbr",
                                bitrate=500_000))
    rt = Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1, intra_residual=True,
                               preset="realtime_1080p"))
    assert vbr.layer_codec is None and rt.layer_codec is None
    assert Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1)).layer_codec is not None  # the default
    assert Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=1, intra_residual=False)).layer_codec is None


def test_decoder_refuses_a_truncated_layer_and_a_layer_on_a_p_frame(frames):
    stream, _, _ = _encode(frames[:2], quality=100, gop=2, intra_residual=True)
    reader = StreamReader(io.BytesIO(stream))
    (i_hdr, i_data), (p_hdr, p_data) = list(reader.iter_frames())
    cut = bytes(i_data)[: len(i_data) // 2]
    hostile = FrameHeader.for_data(0, i_hdr.quality_level, i_hdr.latent_height, i_hdr.latent_width, 0, cut,
                                   flags=i_hdr.flags)
    with pytest.raises(ZVC69FormatError, match=r"^frame 0: "):
        Decoder(reader.header).decode_rgb(hostile, cut)
    dec = Decoder(reader.header)
    dec.decode_rgb(i_hdr, i_data)
    layered_p = FrameHeader(frame_type=1, quality_level=p_hdr.quality_level, frame_size=len(p_data),
                            latent_height=p_hdr.latent_height, latent_width=p_hdr.latent_width, pts=1,
                            flags=FrameFlags.RESIDUAL_LAYER)
    with pytest.raises(ZVC69FormatError, match=r"^frame \d+: RESIDUAL_LAYER on a P-frame"):
        dec.decode_rgb(layered_p, p_data)


def test_cli_and_evaluation_flags():
    assert build_parser().parse_args(["encode", "in.y4m", "-o", "o.zvc", "--intra-residual"]).intra_residual
    assert build_parser().parse_args(["encode", "in.y4m", "-o", "o.zvc"]).intra_residual  # the default
    assert not build_parser().parse_args(["encode", "in.y4m", "-o", "o.zvc", "--no-intra-residual"]).intra_residual
    assert build_parser().parse_args(["eval", "images", "--out", "x", "--intra-residual"]).intra_residual
    from zvc69_rt.cli.evaluate import parse_variants

    assert parse_variants(["ir:intra_residual=true"]) == {"ZVC69-ir": {"intra_residual": True}}


def test_corrupted_layered_i_frames_never_crash(frames):
    """Bit flips and cuts anywhere in a layered I-frame (its length field, the I part, the
    layer's quality, flag and payloads) decode to a picture or raise ZVC69FormatError."""
    stream, _, _ = _encode(frames[:1], quality=100, gop=1)
    reader = StreamReader(io.BytesIO(stream))
    ((fh, data),) = list(reader.iter_frames())
    assert fh.flags & FrameFlags.RESIDUAL_LAYER
    data = bytes(data)
    rng = np.random.default_rng(3)
    outcomes = set()
    for trial in range(40):
        b = bytearray(data[: int(rng.integers(1, len(data)))] if trial % 4 == 3 else data)
        for pos in rng.integers(0, len(b), size=2):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        hdr = FrameHeader.for_data(0, fh.quality_level, fh.latent_height, fh.latent_width, 0, bytes(b),
                                   flags=fh.flags)
        try:
            out = Decoder(reader.header).decode_rgb(hdr, bytes(b))
            assert out.shape == (3, 128, 192) and np.isfinite(out).all()
            outcomes.add("decoded")
        except ZVC69FormatError:
            outcomes.add("refused")
    assert "refused" in outcomes  # the cuts at least
