"""The P-frame propagation weight: normalised over the GOP, larger early and for static
content, turned into a P-frame quality, and applied by the encoder only where it was measured
(low-delay CQP, full effort)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.clips import EXAMPLE_CLIP, example_frames
from zvc69_rt.bitstream import FrameType
from zvc69_rt.codec import propagation
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder


def test_weight_is_one_everywhere_when_nothing_is_inherited():
    assert [propagation.distortion_weight(n, 16, 0.0) for n in range(1, 16)] == pytest.approx([1.0] * 15)


@pytest.mark.parametrize("fraction", [0.3, 0.8, 0.95, 1.0])
def test_weight_falls_towards_the_keyframe_and_is_normalised(fraction):
    w = [propagation.distortion_weight(n, 16, fraction, strength=1.0) for n in range(1, 16)]
    assert all(a < b for a, b in itertools.pairwise(w))  # more frames left, more weight
    assert np.mean(w) == pytest.approx(1.0)  # at strength 1 the GOP's mean weight is 1


def test_static_content_spreads_the_weights_further():
    # Kite-like (P-frames of 12 bytes after a 1,364-byte I-frame) against bikes-like (700 of 2,441)
    static = propagation.inherited_fraction(1364, 12)
    moving = propagation.inherited_fraction(2441, 700)
    assert static == propagation.MAX_FRACTION and moving == pytest.approx(1 - 700 / 2441)
    assert propagation.distortion_weight(15, 16, static) > propagation.distortion_weight(15, 16, moving) > 1.0
    assert propagation.distortion_weight(1, 16, static) < propagation.distortion_weight(1, 16, moving) < 1.0


def test_fraction_bounds_and_bad_positions():
    assert propagation.inherited_fraction(100, None) == propagation.FIRST_FRACTION
    assert propagation.inherited_fraction(100, 500) == 0.0  # a P-frame larger than the I-frame
    assert propagation.inherited_fraction(0, 5) == 0.0
    for n in (0, 16):
        with pytest.raises(ValueError, match="frames_left"):
            propagation.distortion_weight(n, 16, 0.5)


def test_weighted_quality_scales_lambda_by_the_weight():
    lambdas = np.array([0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932, 0.18])

    def lagrangian(q: int) -> float:
        return float(np.exp(np.interp(q / 100 * 7, np.arange(8), np.log(lambdas))))

    assert propagation.weighted_quality(40, 1.0, lagrangian) == 40
    for q, w in itertools.product((10, 40, 70), (0.3, 0.7, 1.3, 2.0)):
        got = propagation.weighted_quality(q, w, lagrangian)
        assert (got > q) == (w > 1) and got != q
        # no other quality comes closer to the target lambda
        err = abs(np.log(lagrangian(got) / (w * lagrangian(q))))
        assert all(abs(np.log(lagrangian(o) / (w * lagrangian(q)))) >= err for o in range(101))
    # one level (100/7 qualities) per lambda ratio of ~1.93
    assert propagation.weighted_quality(50, 1.93, lagrangian) in (64, 65)
    assert propagation.weighted_quality(3, 0.2, lagrangian) == 0
    assert propagation.weighted_quality(98, 5.0, lagrangian) == 100


def test_encoder_weights_low_delay_cqp_p_frames_only():
    frames = example_frames(2)
    enc = Encoder(EncoderConfig(width=320, height=136, quality=30, gop=8))
    assert enc.propagation and enc._propagation_weight(1) == 1.0  # no I-frame size yet
    [i_packet] = enc.encode(frames[0])
    assert enc._anchor_bytes == {FrameType.I: len(i_packet.data), FrameType.P: None}
    first = enc._propagation_weight(1)
    assert first == pytest.approx(propagation.distortion_weight(7, 8, propagation.FIRST_FRACTION))
    [p_packet] = enc.encode(frames[1])
    assert p_packet.quality == propagation.weighted_quality(30 - 16, first, enc.inter.lagrangian) > 30 - 16
    assert enc._anchor_bytes[FrameType.P] == len(p_packet.data)
    fraction = propagation.inherited_fraction(len(i_packet.data), len(p_packet.data))
    assert enc._propagation_weight(7) == pytest.approx(propagation.distortion_weight(1, 8, fraction))
    assert first > 1.0 > enc._propagation_weight(7)
    for cfg in ({"bframes": 2}, {"preset": "realtime_1080p"}, {"rate_control": "vbr", "bitrate": 200_000}):
        assert not Encoder(EncoderConfig(width=320, height=136, quality=30, gop=8, **cfg)).propagation


def test_pipelined_cli_writes_the_sequential_bytes_with_the_weights(tmp_path):
    """The weights come from sizes of frames already coded, in infer order: the pipelined
    scheduler (high_throughput: full effort) must write what the sequential encoder writes."""
    import io

    from zvc69_rt.cli import main
    from zvc69_rt.codec.encoder import encode_to_stream

    frames = example_frames(5)
    out = tmp_path / "o.zvc"
    assert main(["encode", str(EXAMPLE_CLIP), "-o", str(out), "--frames", "5", "--gop", "5", "--bframes", "0",
                 "--preset", "high_throughput", "--quality", "30", "--quiet"]) == 0
    enc = Encoder(EncoderConfig(width=320, height=136, fps_num=25, quality=30, gop=5, bframes=0,
                                preset="high_throughput"))
    assert enc.propagation
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    assert out.read_bytes() == buf.getvalue()
