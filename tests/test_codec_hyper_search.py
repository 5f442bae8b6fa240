"""The encoder's hyper-latent search (codec/hyper_search.py): fewer estimated bits, never more,
and streams that decode to exactly what the encoder reconstructed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy.stats import norm

from zvc69_rt import entropy
from zvc69_rt.codec import hyper_search
from zvc69_rt.entropy.tables import CdfTable

Y_TABLE = entropy.gaussian_table()


def _z_table(channels: int) -> CdfTable:
    """Factorized z tables: a discretised Laplacian over -8..8, mode 0 (channel 1: mode 2)."""
    pmfs, offsets = [], []
    for c in range(channels):
        v = np.arange(-8, 9)
        p = np.exp(-np.abs(v - (2 if c == 1 else 0)) / 1.2)
        pmfs.append(0.999 * p / p.sum())
        offsets.append(-8)
    return CdfTable.from_pmfs(pmfs, np.array(offsets))


def _row_for_scale(scale: float) -> int:
    """The Gaussian table row whose distribution suits latents of this scale best."""
    y = np.rint(norm.rvs(scale=scale, size=4000, random_state=1))
    return int(np.argmin([Y_TABLE.ideal_bits(y, r) for r in range(Y_TABLE.rows)]))


def _local_hyper(z: np.ndarray, rows_for: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A toy hyper synthesis: mean 0, and the scale row of each 4x4 block of y picked by the
    z element above it in channel 0 (rows_for[z + 8]); other channels do not matter."""
    rows = rows_for[np.clip(z[:, 0], -8, 8) + 8].astype(np.uint8)
    index = np.repeat(np.repeat(rows, 4, 1), 4, 2)[:, None].repeat(channels, 1)
    return np.zeros(index.shape, np.float32), index


def test_window_sums_add_each_cell_window():
    rng = np.random.default_rng(0)
    h, w = 7, 9
    a = rng.normal(size=(2, 4 * h, 4 * w))
    got = hyper_search._window_sums(a, h, w)
    cells = a.reshape(2, h, 4, w, 4).sum((2, 4))
    r = hyper_search.WINDOW
    for i, j in ((0, 0), (3, 4), (6, 8), (2, 7)):
        want = cells[:, max(0, i - r): i + r + 1, max(0, j - r): j + r + 1].sum((1, 2))
        np.testing.assert_allclose(got[:, i, j], want)


def test_indifferent_y_sends_every_z_element_to_its_channel_mode():
    """With y's bits independent of z, the cheapest z is every channel's mode: the search
    must get there (one step per pass) and report the bits it saved."""
    zt = _z_table(3)
    rng = np.random.default_rng(1)
    z = rng.integers(-2, 3, size=(3, 6, 10)).astype(np.int32)
    y = rng.normal(scale=2.0, size=(8, 24, 40)).astype(np.float32)

    def hyper(zb):
        index = np.full((zb.shape[0], 8, 24, 40), 20, np.uint8)
        return np.zeros(index.shape, np.float32), index

    out, before, after = hyper_search.search_z(z, hyper_search.gaussian_y_rate(y, hyper, Y_TABLE), zt, passes=4)
    modes = hyper_search.channel_modes(zt)
    assert list(modes) == [0, 2, 0]
    assert out.dtype == np.int32 and out.shape == z.shape
    assert np.array_equal(out, np.broadcast_to(modes[:, None, None], z.shape))
    want = sum(zt.ideal_bits(z[c], c) for c in range(3)) - sum(zt.ideal_bits(out[c], c) for c in range(3))
    assert before - after == pytest.approx(want)


def test_moves_that_cost_y_bits_are_refused():
    """Channel 0 picks the scale of its y block: moving toward the mode (0) would give large
    y latents a narrow distribution. The search keeps those elements and still takes the
    free moves of the other channels; its estimate never rises and matches a recount."""
    zt = _z_table(2)
    narrow, wide = _row_for_scale(0.3), _row_for_scale(12.0)
    rows_for = np.full(17, narrow)
    rows_for[8 + 3:] = wide  # z >= 3 in channel 0: a wide scale; below it a narrow one
    h, w = 5, 5
    z = np.zeros((2, h, w), np.int32)
    z[0] = 3
    z[1] = 5  # channel 1's mode is 2: free to move
    y = np.zeros((4, 4 * h, 4 * w), np.float32)
    y[:, :8] = np.random.default_rng(2).normal(scale=12.0, size=(4, 8, 4 * w))  # rows 0-1 of z cells: busy

    def hyper(zb):
        return _local_hyper(zb, rows_for, 4)

    out, before, after = hyper_search.search_z(z, hyper_search.gaussian_y_rate(y, hyper, Y_TABLE), zt, passes=3)
    assert np.all(out[0, :2] == 3)  # busy blocks keep the wide scale
    assert np.all(out[0, 2:] < 3)  # quiet blocks take the cheaper z
    assert np.all(out[1] == 2)  # channel 1 went to its mode (2), one step a pass
    assert after < before

    def recount(zz):
        mean, index = hyper(zz[None])
        return (Y_TABLE.ideal_bits(np.rint(y - mean[0]), index[0])
                + sum(zt.ideal_bits(zz[c], c) for c in range(2)))

    assert before == pytest.approx(recount(z)) and after == pytest.approx(recount(out))


