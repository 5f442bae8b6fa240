"""A bounded pipe from an async request body to a blocking reader in a worker thread.

Lets /v1/encode parse and encode a Y4M upload while it arrives: the event loop feeds
chunks, the encoder thread reads them as a file object (Y4MReader takes any binary
file), and at most ``max_buffered`` bytes wait in between, so a fast client cannot make
the server hold the whole upload.
"""

from __future__ import annotations

import asyncio
import collections
import io
import threading


class PipeAborted(Exception):
    """The producer gave up (client disconnected or a limit was hit); the reader stops."""


class BodyPipe(io.RawIOBase):
    def __init__(self, loop: asyncio.AbstractEventLoop, max_buffered: int = 4 << 20):
        super().__init__()
        self._loop = loop
        self.max_buffered = max_buffered
        self._cond = threading.Condition()
        self._chunks: collections.deque[memoryview] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._aborted: str | None = None
        self._reader_gone = False
        self._space = asyncio.Event()
        self._space.set()

    # -- producer side (event loop) --------------------------------------------------
    async def feed(self, chunk: bytes) -> bool:
        """Queue a chunk, waiting while the buffer is full; False once the reader stopped reading."""
        while True:
            with self._cond:
                if self._reader_gone:
                    return False
                if self._buffered < self.max_buffered:
                    self._chunks.append(memoryview(chunk))
                    self._buffered += len(chunk)
                    self._cond.notify_all()
                    return True
                self._space.clear()
            await self._space.wait()

    def end(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def abort(self, reason: str) -> None:
        with self._cond:
            self._aborted = reason
            self._cond.notify_all()

    # -- consumer side (worker thread) -------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        with self._cond:
            while not self._chunks and not self._eof and self._aborted is None:
                self._cond.wait()
            if self._aborted is not None:
                raise PipeAborted(self._aborted)
            if not self._chunks:
                return 0
            head = self._chunks[0]
            n = min(len(b), len(head))
            b[:n] = head[:n]
            if n == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[n:]
            self._buffered -= n
        self._wake_producer()
        return n

    def _wake_producer(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._space.set)
        except RuntimeError:  # the loop is gone (server stopped): nobody is waiting
            pass

    def reader_done(self) -> None:
        """The worker is finished (or failed): wake and stop the producer."""
        with self._cond:
            self._reader_gone = True
            self._chunks.clear()
            self._buffered = 0
        self._wake_producer()
