"""rANS round trips (Gaussian, factorized, legacy), escapes, slices, rate vs the ideal code length."""

import struct

import numpy as np
import pytest

from zvc69_rt import entropy
from zvc69_rt.entropy import coder, rans, zvcp
from zvc69_rt.errors import EntropyDecodeError

I32 = np.iinfo(np.int32)


def _latent(shape, seed=0, lo=0.2, hi=8.0):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(lo), np.log(hi), shape)).astype(np.float32)
    sym = np.rint(rng.standard_normal(shape) * scales).astype(np.int32)
    return sym, entropy.scale_to_index(scales)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 2), (3, 5, 7), (2, 9, 1), (8, 16, 16), (5, 3, 11)])
@pytest.mark.parametrize("num_slices", [None, 1, 2, 3, 255])
def test_gaussian_round_trip(shape, num_slices):
    sym, idx = _latent(shape, seed=sum(shape))
    data = entropy.encode_gaussian(sym, idx, num_slices)
    assert isinstance(data, bytes) and data[:4] == b"ZVCP"
    n = data[5]
    assert n == min(num_slices or coder.auto_slices(shape[1], sym.size), shape[1])
    assert entropy.payload_size(data) == len(data)
    out = entropy.decode_gaussian(data, idx)
    assert out.dtype == np.int32 and out.shape == shape
    assert np.array_equal(out, sym)


def test_any_int32_round_trips_through_escape():
    rng = np.random.default_rng(5)
    shape = (4, 6, 5)
    sym = rng.integers(-1000, 1000, shape).astype(np.int32)
    special = [I32.min, I32.max, I32.min + 1, I32.max - 1, 128, -129, 127, -128, 255, 256, 65535, -65536, 0]
    sym.flat[: len(special)] = special
    sym.flat[-1] = I32.min
    for idx in (np.zeros(shape, np.uint8), np.full(shape, 63, np.uint8), rng.integers(0, 64, shape).astype(np.uint8)):
        for ns in (1, 2, 6):
            data = entropy.encode_gaussian(sym, idx, ns)
            assert np.array_equal(entropy.decode_gaussian(data, idx), sym)
        assert np.array_equal(entropy.decode_gaussian_legacy(entropy.encode_gaussian_legacy(sym, idx), idx), sym)


def test_all_extreme_values_in_a_row():
    shape = (2, 3, 4)
    idx = np.zeros(shape, np.uint8)
    for v in (I32.min, I32.max):
        sym = np.full(shape, v, np.int32)
        data = entropy.encode_gaussian(sym, idx, 3)
        assert np.array_equal(entropy.decode_gaussian(data, idx), sym)


def test_symbols_of_other_integer_dtypes_are_accepted_and_floats_refused():
    sym, idx = _latent((2, 4, 4))
    data = entropy.encode_gaussian(sym.astype(np.int64), idx)
    assert data == entropy.encode_gaussian(sym, idx)
    with pytest.raises(ValueError, match="int32"):
        entropy.encode_gaussian(np.full((1, 1, 1), 1 << 40, np.int64), np.zeros((1, 1, 1), np.uint8))
    with pytest.raises(ValueError, match="integers"):
        entropy.encode_gaussian(sym.astype(np.float32), idx)


def test_encode_rejects_bad_arguments():
    sym, idx = _latent((2, 4, 4))
    with pytest.raises(ValueError, match="differ"):
        entropy.encode_gaussian(sym, idx[:, :2])
    with pytest.raises(ValueError, match="out of range"):
        entropy.encode_gaussian(sym, np.full(sym.shape, 64, np.uint8))
    with pytest.raises(ValueError, match="C, H, W"):
        entropy.encode_gaussian(sym[0], idx[0])
    with pytest.raises(ValueError, match="non-empty"):
        entropy.encode_gaussian(sym[:, :0], idx[:, :0])


