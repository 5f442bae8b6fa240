"""Encoder-side block matching (zvc69_rt/codec/motion_search.py) and its use by the P-frame
encoder: it must find motions beyond the flow network's horizon, and a stream coded with
its fields must decode bit-exactly (the decoder never runs it)."""

from __future__ import annotations

import numpy as np
import pytest

from zvc69_rt.codec import motion_search as ms


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture in 0..255 (box-blurred noise: block matching has a unique optimum)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (h + 4, w + 4))
    x = sum(x[i:i + h, j:j + w] for i in range(4) for j in range(4)) / 16
    return ((x - x.mean()) * 4 + 128).clip(0, 255).astype(np.float32)


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """cur(p) = img(p + (dx, dy)), bilinear, borders replicated."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sx, sy = np.clip(xx + dx, 0, w - 1), np.clip(yy + dy, 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = sx - x0, sy - y0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


@pytest.mark.parametrize("dx, dy", [(0, 0), (7, -3), (-18, 0), (23.5, 11.25), (-40, 33)])
def test_global_translation_recovers_the_shift(dx, dy):
    ref = _texture(256, 384)
    cur = _shift(ref, dx, dy)
    g = ms.global_translation(cur, ref)
    assert abs(g[0] - dx) <= 0.3 and abs(g[1] - dy) <= 0.3, (g, dx, dy)


def test_global_translation_of_a_flat_frame_is_zero():
    flat = np.full((128, 128), 90, np.float32)
    assert not np.rint(ms.global_translation(flat, flat)).any()


def test_shift_reference_replicates_borders():
    ref = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    out = ms.shift_reference(ref, 2, -1)
    for y in range(4):
        for x in range(5):
            assert np.array_equal(out[:, y, x], ref[:, min(max(y - 1, 0), 3), min(max(x + 2, 0), 4)])


def test_block_field_follows_two_motions():
    """Left half moves (+2, 0), right half (0, -3) around a global (+1, -1): every 16x16
    block away from the seam gets its own vector, expanded to the H/4 grid."""
    ref = _texture(128, 192, seed=3)
    cur = np.concatenate([_shift(ref, 2, 0)[:, :96], _shift(ref, 0, -3)[:, 96:]], axis=1)
    field = ms.block_field(cur, ref, np.array([1.0, -1.0]), (32, 48))
    assert field.shape == (2, 32, 48)
    left, right = field[:, 4:-4, 2:20], field[:, 4:-4, 28:-2]
    assert np.abs(left[0] - 2).max() <= 0.25 and np.abs(left[1]).max() <= 0.25
    assert np.abs(right[0]).max() <= 0.25 and np.abs(right[1] + 3).max() <= 0.25
    assert np.array_equal(field[:, 0:4, 0:4], np.broadcast_to(field[:, :1, :1], (2, 4, 4)))  # one vector per block


def test_block_field_rejects_a_wrong_grid():
    img = _texture(64, 64)
    with pytest.raises(ValueError, match="multiples of 16"):
        ms.block_field(img[:60], img[:60], np.zeros(2), (15, 16))
    with pytest.raises(ValueError, match="H/4 grid"):
        ms.block_field(img, img, np.zeros(2), (8, 8))


def _vehicle(ref: np.ndarray, x0: int, x1: int, dy: int) -> np.ndarray:
    """cur: static ref except columns x0..x1, which move dy rows (bikes.mp4's vehicle over ground)."""
    cur = ref.copy()
    cur[:, x0:x1] = _shift(ref, 0, dy)[:, x0:x1]
    return cur


def test_dominant_motions_finds_a_moving_strip_and_the_static_ground():
    ref = _texture(128, 256, seed=5)
    cur = _vehicle(ref, 96, 160, -18)
    modes = ms.dominant_motions(cur, ref)
    assert modes[0] == (0, 0)  # most blocks are ground
    assert (0, -18) in modes[:ms.MAX_MOTIONS]


def test_dominant_motion_split_between_two_coarse_vectors_is_one_mode():
    """18 px is 4.5 px at quarter resolution: the vehicle's blocks split between -4 and -5
    there (bikes.mp4, 31 + 24 of 800 blocks, each under MIN_SHARE), yet it is one motion."""
    ref = _texture(256, 512, seed=8)
    cur = _vehicle(ref, 224, 272, -18)
    c4, r4 = (ms._down2(ms._down2(a)) for a in (cur, ref))
    coarse = ms._wide_search(c4, r4, 4, ms.WIDE_RADIUS)[1]  # dy of 16 x 32 blocks, strip in columns 14..16
    share = ms.MIN_SHARE * coarse.size
    assert 8 < (coarse[:, 14:17] == -4).sum() < share and 8 < (coarse[:, 14:17] == -5).sum() < share
    assert (0, -18) in ms.dominant_motions(cur, ref)


def test_segmented_field_is_piecewise_constant_and_cheap_to_code():
    """Two motions, one per block: the strip gets its vector, the ground zero, and the DPCM
    changes only at the strip's two edges in each row (a vector per block would change at
    every block)."""
    from zvc69_rt.codec.motion import dpcm, med_residual, quantize

    ref = _texture(128, 256, seed=5)
    cur = _vehicle(ref, 96, 160, -18)
    field = ms.segmented_field(cur, ref, [np.zeros(2), np.array([0.0, -18.0])], (32, 64))
    assert field.shape == (2, 32, 64)
    assert np.all(field[1, :, 26:38] == -18) and np.all(field[1, :, :22] == 0) and np.all(field[1, :, 42:] == 0)
    assert not field[0].any()
    d = dpcm(quantize(field, 0).vectors)
    assert np.count_nonzero(d[1]) <= 2 * 32 + 1, np.count_nonzero(d[1])
    med = med_residual(quantize(field, 0).vectors)  # the strip's sides come from the row above
    assert np.count_nonzero(med) <= 2, np.count_nonzero(med)


def test_segmented_field_continues_motion_into_the_padding():
    from zvc69_rt.codec.motion import med_residual, quantize

    ref = _texture(128, 256, seed=6)
    cur = _vehicle(ref, 96, 160, -18)
    cur[96:, :128] = _shift(ref, 0, -18)[96:, :128]  # padding below 96 visible rows that favours a switch
    motions = [np.zeros(2), np.array([0.0, -18.0])]
    field = ms.segmented_field(cur, ref, motions, (32, 64), visible=(96, 256))
    assert not med_residual(quantize(field, 0).vectors)[:, 24:].any()  # padding rows cost nothing
    assert np.all(field[1, :24, 26:38] == -18)
    unaware = ms.segmented_field(cur, ref, motions, (32, 64))
    assert med_residual(quantize(unaware, 0).vectors)[:, 24:].any()


def test_luma_weights_sum_to_255():
    x = np.ones((3, 2, 2), np.float32)
    assert np.allclose(ms.luma(x), 255.0)


def test_fast_pan_is_found_and_decodes_bit_exactly(shipped_inter):
    """A 21 px/frame pan (beyond the 12 px the flow network was trained on): the block-search
    candidates cost fewer bits than the network's own, and the decoder reproduces the
    encoder's reconstruction exactly."""
    from zvc69_rt.codec.inter import DECODER_GRAPHS, PFrameCodec

    bundle, runners = shipped_inter
    ref = np.stack([_texture(192, 256, seed=s) for s in (1, 2, 3)]) / 255.0
    cur = np.stack([_shift(c * 255.0, -21, 0) for c in ref]) / 255.0
    ref, cur = ref.astype(np.float32), cur.astype(np.float32)
    quality = 40
    sizes = {}
    for search in (False, True):
        enc = PFrameCodec(bundle, runners, block_search=search)
        data, recon = enc.encode(cur, ref, quality)
        sizes[search] = len(data)
        dec = PFrameCodec(bundle, {g: runners[g] for g in DECODER_GRAPHS})
        out = dec.decompress(data, ref, (192 // 16, 256 // 16), quality)
        assert np.array_equal(out, recon)
    parsed = enc.parse(data, (12, 16))
    assert np.median(parsed.motion.pixels()[0]) == pytest.approx(-21, abs=0.5)
    assert sizes[True] < 0.8 * sizes[False], sizes


def test_affine_field_recovers_a_zoom_despite_outliers_and_codes_cheaply():
    from zvc69_rt.codec.motion import dpcm, encode_motion, med_residual, quantize

    h, w = 40, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    zoom = np.stack([0.02 * (xx - w / 2) + 0.5, 0.02 * (yy - h / 2) - 0.25])  # 2 % zoom about the centre + pan
    rng = np.random.default_rng(3)
    noisy = zoom + rng.normal(0, 0.3, zoom.shape)
    noisy[:, :6, :10] = 40.0  # an occlusion: the fit must not follow it
    noisy[:, 30:, :] = -9.0  # rows in the padding below the visible 120 pixel rows
    fit = ms.affine_field(noisy.astype(np.float32), visible=(120, 256))
    assert fit.shape == (2, h, w) and fit.dtype == np.float32
    assert np.abs(fit - zoom).max() < 0.1
    q = quantize(fit)
    assert np.count_nonzero(med_residual(q.vectors)) < 0.25 * np.count_nonzero(dpcm(q.vectors))
    assert len(encode_motion(q)) < 0.3 * len(encode_motion(quantize(noisy)))


def _zoom(img: np.ndarray, factor: float) -> np.ndarray:
    """cur(p) = img(c + (p - c) / factor) about the centre c: a camera zooming in."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    sx, sy = np.clip(cx + (xx - cx) / factor, 0, w - 1), np.clip(cy + (yy - cy) / factor, 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = sx - x0, sy - y0
    return ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy).astype(np.float32)


def test_zoom_is_coded_as_six_affine_parameters_and_decodes_bit_exactly(shipped_inter):
    """A 3 % zoom: the affine fit, coded as parameters (31 bytes of motion data), predicts
    better than any one vector, and the decoder regenerates the same field."""
    from zvc69_rt.codec.inter import DECODER_GRAPHS, PFrameCodec
    from zvc69_rt.codec.motion import AFFINE_FIELD

    bundle, runners = shipped_inter
    ref = (np.stack([_texture(192, 256, seed=s) for s in (4, 5, 6)]) / 255.0).astype(np.float32)
    cur = (np.stack([_zoom(c * 255.0, 1.03) for c in ref]) / 255.0).astype(np.float32)
    enc = PFrameCodec(bundle, runners, block_search=True)
    data, recon = enc.encode(cur, ref, 20)
    assert data[5] == AFFINE_FIELD
    parsed = enc.parse(data, (12, 16))
    rows, cols = np.mgrid[0:48, 0:64] * 4 + 1.5  # 4x4 block centres
    truth = np.stack([(cols - 127.5), (rows - 95.5)]) * (1 / 1.03 - 1)  # pred(p) = ref(p + v): about the centre
    miss = np.abs(parsed.motion.pixels() - truth)
    assert miss.max() < 1.0 and np.median(miss) < 0.25, (miss.max(), np.median(miss))  # fitted to the network's flow
    dec = PFrameCodec(bundle, {g: runners[g] for g in DECODER_GRAPHS})
    assert np.array_equal(dec.decompress(data, ref, (12, 16), 20), recon)


def test_refine_affine_recovers_the_camera_map_from_a_biased_fit():
    """The flow network's affine fit is biased on zooms (training zoom clip: 1.3-2 dB of
    prediction lost); Lucas-Kanade on the pixels closes it from a deliberately wrong start,
    and a moving object over a tenth of the frame does not pull it off."""
    ref = _texture(192, 256, seed=7) * 1.0
    cur = _zoom(ref, 1.03)
    cur[20:60, 30:90] = _texture(40, 60, seed=8)  # an object moving on its own
    r = 1 / 1.03 - 1  # pred(p) = ref(p + v): v = (p - c) * r, c the centre (127.5, 95.5)
    truth = np.array([[4 * r, 0, (1.5 - 127.5) * r], [0, 4 * r, (1.5 - 95.5) * r]])  # per H/4 grid cell
    start = truth + np.array([[-0.012, 0.002, -0.3], [0.001, 0.01, 0.3]])
    refined = ms.refine_affine(cur, ref, start)
    rows, cols = np.mgrid[0:48, 0:64]
    def field(c):
        return np.stack([c[k, 0] * cols + c[k, 1] * rows + c[k, 2] for k in range(2)])
    assert np.abs(field(start) - field(truth)).max() > 0.5
    assert np.abs(field(refined) - field(truth)).max() < 0.05
    np.testing.assert_allclose(ms.refine_affine(cur, ref, refined), refined, atol=1e-3)  # a fixed point


@pytest.mark.parametrize("dx, dy", [(7.3, -2.6), (-18.75, 0.4)])
def test_refine_translation_finds_the_sub_pixel_pan(dx, dy):
    ref = _texture(160, 224, seed=11)
    cur = _shift(ref, dx, dy)
    g = ms.global_translation(cur, ref)
    fine = ms.refine_translation(cur, ref, np.rint(g))  # from the whole-pixel vector
    assert np.abs(fine - [dx, dy]).max() < 0.05, (g, fine)


def test_refine_affine_leaves_a_flat_frame_alone():
    flat = np.full((64, 96), 90.0, np.float32)
    start = np.array([[0.0, 0.0, 1.25], [0.0, 0.0, -0.5]])
    np.testing.assert_array_equal(ms.refine_affine(flat, flat, start), start)  # no gradient, no step
