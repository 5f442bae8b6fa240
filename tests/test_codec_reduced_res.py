"""Reduced-resolution I-frames (REDUCED_RES): the normative upsampler, the encoder's choice,
and a decoder that reconstructs exactly what the encoder predicted from, or refuses."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clips import example_frames
from zvc69_rt.bitstream import FrameFlags, FrameHeader, StreamReader
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.codec.inter import RESIDUAL_CODED_HALF, RESIDUAL_CODED_QUARTER, half_latent_size
from zvc69_rt.codec.reduced_res import downsample_2x, reduced_latent_size, upsample_2x
from zvc69_rt.errors import ZVC69FormatError
from zvc69_rt.frame import Frame

W, H = 131, 75  # odd: the half picture is 66x38, padded to 128x64 (latent 4x8); full latent 8x12


def _smooth(n: int, w: int = W, h: int = H) -> list[Frame]:
    """Soft gradients drifting 1 px per frame: what the intra model's rate floor hurts most."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    ch, cw = Frame.chroma_shape(w, h)
    out = []
    for i in range(n):
        luma = 128 + 60 * np.sin((x + i) / 23) * np.cos(y / 17)
        out.append(Frame(y=np.clip(luma, 0, 255).astype(np.uint8), u=np.full((ch, cw), 118, np.uint8),
                         v=np.full((ch, cw), 140, np.uint8), pts=i))
    return out


def _textured(w: int = W, h: int = H) -> Frame:
    rng = np.random.default_rng(1)
    ch, cw = Frame.chroma_shape(w, h)
    return Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8), u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                 v=rng.integers(0, 256, (ch, cw), dtype=np.uint8), pts=0)


def test_upsampler_is_the_documented_bicubic():
    ramp = np.arange(9, dtype=np.float32)[None, None, :].repeat(3, 1)  # [1, 3, 9]
    up = upsample_2x(ramp)
    assert up.shape == (1, 6, 18) and up.dtype == np.float32
    # bicubic (a = -0.5) reproduces a ramp away from the replicated edges: 2k -> k - 1/4, 2k+1 -> k + 1/4
    np.testing.assert_array_equal(up[0, 0, 4:14], np.arange(2, 7).repeat(2) + np.tile([-0.25, 0.25], 5))
    np.testing.assert_array_equal(upsample_2x(np.full((3, 5, 7), 0.3, np.float32)), np.float32(0.3))
    step = np.zeros((1, 1, 8), np.float32)
    step[..., 4:] = 1
    np.testing.assert_array_equal(upsample_2x(step)[0, 0, 6:10], np.float32([-9, 26, 102, 137]) / 128)


def test_downsampler_halves_odd_sizes_and_keeps_flat_pictures():
    x = np.full((3, 75, 131), 0.6, np.float32)
    small = downsample_2x(x)
    assert small.shape == (3, 38, 66)
    np.testing.assert_allclose(small, 0.6, atol=1e-6)
    assert reduced_latent_size(H, W, 64) == (4, 8)


def test_smooth_low_rate_i_frame_goes_half_size_and_decodes_as_the_encoder_predicted():
    frames = _smooth(4)
    enc = Encoder(EncoderConfig(width=W, height=H, quality=0, gop=4))
    recons, packets = [], []
    for f in frames:
        packets += enc.encode(f)
        recons.append(enc._reference.copy())
    enc.send_frame(None)
    i_frame = packets[0]
    assert i_frame.flags == FrameFlags.REDUCED_RES and i_frame.quality > 0  # coded at a higher quality
    assert (i_frame.latent_height, i_frame.latent_width) == (4, 8)
    assert all(p.flags == 0 for p in packets[1:])
    full = Encoder(EncoderConfig(width=W, height=H, quality=0, gop=4, reduced_res=False)).encode(frames[0])[0]
    assert full.flags == 0 and (full.latent_height, full.latent_width) == (8, 12)
    assert len(i_frame.data) < len(full.data)

    buf = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=W, height=H, quality=0, gop=4)), frames, buf)
    reader = StreamReader(io.BytesIO(buf.getvalue()))
    dec = Decoder(reader.header)
    decoded = [dec.decode_rgb(fh, payload) for fh, payload in reader.iter_frames()]
    assert len(decoded) == 4
    for got, want in zip(decoded, recons, strict=True):  # closed loop: bit-exact on the same backend
        assert got.shape == (3, 128, 192)
        np.testing.assert_array_equal(got, want)


def test_half_size_is_kept_only_where_it_costs_less():
    enc = Encoder(EncoderConfig(width=W, height=H, quality=100, gop=1))
    (packet,) = enc.encode(_textured())
    assert not packet.flags & FrameFlags.REDUCED_RES  # noise at the top quality: half size loses its detail
    x = enc.preprocess(_textured()).x
    choice = enc.code_intra(x, 0)
    full = Encoder(EncoderConfig(width=W, height=H, quality=0, gop=1, reduced_res=False)).code_intra(x, 0)
    assert enc._intra_cost(x, choice.data, choice.recon, 0) <= enc._intra_cost(x, full.data, full.recon, 0)


def test_realtime_presets_rate_control_and_the_switch_keep_full_size():
    frames = _smooth(1)
    assert not Encoder(EncoderConfig(width=W, height=H, quality=0, gop=1, reduced_res=False)).reduced_res
    # vbr/cbr: the controllers' bits-from-quality model assumes full-size I-frames
    assert not Encoder(EncoderConfig(width=W, height=H, gop=1, rate_control="vbr", bitrate=200_000)).reduced_res
    # ... but their per-type P model absorbs half-size residuals
    vbr = Encoder(EncoderConfig(width=W, height=H, gop=8, rate_control="vbr", bitrate=200_000))
    assert vbr.inter.half_residual and not vbr.reduced_res
    enc = Encoder(EncoderConfig(width=W, height=H, quality=0, gop=8, preset="realtime_1080p"))
    assert not enc.reduced_res and not enc.inter.half_residual
    assert [p.flags for p in enc.encode(frames[0])] == [0]


def _stream(n: int, gop: int, **kw) -> tuple[StreamReader, list]:
    buf = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=W, height=H, quality=0, gop=gop, **kw)), _smooth(n), buf)
    reader = StreamReader(io.BytesIO(buf.getvalue()))
    return reader, list(reader.iter_frames())


def test_decoder_refuses_a_reduced_flag_that_does_not_match_the_latent_size():
    reader, [(fh, payload)] = _stream(1, gop=1)
    assert fh.reduced_res and (fh.latent_height, fh.latent_width) == (4, 8)
    flag_dropped = FrameHeader.for_data(0, fh.quality_level, 4, 8, 0, payload)
    with pytest.raises(ZVC69FormatError, match=r"^frame 0: latent 4x8 does not match the 8x12 implied by the 131x75"):
        Decoder(reader.header).decode_rgb(flag_dropped, payload)
    flag_on_full = FrameHeader.for_data(0, fh.quality_level, 8, 12, 0, payload, flags=FrameFlags.REDUCED_RES)
    with pytest.raises(ZVC69FormatError, match=r"does not match the 4x8 .* at half size \(REDUCED_RES\)"):
        Decoder(reader.header).decode_rgb(flag_on_full, payload)


def test_decoder_refuses_reduced_res_on_a_p_frame():
    reader, [(i_hdr, i_data), (p_hdr, p_data)] = _stream(2, gop=4)
    dec = Decoder(reader.header)
    dec.decode_rgb(i_hdr, i_data)
    hostile = FrameHeader(frame_type=1, quality_level=p_hdr.quality_level, frame_size=len(p_data),
                          latent_height=8, latent_width=12, pts=1, flags=FrameFlags.REDUCED_RES)
    with pytest.raises(ZVC69FormatError, match=r"^frame \d+: REDUCED_RES on a P-frame"):
        dec.decode_rgb(hostile, p_data)