def test_decode_with_wrong_scale_index_is_detected():
    sym, idx = _latent((16, 8, 8), seed=3)
    data = entropy.encode_gaussian(sym, idx, 2)
    wrong = ((idx.astype(np.int64) + 7) % 64).astype(np.uint8)
    with pytest.raises(EntropyDecodeError):
        entropy.decode_gaussian(data, wrong)
    with pytest.raises(EntropyDecodeError, match="rows"):
        entropy.decode_gaussian(data, idx[:, :4])  # fewer rows than the slices cover


def test_decode_rejects_trailing_bytes():
    sym, idx = _latent((2, 4, 4))
    data = entropy.encode_gaussian(sym, idx)
    with pytest.raises(EntropyDecodeError, match="bytes"):
        entropy.decode_gaussian(data + b"\0", idx)


def test_decode_accepts_memoryview_slices_of_a_frame():
    sym, idx = _latent((3, 8, 5))
    table = entropy.CdfTable.from_pmfs([np.array([0.2, 0.6, 0.2])] * 3, np.array([-1, -1, -1]))
    z = np.clip(sym, -1, 1)
    frame = b"junk" + entropy.encode_factorized(z, table) + entropy.encode_gaussian(sym, idx)
    view = memoryview(frame)
    zlen = entropy.payload_size(view, 4)
    ylen = entropy.payload_size(view, 4 + zlen)
    assert 4 + zlen + ylen == len(frame)
    assert np.array_equal(entropy.decode_factorized(view[4 : 4 + zlen], table, z.shape), z)
    assert np.array_equal(entropy.decode_gaussian(view[4 + zlen :], idx), sym)


def test_factorized_round_trip_uses_one_row_per_channel():
    rng = np.random.default_rng(7)
    pmfs = [rng.random(rng.integers(1, 40)) for _ in range(6)]
    offsets = rng.integers(-20, 5, 6)
    table = entropy.CdfTable.from_pmfs(pmfs, offsets)
    sym = np.stack([rng.integers(offsets[c] - 3, offsets[c] + len(pmfs[c]) + 3, (7, 9)) for c in range(6)]).astype(np.int32)
    for ns in (None, 1, 4):
        data = entropy.encode_factorized(sym, table, ns)
        assert np.array_equal(entropy.decode_factorized(data, table, sym.shape), sym)
    # fewer channels than rows is fine (row k codes channel k)
    assert np.array_equal(entropy.decode_factorized(entropy.encode_factorized(sym[:2], table), table, (2, 7, 9)), sym[:2])
    with pytest.raises(ValueError, match="rows"):
        entropy.encode_factorized(np.zeros((7, 2, 2), np.int32), table)
    with pytest.raises(EntropyDecodeError, match="rows"):
        entropy.decode_factorized(data, table, (7, 7, 9))
    leg = entropy.encode_factorized_legacy(sym, table)
    assert np.array_equal(entropy.decode_factorized_legacy(leg, table, sym.shape), sym)


def test_factorized_channel_order_matters():
    """Row k codes channel k: decoding with the rows permuted must not give the same tensor."""
    table = entropy.CdfTable.from_pmfs([np.array([0.98, 0.01]), np.array([0.01, 0.98])], np.array([0, 0]))
    sym = np.stack([np.zeros((8, 8)), np.ones((8, 8))]).astype(np.int32)
    good = entropy.encode_factorized(sym, table)
    swapped = entropy.encode_factorized(sym[::-1].copy(), table)
    assert len(good) < len(swapped)  # the right rows make it cheap


def test_legacy_stream_is_the_version_1_single_slice_stream():
    sym, idx = _latent((4, 6, 6), seed=11)
    legacy = entropy.encode_gaussian_legacy(sym, idx)
    z = entropy.encode_gaussian(sym, idx, 1)  # version 2
    assert len(legacy) < 128 and z[:8] == b"ZVCP\x02\x01\x06" + bytes([len(legacy)])
    assert z[8:] == legacy
    z = zvcp.pack([(0, 6)], [legacy], zvcp.VERSION_SPEC)
    assert z[8:24] == struct.pack("<IIII", 0, 6, 0, len(legacy))
    assert np.array_equal(entropy.decode_gaussian(z, idx), sym)
    assert np.array_equal(entropy.decode_gaussian_legacy(legacy, idx), sym)
    with pytest.raises(EntropyDecodeError):
        entropy.decode_gaussian_legacy(legacy[:-1], idx)
    with pytest.raises(EntropyDecodeError):
        entropy.decode_gaussian_legacy(legacy + b"\0", idx)


