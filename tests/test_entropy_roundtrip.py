"""rANS + ZVCP: exact round trips, escapes, slicing, and hostile payloads."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zvc69_rt import entropy
from zvc69_rt.entropy import coder, zvcp
from zvc69_rt.entropy.gaussian import build_gaussian_table
from zvc69_rt.errors import EntropyDecodeError


def _latent(seed=0, shape=(16, 20, 24)):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.11), np.log(20), shape)).astype(np.float32)
    sym = np.rint(rng.normal(0, 1, shape) * scales).astype(np.int32)
    return sym, entropy.scale_to_index(scales)


def test_scale_table_spec():
    t = entropy.SCALE_TABLE
    assert t.dtype == np.float32 and t.shape == (64,)
    assert t[0] == np.float32(0.11) and np.all(np.diff(np.log(t.astype(np.float64))) > 0)
    idx = entropy.scale_to_index(np.array([0.0, 0.11, 0.1101, t[10], 1e9], np.float32))
    assert idx.dtype == np.uint8 and list(idx) == [0, 0, 1, 10, 63]


def test_shipped_gaussian_tables_equal_a_rebuild():
    shipped, rebuilt = entropy.gaussian_table(), build_gaussian_table()
    np.testing.assert_array_equal(shipped.cdf, rebuilt.cdf)
    np.testing.assert_array_equal(shipped.cdf_length, rebuilt.cdf_length)
    np.testing.assert_array_equal(shipped.offset, rebuilt.offset)


@pytest.mark.parametrize("slices", [1, 2, 3, 20])
def test_gaussian_round_trip_any_slicing(slices):
    sym, idx = _latent()
    data = entropy.encode_gaussian(sym, idx, num_slices=slices)
    assert data[:4] == b"ZVCP" and data[5] == min(slices, 20)
    np.testing.assert_array_equal(entropy.decode_gaussian(data, idx), sym)
    assert entropy.payload_size(data) == len(data)


def test_every_int32_round_trips_through_escape():
    sym, idx = _latent(1, (2, 4, 8))
    extremes = [2**31 - 1, -(2**31), 128, -129, 5000, -70000, 2**24]
    sym.flat[: len(extremes)] = extremes
    data = entropy.encode_gaussian(sym, idx, num_slices=2)
    np.testing.assert_array_equal(entropy.decode_gaussian(data, idx), sym)


def test_rate_is_close_to_the_ideal_code_length():
    sym, idx = _latent(2, (32, 40, 40))
    t = entropy.gaussian_table()
    s = sym - t.offset[idx]
    inside = (s >= 0) & (s < t.cdf_length[idx] - 1)
    assert inside.mean() > 0.999
    freq = t.cdf[idx, s.clip(0) + 1] - t.cdf[idx, s.clip(0)]
    ideal_bits = float(np.sum(-np.log2(freq[inside] / 65536.0)))
    data = entropy.encode_gaussian(sym, idx, num_slices=1)
    overhead = 8 + 16 + 4  # ZVCP header, one slice header, final state
    assert (len(data) - overhead) * 8 <= ideal_bits * 1.005 + 64 * (~inside).sum()


def test_factorized_round_trip_and_concatenation():
    rng = np.random.default_rng(3)
    pmfs = [np.exp(-np.abs(np.arange(-6, 7)) / (1 + c)) for c in range(5)]
    pmfs = [p / p.sum() * 0.999 for p in pmfs]
    table = entropy.CdfTable.from_pmfs(pmfs, np.full(5, -6, np.int32))
    z = rng.integers(-9, 10, size=(5, 6, 7)).astype(np.int32)
    zdata = entropy.encode_factorized(z, table)
    sym, idx = _latent(4, (3, 8, 8))
    ydata = entropy.encode_gaussian(sym, idx)
    both = zdata + ydata
    n = entropy.payload_size(both, 0)
    assert n == len(zdata) and entropy.payload_size(both, n) == len(ydata)
    np.testing.assert_array_equal(entropy.decode_factorized(both[:n], table, z.shape), z)
    np.testing.assert_array_equal(entropy.decode_gaussian(both[n:], idx), sym)


def test_cdf_quantization_keeps_every_symbol_codable():
    t = entropy.CdfTable.from_pmfs([np.array([1.0, 0.0, 1e-30])], np.zeros(1, np.int32))
    assert (np.diff(t.cdf[0, : t.cdf_length[0] + 1]) >= 1).all() and t.cdf[0, t.cdf_length[0]] == 65536


@pytest.mark.parametrize("cut", [1, 3, 9, 40])
def test_truncated_payload_raises(cut):
    sym, idx = _latent(5)
    data = entropy.encode_gaussian(sym, idx, num_slices=3)
    with pytest.raises(EntropyDecodeError):
        entropy.decode_gaussian(data[:-cut], idx)


def test_hostile_slice_headers_are_rejected_before_decoding():
    sym, idx = _latent(6, (2, 8, 8))
    ranges, slices = coder.encode_slices(sym, idx, entropy.gaussian_table(), 2)
    data = zvcp.pack(ranges, slices, zvcp.VERSION_SPEC)  # fixed-width slice headers to corrupt
    for field, value in [(0, 4), (1, 0), (2, 999), (3, 2**32 - 1)]:
        bad = bytearray(data)
        struct.pack_into("<I", bad, 8 + 4 * field, value)
        with pytest.raises(EntropyDecodeError):
            entropy.decode_gaussian(bytes(bad), idx)
    with pytest.raises(EntropyDecodeError, match="magic"):
        entropy.decode_gaussian(b"ZVCQ" + bytes(data[4:]), idx)
    with pytest.raises(EntropyDecodeError, match="version"):
        entropy.decode_gaussian(b"ZVCP\x03" + bytes(data[5:]), idx)


def test_wrong_index_range_is_refused():
    sym, idx = _latent(7, (1, 4, 4))
    with pytest.raises(ValueError, match="scale index"):
        entropy.encode_gaussian(sym, np.full_like(idx, 64))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(1, 3), st.integers(1, 6))
def test_random_bytes_never_crash(blob, c, h):
    idx = np.zeros((c, h, 5), np.uint8)
    try:
        out = entropy.decode_gaussian(blob, idx)
        assert out.shape == idx.shape
    except EntropyDecodeError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_payloads_decode_or_raise(data):
    sym, idx = _latent(8, (3, 6, 6))
    good = bytearray(entropy.encode_gaussian(sym, idx, num_slices=2))
    pos = data.draw(st.integers(0, len(good) - 1))
    good[pos] ^= data.draw(st.integers(1, 255))
    try:
        entropy.decode_gaussian(bytes(good), idx)
    except EntropyDecodeError:
        pass
