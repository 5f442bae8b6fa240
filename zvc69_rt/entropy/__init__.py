"""Entropy coding: numba rANS over 16-bit CDF tables, in sliced ZVCP payloads.

    symbols int32[C,H,W] + table rows (Gaussian scale index, or channel for the
    factorized prior) --rANS, one stream per row slice, prange--> ZVCP payload
    small tensors decoded in turn (hyperprior, then latent) --one rANS stream--> ZVCP chain

See docs/ENTROPY.md for the stream layout, the tables and the measured speed.
"""

from zvc69_rt.entropy.chain import ChainReader, PartsReader, encode_chain, encode_parts
from zvc69_rt.entropy.coder import auto_slices, one_slice, warmup
from zvc69_rt.entropy.factorized import decode_factorized, encode_factorized
from zvc69_rt.entropy.gaussian import (
    NUM_SCALES,
    SCALE_BOUND,
    SCALE_TABLE,
    decode_gaussian,
    encode_gaussian,
    gaussian_table,
    scale_to_index,
)
from zvc69_rt.entropy.legacy import (
    decode_factorized_legacy,
    decode_gaussian_legacy,
    encode_factorized_legacy,
    encode_gaussian_legacy,
)
from zvc69_rt.entropy.tables import PRECISION, CdfTable
from zvc69_rt.entropy.zvcp import is_chain, payload_size

__all__ = [
    "NUM_SCALES",
    "PRECISION",
    "SCALE_BOUND",
    "SCALE_TABLE",
    "CdfTable",
    "ChainReader",
    "PartsReader",
    "auto_slices",
    "decode_factorized",
    "decode_factorized_legacy",
    "decode_gaussian",
    "decode_gaussian_legacy",
    "encode_chain",
    "encode_factorized",
    "encode_factorized_legacy",
    "encode_gaussian",
    "encode_gaussian_legacy",
    "encode_parts",
    "gaussian_table",
    "is_chain",
    "one_slice",
    "payload_size",
    "scale_to_index",
    "warmup",
]
