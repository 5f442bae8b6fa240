"""Factorized prior (hyperprior latents z): one CDF row per channel, tables from the model.

Row k of the CdfTable codes channel k; the bundle ships the integer tables
(z_cdf, z_cdf_length, z_offset), so encoder and decoder use identical integers.
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.entropy import coder
from zvc69_rt.entropy.tables import CdfTable


def encode_factorized(symbols: np.ndarray, table: CdfTable, num_slices: int | None = None) -> bytes:
    """int32[C,H,W] (channel k coded with table row k, C <= table.rows) -> ZVCP payload."""
    return coder.encode(symbols, None, table, num_slices)


def decode_factorized(data: bytes | memoryview, table: CdfTable, shape: tuple[int, int, int]) -> np.ndarray:
    """ZVCP payload -> int32[shape]; raises EntropyDecodeError if it does not decode exactly."""
    return coder.decode(data, tuple(shape), None, table)
