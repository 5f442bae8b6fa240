"""Entropy coding: numba rANS over 16-bit CDF tables, in sliced ZVCP payloads.

    symbols int32[C,H,W] + table rows (Gaussian scale index, or channel for the
    factorized prior) --rANS, one stream per row slice, prange--> ZVCP payload
"""

from zvc69_rt.entropy.coder import (
    auto_slices,
    decode_factorized,
    decode_gaussian,
    encode_factorized,
    encode_gaussian,
    warmup,
)
from zvc69_rt.entropy.gaussian import NUM_SCALES, SCALE_BOUND, SCALE_TABLE, gaussian_table, scale_to_index
from zvc69_rt.entropy.tables import PRECISION, CdfTable
from zvc69_rt.entropy.zvcp import payload_size

__all__ = [
    "CdfTable", "NUM_SCALES", "PRECISION", "SCALE_BOUND", "SCALE_TABLE", "auto_slices", "decode_factorized",
    "decode_gaussian", "encode_factorized", "encode_gaussian", "gaussian_table", "payload_size",
    "scale_to_index", "warmup",
]
