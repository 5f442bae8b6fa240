"""Tensor <-> ZVCP payload with a CdfTable: the validated front door to the kernels.

    encode_gaussian(symbols, scale_index)  /  decode_gaussian(data, scale_index)
    encode_factorized(symbols, table)      /  decode_factorized(data, table, shape)
"""

from __future__ import annotations

import numba
import numpy as np

from zvc69_rt.entropy import rans, zvcp
from zvc69_rt.entropy.gaussian import gaussian_table
from zvc69_rt.entropy.tables import CdfTable
from zvc69_rt.errors import EntropyDecodeError

MAX_SYMBOLS = 1 << 28  # 8192x8192 at /16 with 192 channels is ~50M; this is a sanity cap
MIN_ROWS_PER_SLICE = 4


def auto_slices(height: int) -> int:
    """About two slices per core, at least MIN_ROWS_PER_SLICE rows each."""
    n = 2 * numba.get_num_threads()
    return int(max(1, min(n, height // MIN_ROWS_PER_SLICE, zvcp.MAX_SLICES)))


def _row_ranges(height: int, n: int) -> list[tuple[int, int]]:
    n = max(1, min(n, height, zvcp.MAX_SLICES))
    edges = [round(i * height / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def _check_shape(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"{what}: expected a non-empty [C, H, W] tensor, got shape {tuple(shape)}")
    if int(np.prod(shape, dtype=np.int64)) > MAX_SYMBOLS:
        raise ValueError(f"{what}: {tuple(shape)} has more than {MAX_SYMBOLS} symbols")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def _encode(symbols: np.ndarray, idx: np.ndarray, per_channel: bool, table: CdfTable,
            num_slices: int | None) -> bytes:
    c, h, w = _check_shape(symbols.shape, "encode")
    sym = np.ascontiguousarray(symbols, dtype=np.int32)
    ranges = _row_ranges(h, num_slices or auto_slices(h))
    rs = np.array([r[0] for r in ranges], np.int64)
    re_ = np.array([r[1] for r in ranges], np.int64)
    cap = max(r1 - r0 for r0, r1 in ranges) * c * w * rans.MAX_BYTES_PER_SYMBOL + 8
    scratch = np.empty((len(ranges), cap), dtype=np.uint8)
    starts = rans.encode_slices(sym, idx, per_channel, table.cdf, table.cdf_length,
                                table.offset.astype(np.int64), rs, re_, scratch)
    slices = [scratch[i, starts[i]:].tobytes() for i in range(len(ranges))]
    return zvcp.pack(ranges, slices)


def _decode(data: bytes | memoryview, shape: tuple[int, int, int], idx: np.ndarray, per_channel: bool,
            table: CdfTable) -> np.ndarray:
    c, h, w = _check_shape(shape, "decode")
    rs, re_, ds, sz, total = zvcp.parse(data, h)
    if total != len(data):
        raise EntropyDecodeError(f"ZVCP payload is {total} bytes but {len(data)} were given")
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((c, h, w), dtype=np.int32)
    status = rans.decode_slices(buf, ds, sz, idx, per_channel, table.cdf, table.cdf_length,
                                table.offset.astype(np.int64), rs, re_, out)
    bad = np.flatnonzero(status)
    if bad.size:
        i = int(bad[0])
        raise EntropyDecodeError(f"ZVCP slice {i} (rows {rs[i]}..{re_[i] - 1}): {rans.STATUS_TEXT[int(status[i])]}")
    return out


def _check_index(scale_index: np.ndarray, rows: int) -> np.ndarray:
    idx = np.ascontiguousarray(scale_index, dtype=np.uint8)
    if idx.size and int(idx.max()) >= rows:
        raise ValueError(f"scale index {int(idx.max())} out of range (table has {rows} rows)")
    return idx


def encode_gaussian(symbols: np.ndarray, scale_index: np.ndarray, num_slices: int | None = None) -> bytes:
    """symbols = round(y - mean) int32[C,H,W]; scale_index uint8[C,H,W] -> ZVCP payload."""
    if symbols.shape != scale_index.shape:
        raise ValueError(f"symbols {symbols.shape} and scale_index {scale_index.shape} differ")
    table = gaussian_table()
    return _encode(symbols, _check_index(scale_index, table.rows), False, table, num_slices)


def decode_gaussian(data: bytes | memoryview, scale_index: np.ndarray) -> np.ndarray:
    table = gaussian_table()
    idx = _check_index(scale_index, table.rows)
    return _decode(data, idx.shape, idx, False, table)


_DUMMY_INDEX = np.zeros((1, 1, 1), dtype=np.uint8)


def encode_factorized(symbols: np.ndarray, table: CdfTable, num_slices: int | None = None) -> bytes:
    """Channel k coded with table row k (the hyperprior's factorized prior)."""
    if symbols.ndim != 3 or symbols.shape[0] > table.rows:
        raise ValueError(f"factorized: {symbols.shape[0] if symbols.ndim == 3 else '?'} channels, "
                         f"table has {table.rows} rows")
    return _encode(symbols, _DUMMY_INDEX, True, table, num_slices)


def decode_factorized(data: bytes | memoryview, table: CdfTable, shape: tuple[int, int, int]) -> np.ndarray:
    if len(shape) != 3 or shape[0] > table.rows:
        raise EntropyDecodeError(f"factorized: shape {tuple(shape)} needs more than the table's {table.rows} rows")
    return _decode(data, tuple(shape), _DUMMY_INDEX, True, table)


def warmup() -> None:
    """Compile or load every kernel so a service's first request does not pay for it."""
    sym = np.zeros((2, 8, 4), np.int32)
    sym[0, 0, 0] = 1 << 20
    idx = np.zeros((2, 8, 4), np.uint8)
    decode_gaussian(encode_gaussian(sym, idx, 2), idx)
    t = CdfTable.from_pmfs([np.array([0.5, 0.5])] * 2, np.zeros(2, np.int32))
    decode_factorized(encode_factorized(sym, t, 2), t, sym.shape)
