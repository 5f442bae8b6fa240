"""The P-frame encoder codes the padding (rows and columns the decoder crops) as the
prediction, so no residual bits go to pixels nobody sees; the decoder is unaffected."""

from __future__ import annotations

import numpy as np

from zvc69_rt.codec.inter import DECODER_GRAPHS, PFrameCodec


def test_fill_padding_takes_the_prediction_outside_the_visible_frame(shipped_inter):
    bundle, runners = shipped_inter
    codec = PFrameCodec(bundle, runners, visible_size=(40, 50))
    rng = np.random.default_rng(0)
    cur, pred = rng.random((2, 3, 64, 64), dtype=np.float32)
    out = codec.fill_padding(cur, pred)
    np.testing.assert_array_equal(out[:, :40, :50], cur[:, :40, :50])
    np.testing.assert_array_equal(out[:, 40:], pred[:, 40:])
    np.testing.assert_array_equal(out[:, :, 50:], pred[:, :, 50:])
    small = cur[:, :40, :50]
    assert codec.fill_padding(small, pred[:, :40, :50]) is small  # nothing to fill
    unpadded = PFrameCodec(bundle, runners, visible_size=(64, 64))
    assert unpadded.fill_padding(cur, pred) is cur and PFrameCodec(bundle, runners).fill_padding(cur, pred) is cur


def test_rd_measures_cover_only_the_visible_frame(shipped_inter):
    """distortion (per padded sample, to add to bits per padded pixel) and sad (0..255 units,
    the motion estimate's residual-bit proxy) ignore the padding the decoder crops."""
    bundle, runners = shipped_inter
    codec = PFrameCodec(bundle, runners, visible_size=(40, 50))
    cur = np.zeros((3, 64, 64), np.float32)
    x = cur.copy()
    x[:, 40:] = 1.0
    x[:, :, 50:] = 1.0
    assert codec.distortion(cur, x) == 0.0 and codec.sad(cur, x) == 0.0
    x[0, 39, 49] = 0.5
    assert codec.distortion(cur, x) == 0.25 / cur.size
    assert codec.sad(cur, x) == 127.5
    whole = PFrameCodec(bundle, runners)
    assert whole.sad(cur, x) == 255.0 * float(np.abs(x).sum())


def _padded_pan(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 128x72 picture padded to 128x128 the way the encoder pads (edge rows replicated),
    and the same picture moved 3 px down."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:80, 0:128].astype(np.float32)
    scene = np.stack([np.sin(xx / 5 + c) * np.cos(yy / 7 - c) for c in range(3)]) * 0.3 + 0.5
    scene = np.clip(scene + rng.normal(0, 0.02, scene.shape), 0, 1).astype(np.float32)
    ref, cur = scene[:, 3:75], scene[:, 0:72]

    def pad(x):
        return np.concatenate([x, np.repeat(x[:, -1:], 56, axis=1)], axis=1)

    return pad(ref), pad(cur)


def test_padding_costs_no_residual_and_decodes_bit_exactly(shipped_inter):
    bundle, runners = shipped_inter
    ref, cur = _padded_pan(1)
    sizes, psnr = {}, {}
    for visible in (None, (72, 128)):
        enc = PFrameCodec(bundle, runners, visible_size=visible)
        data, recon = enc.encode(cur, ref, 60)
        sizes[visible] = len(data)
        out = PFrameCodec(bundle, {g: runners[g] for g in DECODER_GRAPHS}).decompress(data, ref, (8, 8), 60)
        np.testing.assert_array_equal(out, recon)
        psnr[visible] = 10 * np.log10(1 / float(np.mean((recon[:, :72] - cur[:, :72]) ** 2)))
    assert sizes[(72, 128)] < sizes[None], sizes
    assert psnr[(72, 128)] > psnr[None] - 0.5, psnr  # what the viewer sees is as good as before
