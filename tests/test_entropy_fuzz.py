"""Hostile payloads: random, truncated, bit-flipped, garbage slice data.

The only acceptable outcomes are EntropyDecodeError or a decoded tensor of the right
shape; never another exception, a crash (numba has no bounds checks) or a hang.
"""

import struct
from itertools import pairwise

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zvc69_rt import entropy
from zvc69_rt.entropy import zvcp
from zvc69_rt.errors import EntropyDecodeError

SHAPE = (3, 8, 5)
_rng = np.random.default_rng(0)
IDX = _rng.integers(0, 64, SHAPE).astype(np.uint8)
SYM = np.rint(_rng.standard_normal(SHAPE) * entropy.SCALE_TABLE[IDX]).astype(np.int32)
SYM.flat[3] = -(1 << 31)  # an escape in every fuzzed payload
SYM.flat[17] = 1000
GOOD = entropy.encode_gaussian(SYM, IDX, 3)
TABLE = entropy.CdfTable.from_pmfs([np.array([0.7, 0.2, 0.05])] * 3, np.array([0, 0, 0]))
GOOD_Z = entropy.encode_factorized(np.clip(SYM, -1, 3), TABLE, 2)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode(data: bytes) -> None:
    try:
        out = entropy.decode_gaussian(data, IDX)
    except EntropyDecodeError:
        return
    assert out.shape == SHAPE and out.dtype == np.int32


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _decode(data)
    _decode(b"ZVCP\x01" + data)


@FUZZ
@given(st.integers(0, len(GOOD) - 1))
def test_truncated(n):
    try:
        entropy.decode_gaussian(GOOD[:n], IDX)
    except EntropyDecodeError:
        return
    raise AssertionError("a truncated payload decoded")


@FUZZ
@given(st.lists(st.integers(0, 8 * len(GOOD) - 1), min_size=1, max_size=8))
def test_bit_flips(bits):
    data = bytearray(GOOD)
    for b in bits:
        data[b // 8] ^= 1 << (b % 8)
    _decode(bytes(data))


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=8), st.data())
def test_garbage_slice_data_behind_a_valid_header(slices, draw):
    """The kernels themselves run on arbitrary bytes (headers are consistent)."""
    cuts = sorted(draw.draw(st.lists(st.integers(1, SHAPE[1] - 1), max_size=len(slices) - 1, unique=True)))
    edges = [0] + cuts + [SHAPE[1]]
    ranges = list(pairwise(edges))
    _decode(zvcp.pack(ranges, slices[: len(ranges)] + [b""] * (len(ranges) - len(slices))))


@FUZZ
@given(st.binary(min_size=8, max_size=200))
def test_garbage_legacy_and_factorized(data):
    for call in (lambda: entropy.decode_gaussian_legacy(data, IDX),
                 lambda: entropy.decode_factorized_legacy(data, TABLE, SHAPE),
                 lambda: entropy.decode_factorized(zvcp.pack([(0, SHAPE[1])], [data]), TABLE, SHAPE)):
        try:
            out = call()
        except EntropyDecodeError:
            continue
        assert out.shape == SHAPE


@FUZZ
@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.binary(max_size=40))
def test_any_initial_states(x0, x1, rest):
    _decode(zvcp.pack([(0, SHAPE[1])], [struct.pack("<II", x0, x1) + rest]))


def test_good_payloads_still_decode():
    assert np.array_equal(entropy.decode_gaussian(GOOD, IDX), SYM)
    assert np.array_equal(entropy.decode_factorized(GOOD_Z, TABLE, SHAPE), np.clip(SYM, -1, 3))
