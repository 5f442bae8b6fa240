"""Admission limits: refusals with a status and Retry-After, a global in-flight byte budget,
and a body reader that never holds more than the limits allow.

A refused request costs at most one chunk of memory: a declared Content-Length is checked
(size, whole frames, budget) before any byte is read, and a chunked body reserves budget
chunk by chunk as it arrives.
"""

from __future__ import annotations

import asyncio
import threading

from starlette.requests import Request


class LimitExceeded(Exception):
    """A request refused by a limit; the app turns it into ``status`` + JSON detail (+ Retry-After)."""

    def __init__(self, status: int, reason: str, detail: str, retry_after: int | None = None):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class InflightBudget:
    """Bytes of raw frames received but not yet encoded, across all streams (thread-safe)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def try_reserve(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used -= n
            assert self.used >= 0, "in-flight budget released more than it reserved"


class PixelBudget:
    """Frame pixels being encoded at once, all streams (event-loop side; not thread-safe).

    On the CPU a frame's activations take ~300 bytes per pixel (~0.6 GiB at 1080p) while it
    is encoded, so peak memory follows the pixels in flight, not the streams held or the
    encoder threads. A job waits until its frame size fits; one larger than the whole
    budget runs alone.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._waiters: list[asyncio.Future] = []

    async def acquire(self, pixels: int) -> int:
        n = min(pixels, self.limit)
        while self.used + n > self.limit:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        self.used += n
        return n

    def release(self, n: int) -> None:
        self.used -= n
        assert self.used >= 0, "pixel budget released more than it reserved"
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)


class Reservation:
    """Bytes held in an InflightBudget by one request; release() is idempotent."""

    def __init__(self, budget: InflightBudget):
        self.budget = budget
        self.nbytes = 0

    def add(self, n: int, retry_after: int) -> None:
        if not self.budget.try_reserve(n):
            raise LimitExceeded(503, "inflight_bytes",
                                f"server is at its limit of {self.budget.limit} bytes of frames waiting to be "
                                "encoded; retry later", retry_after)
        self.nbytes += n

    def release(self) -> None:
        if self.nbytes:
            self.budget.release(self.nbytes)
            self.nbytes = 0


def declared_length(request: Request) -> int | None:
    """The Content-Length header as an int, None for a chunked body; 400 when it is malformed."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise LimitExceeded(400, "bad_length", f"Content-Length {raw[:32]!r} is not a byte count")
    return int(raw)


async def read_body(request: Request, max_bytes: int, reservation: Reservation | None, retry_after: int,
                    unit: int | None = None, unit_text: str = "") -> bytearray:
    """Read the whole body under ``max_bytes`` (413), reserving budget as it comes (503).

    With ``unit``, a declared length that is not a multiple of it is refused before reading
    (422), so a body with a partial frame is rejected whole. Raises starlette's
    ClientDisconnect if the client goes away mid-body; the caller then encodes nothing.
    """
    n = declared_length(request)
    if n is not None:
        if n > max_bytes:
            raise LimitExceeded(413, "body_size", f"body of {n} bytes exceeds this server's limit of {max_bytes}")
        if unit and n % unit:
            raise not_whole_frames(n, unit, unit_text)
        if reservation is not None:
            reservation.add(n, retry_after)
    if n is not None:  # declared: one buffer of that size, each chunk copied once into place
        buf = bytearray(n)
        pos = 0
        with memoryview(buf) as view:
            async for chunk in request.stream():
                if pos + len(chunk) > n:
                    raise LimitExceeded(400, "bad_length", f"body is longer than its Content-Length of {n}")
                view[pos : pos + len(chunk)] = chunk
                pos += len(chunk)
        if pos != n:  # the server framing ends a body at its length; shorter means the client went away
            del buf[pos:]
    else:
        buf = bytearray()
        async for chunk in request.stream():
            if not chunk:
                continue
            if len(buf) + len(chunk) > max_bytes:
                raise LimitExceeded(413, "body_size", f"body exceeds this server's limit of {max_bytes} bytes")
            if reservation is not None:
                reservation.add(len(chunk), retry_after)
            buf += chunk
    if unit and len(buf) % unit:
        raise not_whole_frames(len(buf), unit, unit_text)
    return buf


def not_whole_frames(n: int, unit: int, unit_text: str) -> LimitExceeded:
    return LimitExceeded(422, "partial_frame",
                         f"body of {n} bytes is not a whole number of {unit_text} frames ({unit} bytes each; "
                         f"{n // unit} whole + {n % unit} bytes): nothing was encoded")
