"""Tensor <-> ZVCP payload with any CdfTable: the validated front door to the kernels.

    symbols int32[C,H,W] + a table row per symbol (idx[c,h,w], or c for per_channel)
        --rANS, one stream per row slice, prange-->  ZVCP payload

Everything a kernel reads is validated here first (shapes, table rows, slice headers),
because numba does not check bounds. Models (gaussian.py, factorized.py) sit on top.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from zvc69_rt.entropy import rans, zvcp
from zvc69_rt.entropy.tables import CdfTable
from zvc69_rt.errors import EntropyDecodeError

MAX_SYMBOLS = 1 << 28  # 8192x8192 at /16 with 192 channels is ~50M; this is a sanity cap
MIN_ROWS_PER_SLICE = 4
SYMBOLS_PER_SLICE = 1 << 18

# numba's workqueue threading layer aborts on concurrent parallel calls; serialise them
# (the kernels release the GIL, so other Python threads keep running meanwhile).
_KERNEL_LOCK = threading.Lock()


def auto_slices(height: int, symbols: int) -> int:
    """One slice per SYMBOLS_PER_SLICE symbols (at least MIN_ROWS_PER_SLICE rows each, at most 255).

    A function of the tensor alone, so a stream's bytes do not depend on the machine that
    wrote it. Each slice cost 24 bytes in ZVCP version 1 (16 of header, 8 of rANS state;
    version 2: 2-10 + 8): slicing by thread count spent 4 slices (~100 bytes) on every
    payload of a 2-core machine and 32 (~770 bytes) on a 16-core one, ~10 % of a 640x272
    P-frame. 2^18 symbols is ~1.7 ms of decode on one core (~150 Msym/s, docs/ENTROPY.md):
    a 1080p I-frame latent (1.57 M) gets 6 slices, a 4K one 24."""
    n = -(-int(symbols) // SYMBOLS_PER_SLICE)
    return int(max(1, min(n, height // MIN_ROWS_PER_SLICE, zvcp.MAX_SLICES)))


def one_slice(shape: tuple[int, ...], num_slices: int | None = None) -> bool:
    """Whether a [C, H, W] tensor is coded as one ZVCP slice (with num_slices, or auto_slices):
    then a chain of it and the tensors before it gives up no parallelism."""
    c, h, w = (int(s) for s in shape)
    return min(int(num_slices) if num_slices else auto_slices(h, c * h * w), h) == 1


def row_ranges(height: int, n: int) -> list[tuple[int, int]]:
    """Split [0, height) into n near-equal row ranges (n clamped to 1..min(height, 255))."""
    n = max(1, min(int(n), height, zvcp.MAX_SLICES))
    edges = [(i * height) // n for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def check_shape(shape: tuple[int, ...], what: str, error: type[Exception] = ValueError) -> tuple[int, int, int]:
    """A non-empty [C, H, W] shape with at most MAX_SYMBOLS symbols."""
    if len(shape) != 3 or min(int(s) for s in shape) <= 0:
        raise error(f"{what}: expected a non-empty [C, H, W] tensor, got shape {tuple(shape)}")
    if int(np.prod(shape, dtype=np.int64)) > MAX_SYMBOLS:
        raise error(f"{what}: {tuple(shape)} has more than {MAX_SYMBOLS} symbols")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def check_index(index: np.ndarray, rows: int, what: str) -> np.ndarray:
    """uint8 [C,H,W] table-row indexes, every one < rows."""
    idx = np.asarray(index)
    if idx.dtype != np.uint8:
        if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() > 255):
            raise ValueError(f"{what}: scale_index must be uint8 (got {idx.dtype})")
        idx = idx.astype(np.uint8)
    idx = np.ascontiguousarray(idx)
    if idx.size and int(idx.max()) >= rows:
        raise ValueError(f"{what}: scale index {int(idx.max())} out of range (table has {rows} rows)")
    return idx


def _as_symbols(symbols: np.ndarray) -> np.ndarray:
    sym = np.asarray(symbols)
    if not np.issubdtype(sym.dtype, np.integer):
        raise ValueError(f"symbols must be integers (got {sym.dtype}); round(y - mean) first")
    if sym.dtype != np.int32:
        info = np.iinfo(np.int32)
        if sym.size and (sym.min() < info.min or sym.max() > info.max):
            raise ValueError("symbols must fit in int32")
    return np.ascontiguousarray(sym, dtype=np.int32)


_DUMMY_INDEX = np.zeros(1, dtype=np.uint8)


def encode_target(symbols: np.ndarray, index: np.ndarray | None, table: CdfTable,
                  what: str) -> tuple[np.ndarray, np.ndarray]:
    """What an encoder kernel may trust (it indexes without bounds checks): int32 [C,H,W]
    symbols and their flat table rows (index None: one row per channel, which the table must
    have; else uint8 rows of the symbols' shape, each < table.rows)."""
    sym = _as_symbols(symbols)
    c, _, _ = check_shape(sym.shape, what)
    if index is None:
        if c > table.rows:
            raise ValueError(f"{what}: {c} channels, the table has {table.rows} rows")
        return sym, _DUMMY_INDEX
    idx = check_index(index, table.rows, what)
    if idx.shape != sym.shape:
        raise ValueError(f"{what}: symbols {sym.shape} and index {idx.shape} differ")
    return sym, idx.reshape(-1)


def encode_slices(symbols: np.ndarray, index: np.ndarray | None, table: CdfTable,
                  num_slices: int | None) -> tuple[list[tuple[int, int]], list[bytes]]:
    """Code symbols [C,H,W] (rows from index, or channel c when index is None) per row slice."""
    sym, idx1 = encode_target(symbols, index, table, "encode")
    per_channel = index is None
    c, h, w = sym.shape
    ranges = row_ranges(h, num_slices if num_slices else auto_slices(h, c * h * w))
    lo = np.array([r0 * w for r0, _ in ranges], np.int64)
    hi = np.array([r1 * w for _, r1 in ranges], np.int64)
    cap = max(r1 - r0 for r0, r1 in ranges) * c * w * rans.MAX_BYTES_PER_SYMBOL + rans.STATE_BYTES
    scratch = np.empty((len(ranges), cap), dtype=np.uint8)
    a = table.coder_arrays()
    with _KERNEL_LOCK:
        if len(ranges) == 1:  # no thread hand-off for a single slice (legacy, small tensors)
            starts = np.array([rans.encode_one(sym.reshape(-1), idx1, per_channel, a.rinfo, a.enc, lo[0], hi[0],
                                               c, h * w, scratch[0])])
        else:
            with numba.parallel_chunksize(1):  # hand slices out one at a time: balances busy cores
                starts = rans.encode_slices(sym.reshape(-1), idx1, per_channel, a.rinfo, a.enc, lo, hi, c, h * w,
                                            scratch)
    return ranges, [scratch[i, starts[i]:].tobytes() for i in range(len(ranges))]


def encode(symbols: np.ndarray, index: np.ndarray | None, table: CdfTable, num_slices: int | None) -> bytes:
    """Symbols -> ZVCP payload."""
    ranges, slices = encode_slices(symbols, index, table, num_slices)
    return zvcp.pack(ranges, slices, zvcp.VERSION)  # looked up per call: tests write version 1


def decode_target(shape: tuple[int, int, int], index: np.ndarray | None, table: CdfTable,
                  what: str) -> tuple[tuple[int, int, int], np.ndarray | None]:
    """The shape and table-row index a decoder may trust (the kernels index without bounds
    checks): index None = one row per channel, which the table must have; else uint8 rows of
    exactly that shape, each < table.rows."""
    c, h, w = check_shape(tuple(shape), what, EntropyDecodeError)
    if index is None:
        if c > table.rows:
            raise EntropyDecodeError(f"{what}: shape {(c, h, w)} needs more than the table's {table.rows} rows")
        return (c, h, w), None
    idx = check_index(index, table.rows, what)
    if idx.shape != (c, h, w):
        raise EntropyDecodeError(f"{what}: index {idx.shape} for shape {(c, h, w)}")
    return (c, h, w), idx


def decode(data: bytes | memoryview, shape: tuple[int, int, int], index: np.ndarray | None,
           table: CdfTable) -> np.ndarray:
    """ZVCP payload (exactly, no trailing bytes) -> int32 [C,H,W]. Raises EntropyDecodeError."""
    (c, h, w), index = decode_target(shape, index, table, "decode")
    rs, re_, ds, sz, total = zvcp.parse(data, h)
    if total != len(data):
        raise EntropyDecodeError(f"ZVCP payload is {total} bytes but {len(data)} were given")
    return decode_ranges(data, ds, sz, rs, re_, (c, h, w), index, table, "ZVCP slice")


def decode_ranges(data: bytes | memoryview, ds: np.ndarray, sz: np.ndarray, rs: np.ndarray, re_: np.ndarray,
                  shape: tuple[int, int, int], index: np.ndarray | None, table: CdfTable,
                  what: str) -> np.ndarray:
    """Run the decoder on validated slices (absolute data starts ds, sizes sz, rows [rs, re_))."""
    c, h, w = shape
    buf = np.frombuffer(data, dtype=np.uint8)
    if len(ds) and int((ds + sz).max()) > buf.size:
        raise EntropyDecodeError(f"{what}: slice data runs past the end of the payload")
    per_channel = index is None
    idx1 = _DUMMY_INDEX if per_channel else index.reshape(-1)
    out = np.empty(c * h * w, dtype=np.int32)
    a = table.coder_arrays()
    with _KERNEL_LOCK:
        if len(ds) == 1:
            status = np.array([rans.decode_one(buf, ds[0], sz[0], idx1, per_channel, a.rinfo, a.cdf, a.lut,
                                               rs[0] * w, re_[0] * w, c, h * w, out)])
        else:
            with numba.parallel_chunksize(1):
                status = rans.decode_slices(buf, ds, sz, idx1, per_channel, a.rinfo, a.cdf, a.lut,
                                            rs * w, re_ * w, c, h * w, out)
    bad = np.flatnonzero(status)
    if bad.size:
        i = int(bad[0])
        raise EntropyDecodeError(f"{what} {i} (rows {rs[i]}..{re_[i] - 1}): {rans.STATUS_TEXT[int(status[i])]}")
    return out.reshape(c, h, w)


def warmup() -> None:
    """Compile or load every kernel so a service's first request does not pay for it."""
    from zvc69_rt.entropy import factorized, gaussian, legacy

    sym = np.zeros((2, 8, 3), np.int32)
    sym[0, 0, 0] = 1 << 20
    sym[1, 7, 2] = -(1 << 31)
    idx = np.zeros(sym.shape, np.uint8)
    gaussian.decode_gaussian(gaussian.encode_gaussian(sym, idx, 2), idx)
    t = CdfTable.from_pmfs([np.array([0.5, 0.5])] * 2, np.zeros(2, np.int32))
    factorized.decode_factorized(factorized.encode_factorized(sym, t, 2), t, sym.shape)
    legacy.decode_gaussian_legacy(legacy.encode_gaussian_legacy(sym, idx), idx)
    from zvc69_rt.entropy.chain import ChainReader, encode_chain

    reader = ChainReader(encode_chain([(sym, None, t), (sym, idx, gaussian.gaussian_table())]))
    reader.decode(t, sym.shape)
    reader.decode(gaussian.gaussian_table(), sym.shape, idx)
    reader.finish()
