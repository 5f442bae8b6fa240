"""Bitstream 1.0 streams (ZVCP version 1 payloads, the spec's layout) still decode after the
switch to versions 2 and 3 (1.1): the same decoder reads both, frame by frame, with the real
model."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from zvc69_rt import entropy
from zvc69_rt.bitstream import StreamReader
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.entropy import zvcp
from zvc69_rt.eval.metrics import psnr_frame
from zvc69_rt.io.open import open_source
from zvc69_rt.models.bundle import ModelBundle

CLIP = Path(__file__).resolve().parents[1] / "examples" / "bikes_320x136.y4m"


@pytest.fixture(scope="module")
def frames():
    src = open_source(str(CLIP))
    return [f for _, f in zip(range(4), src)]


def _encode(frames) -> bytes:
    f0 = frames[0]
    # no residual layers: whether one pays depends on the payload overhead, so the two versions'
    # streams would code different frames and their sizes would not compare
    enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, gop=4, bframes=0, quality=40, intra_residual=False),
                  bundle=ModelBundle.load(None))
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    return buf.getvalue()


def _decode(stream: bytes):
    reader = StreamReader(io.BytesIO(stream))
    dec = Decoder(reader.header, bundle=ModelBundle.load(None))
    out = []
    for fh, data in reader.iter_frames():
        dec.send_packet(fh, data)
        while (f := dec.receive_frame()) is not None:
            out.append(f)
    dec.send_packet(None, None)
    while (f := dec.receive_frame()) is not None:
        out.append(f)
    return reader.header, out


def _versions(stream: bytes) -> set[int]:
    return {m.group(1)[0] for m in re.finditer(rb"ZVCP(.)", stream, re.DOTALL)}


def test_version_1_and_2_streams_decode_alike(frames, monkeypatch):
    new = _encode(frames)
    monkeypatch.setattr(zvcp, "VERSION", zvcp.VERSION_SPEC)
    monkeypatch.setattr(entropy, "one_slice", lambda shape, num_slices=None: False)  # no chains in 1.0
    old = bytearray(_encode(frames))
    old[7] = 0  # what a 1.0 writer put in version_minor (outside the trailer's CRC-32)
    assert _versions(new) == {2, 3} and _versions(bytes(old)) == {1}  # 3: z and y chained
    assert len(old) > len(new) + 4 * 14  # >= 4 frames x >= 1 payload x 14+ header bytes saved
    for stream, minor in ((new, 1), (bytes(old), 0)):
        header, out = _decode(stream)
        assert header.version_minor == minor
        assert [f.pts for f in out] == [0, 1, 2, 3]
        assert all(psnr_frame(a, b)[0] > 28 for a, b in zip(frames, out))