def test_service_streams_reduced_res_like_the_cli_and_honours_the_switch():
    from fastapi.testclient import TestClient
    from zvc69_rt.service.app import create_app
    from zvc69_rt.service.settings import Settings

    frames = _smooth(2)
    streams = {}
    with TestClient(create_app(Settings(warmup=False))) as c:
        for switch in (True, False):
            sid = c.post("/v1/streams", json={"width": W, "height": H, "quality": 0, "gop": 2,
                                              "reduced_res": switch}).json()["id"]
            assert c.post(f"/v1/streams/{sid}/frames", content=b"".join(f.to_bytes() for f in frames)).status_code == 200
            assert c.post(f"/v1/streams/{sid}/close").status_code == 200
            streams[switch] = c.get(f"/v1/streams/{sid}/bitstream").content
        decoded = c.post("/v1/decode", content=streams[True])
    assert decoded.status_code == 200
    for switch, remote in streams.items():
        local = io.BytesIO()
        encode_to_stream(Encoder(EncoderConfig(width=W, height=H, quality=0, gop=2, reduced_res=switch)), frames, local)
        assert remote == local.getvalue()
        first = next(iter(StreamReader(io.BytesIO(remote)).iter_frames()))[0]
        assert first.reduced_res is switch


# -- half- and quarter-size residuals (P/B residual flags 3 and 4) ------------------------------------
REDUCED = [(1, RESIDUAL_CODED_HALF), (2, RESIDUAL_CODED_QUARTER)]


def test_reduced_latent_sizes():
    # 1080p: padded 1088x1920 (latent 68x120); half 544x960 -> 576x960; quarter 272x480 -> 320x512
    assert half_latent_size((68, 120), 1) == (36, 60)
    assert half_latent_size((68, 120), 2) == (20, 32)
    assert half_latent_size((12, 20), 2) == (4, 8)  # 192x320 -> 48x80 -> 64x128


@pytest.mark.parametrize("halvings,flag", REDUCED)
def test_reduced_size_residual_parses_back_to_the_encoders_reconstruction(halvings, flag):
    frames = example_frames(2)
    enc = Encoder(EncoderConfig(width=320, height=136, quality=14, gop=4))
    enc.encode(frames[0])
    a = enc.inter.analyse(enc.preprocess(frames[1]).x, enc._reference, 14)
    assert a.y is not None
    data, recon = enc.inter.code_half(a, 28, halvings=halvings)
    assert data[:2] == bytes((flag, 28))
    parsed = enc.inter.parse_residual(memoryview(data), 0, enc.latent_size, "P-frame", a.motion)
    # 320x136 pads to 320x192; half 160x96 pads to 192x128, quarter 80x48 to 128x64; residual
    # latents at 1/8: 16x24 and 8x16 (full size 24x40)
    assert parsed.half_quality == 28 and parsed.symbols.shape[1:] == ((16, 24) if halvings == 1 else (8, 16))
    np.testing.assert_array_equal(enc.inter.reconstruct(parsed, a.pred, 14), recon)
    assert recon.shape == a.pred.shape


@pytest.mark.parametrize("flag", [RESIDUAL_CODED_HALF, RESIDUAL_CODED_QUARTER])
@pytest.mark.parametrize("tail,message", [
    (b"", "quality byte missing"),
    (bytes((101,)), "quality 101 is outside 0..100"),
    (bytes((20, 1, 2, 3)), "residual payload"),
])
def test_reduced_size_residual_header_errors(flag, tail, message):
    enc = Encoder(EncoderConfig(width=320, height=136, quality=14, gop=4))
    from zvc69_rt.bitstream import MotionPrecision
    from zvc69_rt.codec.motion import CodedMotion

    zero = CodedMotion(np.zeros((2, enc.latent_size[0] * 4, enc.latent_size[1] * 4), np.int32),
                       MotionPrecision.QUARTER_PEL)
    with pytest.raises(ZVC69FormatError, match=message):
        enc.inter.parse_residual(memoryview(bytes((flag,)) + tail), 0, enc.latent_size, "P-frame", zero)
    with pytest.raises(ZVC69FormatError, match=r"residual flag 5 is not .* or 4 \(coded at quarter size\)"):
        enc.inter.parse_residual(memoryview(bytes((5, 20))), 0, enc.latent_size, "P-frame", zero)


