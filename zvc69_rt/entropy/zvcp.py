"""ZVCP: the self-describing sliced entropy payload (spec "Parallel Format").

    "ZVCP" | version u8 = 1 | slice count u8 | reserved u16 = 0
    slice headers, 16 bytes each: start_row u32, num_rows u32, data_offset u32, data_size u32
    slice data, concatenated (data_offset is relative to the start of this section)

Little-endian. Slices partition the tensor's rows [0, H) in order; we write them
contiguously, and the parser insists on it, so a payload's total length follows from
its header alone (payload_size) and payloads can be concatenated without prefixes.
"""

from __future__ import annotations

import struct

import numpy as np

from zvc69_rt.errors import EntropyDecodeError

MAGIC = b"ZVCP"
VERSION = 1
HEADER = struct.Struct("<4sBBH")
SLICE = struct.Struct("<IIII")
MAX_SLICES = 255


def pack(row_ranges: list[tuple[int, int]], slices: list[bytes]) -> bytes:
    parts = [HEADER.pack(MAGIC, VERSION, len(slices), 0)]
    off = 0
    for (r0, r1), data in zip(row_ranges, slices):
        parts.append(SLICE.pack(r0, r1 - r0, off, len(data)))
        off += len(data)
    return b"".join(parts + list(slices))


def parse(buf: bytes | memoryview, height: int | None = None, offset: int = 0):
    """Validate a payload at buf[offset:]; returns (row_starts, row_ends, data_starts, sizes, total).

    data_starts are absolute positions in buf. With height given, rows must cover [0, height).
    """
    view = memoryview(buf)
    avail = len(view) - offset
    if avail < HEADER.size:
        raise EntropyDecodeError(f"ZVCP payload: {avail} bytes, shorter than its 8-byte header")
    magic, version, count, reserved = HEADER.unpack_from(view, offset)
    if magic != MAGIC:
        raise EntropyDecodeError(f"ZVCP payload: bad magic {bytes(magic)!r} (expected b'ZVCP')")
    if version != VERSION:
        raise EntropyDecodeError(f"ZVCP payload: unknown version {version} (this decoder reads {VERSION})")
    if count == 0:
        raise EntropyDecodeError("ZVCP payload: slice count is 0")
    if reserved != 0:
        raise EntropyDecodeError(f"ZVCP payload: reserved field is {reserved}, must be 0")
    head = HEADER.size + SLICE.size * count
    if avail < head:
        raise EntropyDecodeError(f"ZVCP payload: {count} slice headers need {head} bytes, only {avail} present")
    rs, re_, ds, sz = (np.empty(count, np.int64) for _ in range(4))
    row = 0
    data_pos = 0
    for i in range(count):
        r0, n, doff, dsize = SLICE.unpack_from(view, offset + HEADER.size + SLICE.size * i)
        if r0 != row or n == 0:
            raise EntropyDecodeError(f"ZVCP slice {i}: start_row {r0}/num_rows {n}, expected start_row {row}, rows > 0")
        if doff != data_pos:
            raise EntropyDecodeError(f"ZVCP slice {i}: data_offset {doff}, expected {data_pos} (slices are contiguous)")
        rs[i], re_[i], ds[i], sz[i] = r0, r0 + n, offset + head + doff, dsize
        row += n
        data_pos += dsize
    if height is not None and row != height:
        raise EntropyDecodeError(f"ZVCP payload: slices cover {row} rows, the tensor has {height}")
    total = head + data_pos
    if total > avail:
        raise EntropyDecodeError(f"ZVCP payload: needs {total} bytes, only {avail} present (truncated)")
    return rs, re_, ds, sz, total


def payload_size(buf: bytes | memoryview, offset: int = 0) -> int:
    """Total length of the ZVCP payload starting at offset (validated)."""
    return int(parse(buf, None, offset)[4])
