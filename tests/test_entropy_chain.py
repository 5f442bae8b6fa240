"""Chains (ZVCP version 3): several tensors in one rANS stream, decoded in order; exact
layout, round trips with escapes, and hostile payloads that must raise, never crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zvc69_rt import entropy
from zvc69_rt.entropy import zvcp
from zvc69_rt.errors import EntropyDecodeError

Z_TABLE = entropy.CdfTable.from_pmfs([np.ones(9) / 9] * 8, np.full(8, -4, np.int32))
G = entropy.gaussian_table()


def _parts(seed=0, z_shape=(8, 3, 5), y_shape=(16, 12, 20)):
    rng = np.random.default_rng(seed)
    z = rng.integers(-3, 4, z_shape).astype(np.int32)
    y = rng.integers(-20, 21, y_shape).astype(np.int32)
    y.flat[:: 37] = 1 << 20  # escapes
    y.flat[1] = -(1 << 31)
    idx = rng.integers(0, 64, y_shape).astype(np.uint8)
    return z, y, idx


def _decode(data, z, y, idx):
    r = entropy.ChainReader(data)
    a = r.decode(Z_TABLE, z.shape)
    b = r.decode(G, y.shape, idx)
    r.finish()
    return a, b


def test_round_trip_and_layout():
    z, y, idx = _parts()
    data = entropy.encode_chain([(z, None, Z_TABLE), (y, idx, G)])
    parts, start, size, total = zvcp.parse_chain(data)
    assert data[:6] == b"ZVCP\x03\x02" and parts == 2 and total == len(data) == start + size
    assert entropy.payload_size(data + b"tail") == len(data) and entropy.is_chain(data)
    a, b = _decode(data, z, y, idx)
    assert np.array_equal(a, z) and np.array_equal(b, y)


def test_one_stream_is_smaller_than_two_payloads():
    z, y, idx = _parts(1, y_shape=(4, 6, 8))
    two = len(entropy.encode_factorized(z, Z_TABLE)) + len(entropy.encode_gaussian(y, idx))
    assert len(entropy.encode_chain([(z, None, Z_TABLE), (y, idx, G)])) <= two - 12  # a header and a flush


def test_decoding_with_other_tables_is_caught():
    z, y, idx = _parts(2)
    data = entropy.encode_chain([(z, None, Z_TABLE), (y, idx, G)])
    with pytest.raises(EntropyDecodeError):
        _decode(data, z, y, (idx + 7) % 64)


def test_parts_must_be_read_as_written():
    z, y, idx = _parts(3)
    data = entropy.encode_chain([(z, None, Z_TABLE), (y, idx, G)])
    r = entropy.ChainReader(data)
    r.decode(Z_TABLE, z.shape)
    with pytest.raises(EntropyDecodeError, match="1 of 2 parts"):
        r.finish()
    r.decode(G, y.shape, idx)
    with pytest.raises(EntropyDecodeError, match="only 2 parts"):
        r.decode(G, y.shape, idx)
    with pytest.raises(EntropyDecodeError, match="version 3"):
        entropy.decode_gaussian(data, idx)  # a chain where one sliced tensor belongs


@pytest.mark.parametrize("bad, match", [
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\x00", "account for"),
    (lambda d: d[:5] + b"\x00" + d[6:], "part count is 0"),
    (lambda d: d[:6], "varint"),
    (lambda d: b"ZVCP\x03\x02\x04" + bytes(4), "shorter than its rANS states"),
    (lambda d: b"ZVCP\x03\x02\x08" + bytes(8), "initial rANS state"),
])
def test_hostile_headers(bad, match):
    z, y, idx = _parts(4)
    data = entropy.encode_chain([(z, None, Z_TABLE), (y, idx, G)])
    with pytest.raises(EntropyDecodeError, match=match):
        _decode(bad(data), z, y, idx)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=200), st.integers(0, 4))
def test_garbage_streams_raise_or_decode_to_the_right_shape(stream, parts):
    z, y, idx = _parts(5, y_shape=(2, 3, 4))
    data = zvcp.pack_chain(max(parts, 1), stream)
    try:
        a, b = _decode(data, z, y, idx)
    except EntropyDecodeError:
        return
    assert a.shape == z.shape and b.shape == y.shape


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))
def test_random_chains_round_trip(seed, n, h, w):
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n):
        sym = rng.integers(-50, 51, (3, h, w)).astype(np.int32)
        if k % 2:
            parts.append((sym, rng.integers(0, 64, sym.shape).astype(np.uint8), G))
        else:
            parts.append((np.clip(sym, -4, 4), None, Z_TABLE))
    r = entropy.ChainReader(entropy.encode_chain(parts))
    for sym, index, table in parts:
        assert np.array_equal(r.decode(table, sym.shape, index), sym)
    r.finish()
