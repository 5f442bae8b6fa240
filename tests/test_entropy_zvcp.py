"""ZVCP container: exact byte layouts (version 1, the spec's, and version 2, what we write),
payload_size, and header validation errors."""

import struct

import numpy as np
import pytest

from zvc69_rt import entropy
from zvc69_rt.entropy import coder, zvcp
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError


def _payload(h=10, slices=3, c=2, w=4, version=zvcp.VERSION_SPEC):
    """A Gaussian payload written as the given ZVCP version."""
    rng = np.random.default_rng(h * 31 + slices)
    sym = rng.integers(-3, 4, (c, h, w)).astype(np.int32)
    idx = rng.integers(0, 64, (c, h, w)).astype(np.uint8)
    ranges, parts = coder.encode_slices(sym, idx, entropy.gaussian_table(), slices)
    return zvcp.pack(ranges, parts, version), sym, idx


def test_encoder_writes_version_2():
    sym = np.zeros((2, 6, 3), np.int32)
    data = entropy.encode_gaussian(sym, np.zeros(sym.shape, np.uint8), 2)
    assert data[:6] == b"ZVCP\x02\x02"
    assert np.array_equal(entropy.decode_gaussian(data, np.zeros(sym.shape, np.uint8)), sym)


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
    data = zvcp.pack([(0, 2), (2, 5)], [b"abcdefgh", b"0123456789"], zvcp.VERSION_SPEC)
    assert data == (b"ZVCP\x01\x02\x00\x00" + struct.pack("<IIII", 0, 2, 0, 8) + struct.pack("<IIII", 2, 3, 8, 10)
                    + b"abcdefgh0123456789")
    rs, re_, ds, sz, total = zvcp.parse(data, 5)
    assert list(rs) == [0, 2] and list(re_) == [2, 5] and list(ds) == [40, 48] and list(sz) == [8, 10]
    assert total == len(data)
    rs, re_, ds, sz, total = zvcp.parse(b"xyz" + data, 5, offset=3)
    assert list(ds) == [43, 51] and total == len(data)


def test_version_2_layout_is_varint_rows_and_sizes():
    data = zvcp.pack([(0, 2), (2, 300)], [b"abcdefgh", bytes(200)])
    assert data == b"ZVCP\x02\x02" + b"\x02\x08" + b"\xaa\x02" + b"\xc8\x01" + b"abcdefgh" + bytes(200)
    rs, re_, ds, sz, total = zvcp.parse(data, 300)
    assert list(rs) == [0, 2] and list(re_) == [2, 300] and list(ds) == [12, 20] and list(sz) == [8, 200]
    assert total == len(data)
    rs, re_, ds, sz, total = zvcp.parse(b"xyz" + data, 300, offset=3)
    assert list(ds) == [15, 23] and total == len(data)
    # one slice: 8 header bytes for a short payload instead of version 1's 24
    assert len(zvcp.pack([(0, 5)], [bytes(100)])) - 100 == 8
    with pytest.raises(ValueError, match="contiguous"):
        zvcp.pack([(0, 2), (3, 5)], [b"a", b"b"])


@pytest.mark.parametrize("version", zvcp.VERSIONS)
def test_both_versions_decode_to_the_same_symbols(version):
    data, sym, idx = _payload(h=10, slices=3, version=version)
    assert data[4] == version
    assert np.array_equal(entropy.decode_gaussian(data, idx), sym)


@pytest.mark.parametrize("version", zvcp.VERSIONS)
def test_payload_size_lets_payloads_be_concatenated(version):
    a, *_ = _payload(h=10, slices=3, version=version)
    b, *_ = _payload(h=7, slices=2, version=version)
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
    yield "version", _with(data, 4, "<B", 3)
    yield "version", _with(data, 4, "<B", 0)
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


def _bad_compact_payloads():
    data, _, _ = _payload(h=10, slices=3, version=zvcp.VERSION_COMPACT)
    assert data[6:12] == b"\x03" + bytes([data[7]]) + b"\x03" + bytes([data[9]]) + b"\x04" + bytes([data[11]])
    yield "slice count is 0", _with(data, 5, "<B", 0)
    yield "rows > 0", _with(data, 6, "<B", 0)
    yield "cover", _with(data, 10, "<B", 5)  # rows past H
    yield "cover", _with(data, 10, "<B", 3)  # rows short of H
    yield "truncated", _with(data, 7, "<B", 0x7F)  # data_size past the buffer
    yield "truncated", data[:-1]
    yield "varint", data[:7]  # ends inside the slice headers
    yield "varint", data[:6] + b"\x83\x00" + data[7:]  # 3 written in two bytes
    yield "varint", data[:6] + b"\x80\x80\x80\x80\x80\x01" + data[7:]  # six bytes
    yield "32 bits", data[:6] + b"\x80\x80\x80\x80\x10" + data[7:]  # 2^32
    yield "header", data[:5]
    yield "header", b"ZVCP"


@pytest.mark.parametrize("what, bad", list(_bad_compact_payloads()), ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_version_2_headers_raise_entropy_decode_error(what, bad):
    _, _, idx = _payload(h=10, slices=3)
    with pytest.raises(EntropyDecodeError, match=what):
        entropy.decode_gaussian(bad, idx)


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
    head = b"ZVCP\x02\xff" + b"\x01\xff\xff\xff\xff\x0f" * 255
    with pytest.raises(EntropyDecodeError, match="truncated"):
        entropy.payload_size(head)


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
