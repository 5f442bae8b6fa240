"""Opening byte sources and sinks the same way everywhere: a path, '-' (stdin/stdout) or a file object.

Readers never trust a size from a header: :func:`read_exact` reads in bounded chunks, so a
header that claims a huge frame costs at most one chunk of memory before the truncation is
noticed.
"""

from __future__ import annotations

import io
import os
import sys
from typing import BinaryIO

from zvc69_rt.errors import InputError

Source = str | os.PathLike | BinaryIO
_CHUNK = 8 << 20  # largest single read; bounds memory spent on a lying header


def open_input(source: Source, what: str) -> tuple[BinaryIO, bool, str]:
    """Return (file, we_own_it, display_name) for a path, '-' or a readable binary file object."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            return sys.stdin.buffer, False, "<stdin>"
        try:
            return open(name, "rb"), True, name
        except FileNotFoundError:
            raise InputError(f"{what} file {name!r} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"{what} {name!r} is a folder, not a file") from None
        except OSError as exc:
            raise InputError(f"cannot open {what} file {name!r}: {exc.strerror or exc}") from None
    if not hasattr(source, "read"):
        raise InputError(f"{what} source must be a path, '-' or a binary file object, got {type(source).__name__}")
    if isinstance(source, io.TextIOBase):
        raise InputError(f"{what} source is a text stream; pass its binary buffer (e.g. sys.stdin.buffer)")
    return source, False, getattr(source, "name", "<stream>") if isinstance(getattr(source, "name", None), str) else "<stream>"


def open_output(sink: Source, what: str) -> tuple[BinaryIO, bool]:
    """Return (file, we_own_it) for a path, '-' (stdout) or a writable binary file object."""
    if isinstance(sink, (str, os.PathLike)):
        name = os.fspath(sink)
        if name == "-":
            return sys.stdout.buffer, False
        try:
            return open(name, "wb"), True
        except OSError as exc:
            raise InputError(f"cannot create {what} file {name!r}: {exc.strerror or exc}") from None
    if not hasattr(sink, "write"):
        raise InputError(f"{what} sink must be a path, '-' or a binary file object, got {type(sink).__name__}")
    if isinstance(sink, io.TextIOBase):
        raise InputError(f"{what} sink is a text stream; pass its binary buffer (e.g. sys.stdout.buffer)")
    return sink, False


def remaining_bytes(f: BinaryIO) -> int | None:
    """Bytes left from the current position of a seekable regular file, else None (pipes)."""
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(pos)
        return end - pos
    except (OSError, ValueError, AttributeError):
        return None


def read_exact(f: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (pipes); fewer only at end of input.

    Reads at most ``_CHUNK`` bytes at a time so memory grows with the data that really
    arrives, not with the size a header claims.
    """
    if n <= _CHUNK:
        data = f.read(n)
        if data is None:
            data = b""
        if len(data) == n or not data:
            return data
        parts = [data]
        got = len(data)
    else:
        parts, got = [], 0
    while got < n:
        part = f.read(min(_CHUNK, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