def _low_rate_run(frames, quality):
    """(encoder reconstructions, residual flag of each P-frame) at this quality."""
    from zvc69_rt.codec.motion import decode_motion

    enc = Encoder(EncoderConfig(width=320, height=136, quality=quality, gop=12))
    recons, packets = [], []
    for f in frames:
        packets += enc.encode(f)
        recons.append(enc._reference.copy())
    grid = (enc.latent_size[0] * 4, enc.latent_size[1] * 4)
    flags = [p.data[decode_motion(memoryview(p.data), 0, grid, "P")[1]] for p in packets[1:]]
    return recons, flags


def test_low_rate_stream_with_reduced_size_residuals_decodes_as_encoded():
    """A stream that mixes half- (3) and quarter-size (4) residuals decodes to the encoder's
    own reconstructions. Which low quality mixes both depends on the model (the quarter
    size is rare on this clip), so the first of a few that does is used."""
    frames = example_frames(12)
    for quality in (12, 8, 14, 10):
        recons, flags = _low_rate_run(frames, quality)
        if {RESIDUAL_CODED_HALF, RESIDUAL_CODED_QUARTER} <= set(flags):
            break
    else:
        pytest.fail(f"no quality in 8..14 mixes half- and quarter-size residuals (last flags {flags})")
    buf = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=320, height=136, quality=quality, gop=12)), frames, buf)
    reader = StreamReader(io.BytesIO(buf.getvalue()))
    dec = Decoder(reader.header)
    for (fh, payload), want in zip(reader.iter_frames(), recons, strict=True):
        np.testing.assert_array_equal(dec.decode_rgb(fh, payload), want)
    assert not Encoder(EncoderConfig(width=320, height=136, quality=12, gop=12, reduced_res=False)).inter.half_residual


@pytest.fixture(scope="module", params=[1, 2], ids=["half", "quarter"])
def half_coded(request):
    """A flag-3 (half) or flag-4 (quarter) residual of bikes frame 1 and what parsing it needs."""
    frames = example_frames(2)
    enc = Encoder(EncoderConfig(width=320, height=136, quality=14, gop=4))
    enc.encode(frames[0])
    a = enc.inter.analyse(enc.preprocess(frames[1]).x, enc._reference, 14)
    data, _ = enc.inter.code_half(a, 14, halvings=request.param)
    return enc, a, data


def test_every_truncation_of_a_reduced_size_residual_is_a_format_error(half_coded):
    enc, a, data = half_coded
    for n in range(len(data)):
        with pytest.raises(ZVC69FormatError):
            enc.inter.parse_residual(memoryview(data[:n]), 0, enc.latent_size, "P-frame", a.motion)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=2, max_value=200), st.binary(min_size=1, max_size=8), st.integers(0, 10**6))
def test_corrupted_reduced_size_residuals_fail_cleanly_or_decode_to_the_right_shape(half_coded, at, junk, seed):
    """Hostile bytes inside a flag-3/4 payload: a clean format error, or (when the damage lands
    where rANS cannot see it) a picture of the right shape: never a crash or a hang."""
    enc, a, data = half_coded
    at = min(at, len(data) - 1)
    bad = data[:at] + junk + data[at + len(junk):] if seed % 2 else data[:at] + junk + data[at:]
    try:
        parsed = enc.inter.parse_residual(memoryview(bad), 0, enc.latent_size, "P-frame", a.motion)
    except ZVC69FormatError:
        return
    assert enc.inter.reconstruct(parsed, a.pred, 14).shape == a.pred.shape