def test_slices_decode_independently():
    """Corrupting one slice's data is reported for that slice, the others are untouched."""
    sym, idx = _latent((8, 12, 10), seed=13)
    data = bytearray(entropy.encode_gaussian(sym, idx, 3))
    _, _, ds, sz, _ = zvcp.parse(bytes(data), 12)
    data[ds[1] + sz[1] // 2] ^= 0xFF
    with pytest.raises(EntropyDecodeError, match="slice 1 "):
        entropy.decode_gaussian(bytes(data), idx)


def test_all_slices_carry_their_own_states():
    sym, idx = _latent((4, 8, 8), seed=17)
    data = entropy.encode_gaussian(sym, idx, 4)
    rs, re_, ds, sz, _ = zvcp.parse(data, 8)
    for i in range(4):
        # each slice is a legacy stream of its own rows
        part = entropy.decode_gaussian_legacy(data[ds[i] : ds[i] + sz[i]], idx[:, rs[i] : re_[i]].copy())
        assert np.array_equal(part, sym[:, rs[i] : re_[i]])


def test_rate_is_within_half_a_percent_of_the_ideal_code_length():
    sym, idx = _latent((96, 34, 60), seed=19)  # ~196k symbols, scales 0.2..8
    sym.flat[::5000] = 5000  # a few escapes too
    table = entropy.gaussian_table()
    ideal = table.ideal_bits(sym, idx)
    for ns in (1, 2, 8):
        data = entropy.encode_gaussian(sym, idx, ns)
        overhead = 8 * (8 + 16 * ns + rans.STATE_BYTES * ns)  # headers and flushed states
        assert 8 * len(data) <= ideal * 1.005 + overhead
        assert 8 * len(data) >= ideal - 64 * ns  # no code beats -log2 p by more than a few bytes


def test_ideal_bits_counts_escapes():
    t = entropy.CdfTable.from_pmfs([np.array([0.5, 0.5 - 2.0**-16])], np.array([0]))
    f_esc = t.cdf[0, 3] - t.cdf[0, 2]
    assert t.ideal_bits(np.array([0]), np.array([0])) == pytest.approx(1.0, abs=1e-3)
    # 300 zigzags to 600 -> 2 bytes
    assert t.ideal_bits(np.array([300]), np.array([0])) == pytest.approx(16 - np.log2(f_esc) + 3 + 16)


def test_auto_slices_follow_the_tensor_not_the_machine():
    import numba

    per = coder.SYMBOLS_PER_SLICE
    assert coder.auto_slices(1, 1) == 1
    assert coder.auto_slices(40, 64 * 40 * 80) == 1  # a 640x320 P-frame residual: one slice, 24 bytes
    assert coder.auto_slices(68, 192 * 68 * 120) == 6  # 1080p I-frame latent
    assert coder.auto_slices(3, 10 * per) == 1  # fewer than MIN_ROWS_PER_SLICE rows each otherwise
    assert coder.auto_slices(100000, 1000 * per) == 255
    threads = numba.get_num_threads()
    try:  # the same tensor gets the same slices whatever the thread count
        numba.set_num_threads(1)
        one = coder.auto_slices(272, 192 * 272 * 480)
    finally:
        numba.set_num_threads(threads)
    assert one == coder.auto_slices(272, 192 * 272 * 480) == 272 // coder.MIN_ROWS_PER_SLICE
    assert coder.row_ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert coder.row_ranges(2, 5) == [(0, 1), (1, 2)]


def test_warmup_runs():
    entropy.warmup()


def test_kernels_release_the_gil_and_are_cached_on_disk():
    for f in (rans.encode_slices, rans.decode_slices, rans._encode_range, rans._decode_range):
        assert f.targetoptions.get("nogil") is True
        assert type(f._cache).__name__ != "NullCache"
