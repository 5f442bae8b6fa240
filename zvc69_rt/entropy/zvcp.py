"""ZVCP: the self-describing sliced entropy payload (spec "Parallel Format").

Version 1, the spec's layout (read; written only on request)::

    "ZVCP" | version u8 = 1 | slice count u8 | reserved u16 = 0
    slice headers, 16 bytes each: start_row u32, num_rows u32, data_offset u32, data_size u32
    slice data, concatenated (data_offset is relative to the start of this section)

Version 2, what we write since bitstream 1.1 (docs/ENTROPY.md "ZVCP")::

    "ZVCP" | version u8 = 2 | slice count u8
    slice headers: num_rows uLEB128, data_size uLEB128
    slice data, concatenated

Version 3, a chain (entropy/chain.py): several small tensors in one rANS stream, decoded in
order, so that one's symbols may select the next one's tables::

    "ZVCP" | version u8 = 3 | part count u8 | stream size uLEB128 | stream

Slices partition the tensor's rows [0, H) in order and their data is contiguous (version 1
readers insist on it too), so version 2 leaves out what follows from that (start_row,
data_offset) and the reserved field: a one-slice payload's header drops from 24 bytes to
8-10, ~45 of the 300-600 bytes of a low-rate 640x272 P-frame (three payloads). Little-endian;
varints are minimal (no redundant 0x80 continuation) and at most 5 bytes, below 2^32.
Either way a payload's total length follows from its header alone (payload_size), so
payloads can be concatenated without prefixes.
"""

from __future__ import annotations

import struct

import numpy as np

from zvc69_rt.errors import EntropyDecodeError

MAGIC = b"ZVCP"
VERSION_SPEC = 1
VERSION_COMPACT = 2
VERSION_CHAIN = 3
#: What pack() writes unless told otherwise.
VERSION = VERSION_COMPACT
VERSIONS = (VERSION_SPEC, VERSION_COMPACT)  # sliced payloads of one tensor
HEADER = struct.Struct("<4sBBH")  # version 1
HEADER_COMPACT = struct.Struct("<4sBB")  # version 2
SLICE = struct.Struct("<IIII")
MAX_SLICES = 255
_MAX_VARINT = 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(view: memoryview, pos: int, end: int, what: str) -> tuple[int, int]:
    """(value, next position); minimal encodings below 2^32 only."""
    value = 0
    for k in range(_MAX_VARINT):
        if pos + k >= end:
            raise EntropyDecodeError(f"ZVCP {what}: header ends inside a varint (truncated)")
        byte = view[pos + k]
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            if k and byte == 0:
                raise EntropyDecodeError(f"ZVCP {what}: varint with a redundant trailing byte")
            if value >= 1 << 32:
                raise EntropyDecodeError(f"ZVCP {what}: varint {value} does not fit 32 bits")
            return value, pos + k + 1
    raise EntropyDecodeError(f"ZVCP {what}: varint longer than {_MAX_VARINT} bytes")


def pack(row_ranges: list[tuple[int, int]], slices: list[bytes], version: int = VERSION) -> bytes:
    """Slices (rows [r0, r1) each, contiguous from row 0) -> one payload."""
    if version == VERSION_SPEC:
        parts = [HEADER.pack(MAGIC, VERSION_SPEC, len(slices), 0)]
        off = 0
        for (r0, r1), data in zip(row_ranges, slices):
            parts.append(SLICE.pack(r0, r1 - r0, off, len(data)))
            off += len(data)
    elif version == VERSION_COMPACT:
        parts = [HEADER_COMPACT.pack(MAGIC, VERSION_COMPACT, len(slices))]
        row = 0
        for (r0, r1), data in zip(row_ranges, slices):
            if r0 != row or r1 <= r0:
                raise ValueError(f"ZVCP version 2 slices must be contiguous from row 0: got rows {r0}..{r1}")
            parts.append(_varint(r1 - r0) + _varint(len(data)))
            row = r1
    else:
        raise ValueError(f"ZVCP version {version} is not one of {VERSIONS}")
    return b"".join(parts + list(slices))


