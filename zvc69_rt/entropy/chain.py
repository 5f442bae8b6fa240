"""Chains: small tensors decoded one after the other in one rANS stream (ZVCP version 3).

A P-frame residual is a hyperprior z and the latent y whose tables z selects; at low rates
on 640x272 they are 40-90 and 60-270 bytes, and as two sliced payloads each paid a header
and a state flush (~16 bytes, docs/ENTROPY.md "ZVCP"). A chain codes them as one stream: the
encoder codes the parts last first and carries the two rANS states across them, the
decoder takes them in order, computing each part's tables from the parts before it::

    encode_chain([(z, None, z_table), (y, y_index, gaussian_table)])  -> ZVCP v3 payload
    reader = ChainReader(payload)
    z = reader.decode(z_table, z_shape)            # factorized: row = channel
    y = reader.decode(gaussian_table, y_shape, index_from(z))
    reader.finish()                                # every part, every byte, final states

One stream cannot be sliced, so chains are for tensors small enough to be one slice anyway
(the caller decides; coder.one_slice says when). encode_parts and PartsReader take either form,
so a codec writes one path for both. Everything a kernel reads is validated
first, as in coder.py.
"""

from __future__ import annotations

import numpy as np

from zvc69_rt.entropy import coder, rans, zvcp
from zvc69_rt.entropy.tables import CdfTable
from zvc69_rt.errors import EntropyDecodeError

ChainPart = tuple[np.ndarray, "np.ndarray | None", CdfTable]  # symbols, table rows (None: channel), table


def encode_chain(parts: list[ChainPart]) -> bytes:
    """Tensors (symbols [C,H,W], rows [C,H,W] or None for row = channel, table) -> one payload."""
    checked = [coder.encode_target(s, i, t, f"chain part {k}") for k, (s, i, t) in enumerate(parts)]
    total = sum(sym.size for sym, _ in checked)
    if total > coder.MAX_SYMBOLS:
        raise ValueError(f"chain: {total} symbols, more than {coder.MAX_SYMBOLS}")
    out = np.empty(total * rans.MAX_BYTES_PER_SYMBOL + rans.STATE_BYTES, dtype=np.uint8)
    pos, xa, xb = np.int64(out.size), np.int64(rans.RANS_L), np.int64(rans.RANS_L)
    for (sym, idx), (_, index, table) in zip(reversed(checked), reversed(parts)):
        a = table.coder_arrays()
        c, h, w = sym.shape
        pos, xa, xb = rans.encode_part(sym.reshape(-1), idx, index is None, a.rinfo, a.enc, c, h * w, out, pos, xa,
                                       xb)
    start = rans.flush_states(out, pos, xa, xb)
    return zvcp.pack_chain(len(parts), out[start:].tobytes())


class ChainReader:
    """Decodes the parts of a chain payload (exactly ``data``, no trailing bytes) in order."""

    def __init__(self, data: bytes | memoryview):
        self.parts, start, size, total = zvcp.parse_chain(data)
        if total != len(memoryview(data)):
            raise EntropyDecodeError(
                f"ZVCP chain: data is {len(memoryview(data))} bytes but its payloads account for {total}")
        if size < rans.STATE_BYTES:
            raise EntropyDecodeError(f"ZVCP chain: stream of {size} bytes, shorter than its rANS states")
        self._buf = np.frombuffer(data, dtype=np.uint8)
        self._end = start + size
        self._p = start + rans.STATE_BYTES
        head = bytes(self._buf[start : self._p])
        self._xa = np.int64(int.from_bytes(head[:4], "little"))
        self._xb = np.int64(int.from_bytes(head[4:], "little"))
        if not all(rans.RANS_L <= x < rans.RANS_L << 8 for x in (self._xa, self._xb)):
            raise EntropyDecodeError("ZVCP chain: initial rANS state out of range (corrupt)")
        self.decoded = 0

    def decode(self, table: CdfTable, shape: tuple[int, int, int], index: np.ndarray | None = None) -> np.ndarray:
        """The next part: int32 [C,H,W] with rows from index (None: row = channel)."""
        what = f"ZVCP chain part {self.decoded}"
        if self.decoded >= self.parts:
            raise EntropyDecodeError(f"{what}: the chain has only {self.parts} parts")
        (c, h, w), checked = coder.decode_target(shape, index, table, what)
        idx = coder._DUMMY_INDEX if checked is None else checked.reshape(-1)
        out = np.empty(c * h * w, dtype=np.int32)
        a = table.coder_arrays()
        status, self._p, self._xa, self._xb = rans.decode_part(
            self._buf, self._p, self._end - 1, idx, index is None, a.rinfo, a.cdf, a.lut, c, h * w, out,
            self._xa, self._xb)
        if status != rans.OK:
            raise EntropyDecodeError(f"{what}: {rans.STATUS_TEXT[int(status)]}")
        self.decoded += 1
        return out.reshape(c, h, w)

    def finish(self) -> None:
        """Every part decoded, every byte consumed, both states back where the encoder began."""
        if self.decoded != self.parts:
            raise EntropyDecodeError(f"ZVCP chain: {self.decoded} of {self.parts} parts decoded")
        if self._p != self._end or self._xa != rans.RANS_L or self._xb != rans.RANS_L:
            raise EntropyDecodeError(f"ZVCP chain: {rans.STATUS_TEXT[rans.ERR_FINAL]}")


def encode_parts(parts: list[ChainPart], num_slices: int | None, chain: bool) -> bytes:
    """A frame's tensors decoded in turn: one chain, or one sliced ZVCP payload each
    (concatenated; PartsReader takes either)."""
    if chain:
        return encode_chain(parts)
    return b"".join(coder.encode(sym, index, table, num_slices) for sym, index, table in parts)


class PartsReader:
    """The tensors encode_parts wrote, in order, from a chain or consecutive sliced payloads
    (exactly ``data``: finish() refuses leftovers)."""

    def __init__(self, data: bytes | memoryview):
        self._view = memoryview(data)
        self._chain = ChainReader(self._view) if zvcp.is_chain(self._view) else None
        self._pos = 0

    def decode(self, table: CdfTable, shape: tuple[int, int, int], index: np.ndarray | None = None) -> np.ndarray:
        """The next tensor: int32 [C,H,W] with rows from index (None: row = channel)."""
        if self._chain is not None:
            return self._chain.decode(table, shape, index)
        size = zvcp.payload_size(self._view, self._pos)
        payload = self._view[self._pos : self._pos + size]
        self._pos += size
        return coder.decode(payload, shape, index, table)

    def finish(self) -> None:
        """Nothing left: every chain part and state, or every byte after the last payload."""
        if self._chain is not None:
            self._chain.finish()
        elif self._pos != len(self._view):
            raise EntropyDecodeError(f"data is {len(self._view)} bytes but its payloads account for {self._pos}")