def test_rejects_mismatched_shapes():
    zt = _z_table(1)
    with pytest.raises(ValueError, match="4x z"):
        hyper_search.search_z(np.zeros((1, 3, 2), np.int32), lambda zb: np.zeros((len(zb), 8, 8)), zt)


def test_searched_frames_decode_to_the_encoders_reconstruction_and_cost_less():
    """Real footage, the shipped bundle: with the search (on at full effort) the I-frame and
    the P-frames are smaller than without it, and the decoder reproduces the encoder's
    closed-loop reference bit for bit (the search changes what is sent, not the format)."""
    from tests.clips import example_frames
    from zvc69_rt.bitstream import StreamReader, StreamWriter
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.decoder import Decoder
    from zvc69_rt.codec.encoder import Encoder

    frames = example_frames(4)
    f0 = frames[0]
    sizes = {}
    for search in (False, True):
        # the search alone (latent refinement, tests/test_latent_refine.py, moves the I-frame too)
        enc = Encoder(EncoderConfig(width=f0.width, height=f0.height, quality=30, gop=4, bframes=0,
                                    z_search=search, refine_steps=0))
        assert enc.z_search == search and enc.inter.z_search == search
        buf = io.BytesIO()
        writer = StreamWriter(buf, enc.file_header())
        refs, frame_bytes = [], []
        for f in frames:
            for pkt in enc.encode(f):
                writer.write_packet(pkt)
                frame_bytes.append(len(pkt.data))
            refs.append(enc._reference.copy())
        writer.close()
        sizes[search] = frame_bytes
        reader = StreamReader(io.BytesIO(buf.getvalue()))
        dec = Decoder(reader.header)
        types = []
        for i, (fh, data) in enumerate(reader.iter_frames()):
            types.append(fh.frame_type)
            np.testing.assert_array_equal(dec.decode_rgb(fh, data), refs[i])
        assert types == [0, 1, 1, 1]
    assert sizes[True][0] < sizes[False][0]  # the I-frame
    assert sum(sizes[True][1:]) < sum(sizes[False][1:])  # the P-frames (their references differ too)


def test_intra_search_recounts_what_it_claims(tmp_path):
    """IntraCodec.search with the shipped bundle's checkerboard context: the bits its rate
    function counts for the searched z_hat are what the coder's tables give, below the
    analysed z_hat's, and the real payload shrinks with them."""
    from tests.clips import example_frames
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.encoder import Encoder

    f = example_frames(1)[0]
    enc = Encoder(EncoderConfig(width=f.width, height=f.height, gop=1))
    intra = enc.intra
    assert intra.context is not None  # the shipped bundle codes I-frames with the checkerboard
    lat = intra.analyse(enc._intra_picture(enc.preprocess(f).x), 40)
    searched = intra.search(lat)
    assert searched is not lat and searched.z_hat.dtype == np.int32

    def ideal(latents):
        index = intra._scale_index(latents)
        sym_a, sym_n, _, _, index_n = intra._two_pass(latents, index)
        from zvc69_rt.codec import checkerboard

        rows = np.arange(latents.z_hat.shape[0])[:, None, None]
        return (intra.y_table.ideal_bits(sym_a, checkerboard.split(index)[0]) + intra.y_table.ideal_bits(sym_n, index_n)
                + intra.z_table.ideal_bits(latents.z_hat, rows))

    assert ideal(searched) < ideal(lat)
    assert intra._y_rate(lat.y)(searched.z_hat[None])[0].sum() + intra.z_table.ideal_bits(
        searched.z_hat, np.arange(searched.z_hat.shape[0])[:, None, None]) == pytest.approx(ideal(searched))
    assert len(intra.code(searched)[0]) < len(intra.code(lat)[0])
