"""How the encoder pads frames (EncoderConfig.padding): I-frames are coded from the picture
padded as the mode says (P/B-frames stay edge-padded), and the decoder, which crops the
padding, decodes either stream exactly as the encoder reconstructed it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.fakes.inter import pan
from zvc69_rt.bitstream import StreamReader
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.io.color import yuv420_to_rgb
from zvc69_rt.io.padding import pad_to_multiple


@pytest.fixture(scope="module")
def frames():
    return pan(3, w=128, h=72)  # pads to 128x128: 44 % of the coded area is padding


def _stream(frames, **kw) -> bytes:
    enc = Encoder(EncoderConfig(width=128, height=72, quality=40, **kw))
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    return buf.getvalue()


@pytest.mark.parametrize("padding", ["edge", "smooth"])
def test_i_frame_is_coded_from_the_padded_picture_the_mode_names(frames, padding):
    # z_search, refinement and layers off: tested in test_codec_hyper_search.py, test_latent_refine.py and
    # test_codec_residual_layer.py
    enc = Encoder(EncoderConfig(width=128, height=72, quality=40, gop=1, padding=padding, z_search=False,
                                refine_steps=0, intra_residual=False))
    (packet,) = enc.encode(frames[0])
    rgb = yuv420_to_rgb(frames[0], matrix=enc.matrix, range=enc.range)
    x, _ = pad_to_multiple(rgb, 64, padding)
    assert packet.data == enc.intra.code(enc.intra.analyse(x, 40))[0]


def test_padding_modes_give_different_streams_that_both_decode_as_encoded(frames):
    streams = {p: _stream(frames, gop=3, padding=p) for p in ("edge", "smooth")}
    assert streams["edge"] != streams["smooth"]
    for padding, data in streams.items():
        enc = Encoder(EncoderConfig(width=128, height=72, quality=40, gop=3, padding=padding))
        recons = []
        for f in frames:
            enc.encode(f)
            recons.append(enc._reference.copy())
        reader = StreamReader(io.BytesIO(data))
        dec = Decoder(reader.header)
        for (fh, payload), ref in zip(reader.iter_frames(), recons, strict=True):
            np.testing.assert_array_equal(dec.decode_rgb(fh, payload), ref)
