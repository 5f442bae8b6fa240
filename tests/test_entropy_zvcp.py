"""ZVCP container: exact byte layout, payload_size, and header validation errors."""

import struct

import numpy as np
import pytest

from zvc69_rt import entropy
from zvc69_rt.entropy import zvcp
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError


def _payload(h=10, slices=3, c=2, w=4):
    rng = np.random.default_rng(h * 31 + slices)
    sym = rng.integers(-3, 4, (c, h, w)).astype(np.int32)
    idx = rng.integers(0, 64, (c, h, w)).astype(np.uint8)
    return entropy.encode_gaussian(sym, idx, slices), sym, idx


def test_byte_layout_matches_the_spec():
    data, _, _ = _payload(h=10, slices=3)
    magic, version, count, reserved = struct.unpack_from("<4sBBH", data, 0)
    assert (magic, version, count, reserved) == (b"ZVCP", 1, 3, 0)
    heads = [struct.unpack_from("<IIII", data, 8 + 16 * i) for i in range(3)]
    assert [(r0, n) for r0, n, _, _ in heads] == [(0, 3), (3, 3), (6, 4)]
    off = 0
    for _, _, doff, dsize in heads:
        assert doff == off  # relative to the start of the slice data section
        off += dsize
    assert len(data) == 8 + 16 * 3 + off


def test_pack_writes_what_parse_reads():
    data = zvcp.pack([(0, 2), (2, 5)], [b"abcdefgh", b"0123456789"])
    assert data == (b"ZVCP\x01\x02\x00\x00" + struct.pack("<IIII", 0, 2, 0, 8) + struct.pack("<IIII", 2, 3, 8, 10)
                    + b"abcdefgh0123456789")
    rs, re_, ds, sz, total = zvcp.parse(data, 5)
    assert list(rs) == [0, 2] and list(re_) == [2, 5] and list(ds) == [40, 48] and list(sz) == [8, 10]
    assert total == len(data)
    rs, re_, ds, sz, total = zvcp.parse(b"xyz" + data, 5, offset=3)
    assert list(ds) == [43, 51] and total == len(data)


def test_payload_size_lets_payloads_be_concatenated():
    a, *_ = _payload(h=10, slices=3)
    b, *_ = _payload(h=7, slices=2)
    buf = a + b + b"tail"
    assert entropy.payload_size(buf) == len(a)
    assert entropy.payload_size(buf, len(a)) == len(b)
    assert entropy.payload_size(memoryview(buf), len(a)) == len(b)


def _with(data: bytes, pos: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, *values)
    return bytes(out)


def _bad_payloads():
    data, _, _ = _payload(h=10, slices=3)
    size0 = struct.unpack_from("<I", data, 8 + 12)[0]
    yield "magic", _with(data, 0, "<4s", b"ZVCQ")
    yield "version", _with(data, 4, "<B", 2)
    yield "slice count is 0", _with(data, 5, "<B", 0)
    yield "reserved", _with(data, 6, "<H", 1)
    yield "slice headers need", _with(data, 5, "<B", 200)
    yield "start_row", _with(data, 8 + 16, "<I", 4)  # gap between slices 0 and 1
    yield "start_row", _with(data, 8 + 16, "<I", 2)  # overlap
    yield "rows > 0", _with(data, 8 + 4, "<I", 0)
    yield "cover", _with(data, 8 + 32 + 4, "<I", 5)  # rows past H
    yield "cover", _with(data, 8 + 32 + 4, "<I", 3)  # rows short of H
    yield "data_offset", _with(data, 8 + 16 + 8, "<I", size0 + 1)
    yield "truncated", _with(data, 8 + 32 + 12, "<I", 1 << 31)  # data_size past the buffer
    yield "truncated", data[:-1]
    yield "header", data[:7]
    yield "header", b""


@pytest.mark.parametrize("what, bad", list(_bad_payloads()), ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_headers_raise_entropy_decode_error(what, bad):
    _, _, idx = _payload(h=10, slices=3)
    with pytest.raises(EntropyDecodeError, match=what):
        entropy.decode_gaussian(bad, idx)
    assert issubclass(EntropyDecodeError, ZVC69FormatError)


def test_huge_slice_sizes_do_not_allocate():
    # 255 slices claiming 4 GiB each: rejected from the header alone
    head = b"ZVCP\x01\xff\x00\x00" + b"".join(struct.pack("<IIII", i, 1, 0, 0xFFFFFFFF) for i in range(255))
    with pytest.raises(EntropyDecodeError):
        entropy.payload_size(head)
    with pytest.raises(EntropyDecodeError):
        entropy.decode_gaussian(head, np.zeros((1, 255, 1), np.uint8))


def test_decode_shape_limits():
    data, _, _ = _payload()
    with pytest.raises(EntropyDecodeError, match="symbols"):
        entropy.decode_factorized(data, entropy.CdfTable.from_pmfs([np.ones(2)], np.zeros(1)), (1, 1 << 15, 1 << 15))
    with pytest.raises(EntropyDecodeError, match="non-empty"):
        entropy.decode_factorized(data, entropy.CdfTable.from_pmfs([np.ones(2)], np.zeros(1)), (1, 0, 4))


def test_max_slices_is_255():
    sym = np.zeros((1, 300, 1), np.int32)
    idx = np.zeros((1, 300, 1), np.uint8)
    data = entropy.encode_gaussian(sym, idx, 1000)
    assert data[5] == 255
    assert np.array_equal(entropy.decode_gaussian(data, idx), sym)
