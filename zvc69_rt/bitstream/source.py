"""Bounded reading from a file or a pipe: the reader never trusts a size it has not seen.

On a seekable source the real remaining length is known and checked before any read; on
a pipe data is read in READ_CHUNK pieces, so memory only grows with bytes that arrived.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from zvc69_rt.bitstream.limits import READ_CHUNK
from zvc69_rt.errors import ZVC69FormatError


def _is_seekable(f: BinaryIO) -> bool:
    try:
        if not f.seekable():
            return False
        f.tell()
        return True
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


class ByteSource:
    """Positions are relative to where the stream starts (``base``) in the underlying file."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.seekable = _is_seekable(f)
        self.pos = 0
        self.size: int | None = None
        self.base = 0
        if self.seekable:
            self.base = f.tell()
            end = f.seek(0, io.SEEK_END)
            self.size = max(end - self.base, 0)
            f.seek(self.base)

    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self.pos

    def seek(self, pos: int) -> None:
        assert self.seekable and self.size is not None
        if not 0 <= pos <= self.size:
            raise ZVC69FormatError(f"seek to {pos} is outside the {self.size}-byte stream")
        self.f.seek(self.base + pos)
        self.pos = pos

    def read_upto(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at end of stream."""
        if n <= 0:
            return b""
        if self.size is not None:
            n = min(n, self.size - self.pos)
            if n <= 0:
                return b""
        # A seekable source already checked n against the real length: one read, no copy.
        first = self.f.read(n if self.size is not None else min(n, READ_CHUNK))
        if first is None:
            first = b""
        if len(first) == n or not first:
            self.pos += len(first)
            return bytes(first)
        chunks = bytearray(first)
        while len(chunks) < n:
            part = self.f.read(min(n - len(chunks), READ_CHUNK))
            if not part:
                break
            chunks += part
        self.pos += len(chunks)
        return bytes(chunks)

    def read_exact(self, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes or ZVC69FormatError naming ``what`` (checked before allocating)."""
        left = self.remaining()
        if left is not None and n > left:
            raise ZVC69FormatError(f"{what}: needs {n} bytes, only {left} left in the stream")
        data = self.read_upto(n)
        if len(data) != n:
            raise ZVC69FormatError(f"{what}: truncated: got {len(data)} of {n} bytes")
        return data