def parse(buf: bytes | memoryview, height: int | None = None, offset: int = 0):
    """Validate a payload at buf[offset:]; returns (row_starts, row_ends, data_starts, sizes, total).

    data_starts are absolute positions in buf. With height given, rows must cover [0, height).
    """
    view = memoryview(buf)
    end = len(view)
    avail = end - offset
    if avail < HEADER_COMPACT.size:
        raise EntropyDecodeError(f"ZVCP payload: {avail} bytes, shorter than its header")
    magic, version, count = HEADER_COMPACT.unpack_from(view, offset)
    if magic != MAGIC:
        raise EntropyDecodeError(f"ZVCP payload: bad magic {bytes(magic)!r} (expected b'ZVCP')")
    if version == VERSION_CHAIN:
        raise EntropyDecodeError("ZVCP payload: version 3 (a chain of tensors) where one sliced tensor belongs")
    if version not in VERSIONS:
        raise EntropyDecodeError(f"ZVCP payload: unknown version {version} (this decoder reads 1, 2 and 3)")
    if count == 0:
        raise EntropyDecodeError("ZVCP payload: slice count is 0")
    rows = np.empty(count, np.int64)
    sz = np.empty(count, np.int64)
    if version == VERSION_SPEC:
        if avail < HEADER.size:
            raise EntropyDecodeError(f"ZVCP payload: {avail} bytes, shorter than its 8-byte header")
        reserved = HEADER.unpack_from(view, offset)[3]
        if reserved != 0:
            raise EntropyDecodeError(f"ZVCP payload: reserved field is {reserved}, must be 0")
        head = HEADER.size + SLICE.size * count
        if avail < head:
            raise EntropyDecodeError(f"ZVCP payload: {count} slice headers need {head} bytes, only {avail} present")
        row = data_pos = 0
        for i in range(count):
            r0, n, doff, dsize = SLICE.unpack_from(view, offset + HEADER.size + SLICE.size * i)
            if r0 != row or n == 0:
                raise EntropyDecodeError(
                    f"ZVCP slice {i}: start_row {r0}/num_rows {n}, expected start_row {row}, rows > 0")
            if doff != data_pos:
                raise EntropyDecodeError(f"ZVCP slice {i}: data_offset {doff}, expected {data_pos} (slices are contiguous)")
            rows[i], sz[i] = n, dsize
            row += n
            data_pos += dsize
    else:
        pos = offset + HEADER_COMPACT.size
        for i in range(count):
            n, pos = _read_varint(view, pos, end, f"slice {i} num_rows")
            if n == 0:
                raise EntropyDecodeError(f"ZVCP slice {i}: num_rows 0, rows > 0")
            rows[i] = n
            sz[i], pos = _read_varint(view, pos, end, f"slice {i} data_size")
        head = pos - offset
    re_ = np.cumsum(rows)
    rs = re_ - rows
    if height is not None and re_[-1] != height:
        raise EntropyDecodeError(f"ZVCP payload: slices cover {int(re_[-1])} rows, the tensor has {height}")
    ds = offset + head + np.cumsum(sz) - sz
    total = head + int(sz.sum())
    if total > avail:
        raise EntropyDecodeError(f"ZVCP payload: needs {total} bytes, only {avail} present (truncated)")
    return rs, re_, ds, sz, total


def pack_chain(parts: int, stream: bytes) -> bytes:
    """A version-3 payload: ``parts`` tensors coded in one rANS stream."""
    if not 1 <= parts <= 255:
        raise ValueError(f"a chain has 1..255 parts, not {parts}")
    return HEADER_COMPACT.pack(MAGIC, VERSION_CHAIN, parts) + _varint(len(stream)) + stream


def parse_chain(buf: bytes | memoryview, offset: int = 0) -> tuple[int, int, int, int]:
    """Validate a version-3 payload at buf[offset:]; returns (parts, stream start, stream size, total)."""
    view = memoryview(buf)
    avail = len(view) - offset
    if avail < HEADER_COMPACT.size:
        raise EntropyDecodeError(f"ZVCP payload: {avail} bytes, shorter than its header")
    magic, version, parts = HEADER_COMPACT.unpack_from(view, offset)
    if magic != MAGIC:
        raise EntropyDecodeError(f"ZVCP payload: bad magic {bytes(magic)!r} (expected b'ZVCP')")
    if version != VERSION_CHAIN:
        raise EntropyDecodeError(f"ZVCP payload: version {version} where a chain (version 3) belongs")
    if parts == 0:
        raise EntropyDecodeError("ZVCP chain: part count is 0")
    size, start = _read_varint(view, offset + HEADER_COMPACT.size, len(view), "chain stream size")
    total = start - offset + size
    if total > avail:
        raise EntropyDecodeError(f"ZVCP chain: needs {total} bytes, only {avail} present (truncated)")
    return parts, start, size, total


def payload_size(buf: bytes | memoryview, offset: int = 0) -> int:
    """Total length of the ZVCP payload (any version) starting at offset (validated)."""
    if is_chain(buf, offset):
        return parse_chain(buf, offset)[3]
    return int(parse(buf, None, offset)[4])


def is_chain(buf: bytes | memoryview, offset: int = 0) -> bool:
    """Whether the payload at offset says it is a chain (version 3); validated when read."""
    view = memoryview(buf)
    return len(view) - offset > 4 and bytes(view[offset : offset + 4]) == MAGIC and view[offset + 4] == VERSION_CHAIN
