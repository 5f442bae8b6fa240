"""Legacy sequential format: one raw rANS stream for the whole tensor, no header.

The payload is exactly one slice stream (see rans.py) covering all rows, coded on one
thread. It is not self-delimiting: the caller must know its length (payload_size
cannot find it) and the tensor shape. Kept for readers of the spec's sequential
format and as the single-thread baseline; new streams use ZVCP.
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.entropy import coder
from zvc69_rt.entropy.gaussian import gaussian_table
from zvc69_rt.entropy.tables import CdfTable


def encode_legacy(symbols: np.ndarray, index: np.ndarray | None, table: CdfTable) -> bytes:
    """Symbols [C,H,W] with rows from index (None: row = channel) -> raw rANS bytes."""
    _, slices = coder.encode_slices(symbols, index, table, 1)
    return slices[0]


def decode_legacy(data: bytes | memoryview, shape: tuple[int, int, int], index: np.ndarray | None,
                  table: CdfTable) -> np.ndarray:
    """Raw rANS bytes (all of data) -> int32[shape]. Raises EntropyDecodeError."""
    (c, h, w), index = coder.decode_target(shape, index, table, "legacy decode")
    size = len(memoryview(data))
    one = np.zeros(1, np.int64)
    return coder.decode_ranges(data, one, np.array([size], np.int64), one, np.array([h], np.int64),
                               (c, h, w), index, table, "legacy stream")


def encode_gaussian_legacy(symbols: np.ndarray, scale_index: np.ndarray) -> bytes:
    """Gaussian conditional, legacy sequential format."""
    return encode_legacy(symbols, scale_index, gaussian_table())


def decode_gaussian_legacy(data: bytes | memoryview, scale_index: np.ndarray) -> np.ndarray:
    return decode_legacy(data, np.shape(scale_index), scale_index, gaussian_table())


def encode_factorized_legacy(symbols: np.ndarray, table: CdfTable) -> bytes:
    """Factorized prior (row = channel), legacy sequential format."""
    return encode_legacy(symbols, None, table)


def decode_factorized_legacy(data: bytes | memoryview, table: CdfTable, shape: tuple[int, int, int]) -> np.ndarray:
    return decode_legacy(data, tuple(shape), None, table)


__all__ = ["decode_factorized_legacy", "decode_gaussian_legacy", "decode_legacy", "encode_factorized_legacy",
           "encode_gaussian_legacy", "encode_legacy", ]
