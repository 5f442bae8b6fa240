"""Checksums of the container: CRC-16/CCITT-FALSE per frame, CRC-32 in the trailer.

CRC-16/CCITT-FALSE is poly 0x1021, init 0xFFFF, no reflection, no final xor; that is
exactly what ``binascii.crc_hqx`` computes when seeded with 0xFFFF, so we use the C
implementation (a pure-Python table loop is ~100x slower on megabyte frames).
"""

from __future__ import annotations

import binascii
import zlib

CRC16_INIT = 0xFFFF


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``; pass the previous value as ``crc`` to continue."""
    return binascii.crc_hqx(data, crc)


def crc32(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32 (zlib/ISO-HDLC) of ``data``; pass the previous value to continue."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF
