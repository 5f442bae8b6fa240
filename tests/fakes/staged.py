"""A deterministic synthetic StagedEncoder for scheduler tests.

Every stage hashes its input; ``infer`` chains a running state (like a P-frame's
reference), so any reordering or skipped frame changes every later packet. Optional
jitter sleeps (derived from the frame index, not a shared RNG) shuffle completion order
across worker threads. ``fail`` = (stage, pts) raises there.
"""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np

from zvc69_rt.frame import Frame


class StageFailure(RuntimeError):
    pass


def make_frames(n: int, w: int = 16, h: int = 8, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    ch, cw = Frame.chroma_shape(w, h)
    return [Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8),
                  u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                  v=rng.integers(0, 256, (ch, cw), dtype=np.uint8), pts=i) for i in range(n)]


def _jitter(pts: int, salt: bytes, max_ms: float) -> float:
    if max_ms <= 0:
        return 0.0
    d = hashlib.blake2b(salt + pts.to_bytes(8, "little"), digest_size=2).digest()
    return int.from_bytes(d, "little") / 65535 * max_ms / 1e3


class HashStaged:
    def __init__(self, jitter_ms: float = 0.0, fail: tuple[str, int] | None = None,
                 tail: int = 1, pool=None, infer_gate: threading.Event | None = None):
        self.jitter_ms = jitter_ms
        self.fail = fail
        self.tail = tail
        self.pool = pool
        self.infer_gate = infer_gate
        self.state = b"\0" * 32
        self.infer_order: list[int] = []
        self._infer_busy = threading.Lock()
        self._live = 0
        self._live_lock = threading.Lock()
        self.max_live = 0  # most frames between preprocess start and entropy end

    def _maybe_fail(self, stage: str, pts: int) -> None:
        if self.fail == (stage, pts):
            raise StageFailure(f"{stage} failed on frame {pts}")

    def preprocess(self, frame: Frame):
        with self._live_lock:
            self._live += 1
            self.max_live = max(self.max_live, self._live)
        time.sleep(_jitter(frame.pts, b"pre", self.jitter_ms))
        self._maybe_fail("preprocess", frame.pts)
        buf = None
        if self.pool is not None:  # the pooled path: planes copied into a recycled buffer
            buf = self.pool.acquire(timeout=5)
            n = frame.y.size
            buf.array[:n] = frame.y.ravel()
            buf.array[n : n + frame.u.size] = frame.u.ravel()
            buf.array[n + frame.u.size : n + 2 * frame.u.size] = frame.v.ravel()
            digest = hashlib.sha256(buf.array[: n + 2 * frame.u.size].tobytes()).digest()
        else:
            digest = hashlib.sha256(frame.to_bytes()).digest()
        return frame.pts, digest, buf

    def infer(self, work):
        if not self._infer_busy.acquire(blocking=False):
            raise AssertionError("infer called concurrently")
        try:
            pts, digest, buf = work
            if self.infer_gate is not None:
                self.infer_gate.wait(10)
            time.sleep(_jitter(pts, b"inf", self.jitter_ms))
            self._maybe_fail("infer", pts)
            self.infer_order.append(pts)
            self.state = hashlib.sha256(self.state + digest).digest()
            if buf is not None:
                buf.release()
            return pts, self.state
        finally:
            self._infer_busy.release()

    def entropy_code(self, work) -> bytes:
        pts, state = work
        time.sleep(_jitter(pts, b"ent", self.jitter_ms))
        self._maybe_fail("entropy_code", pts)
        with self._live_lock:
            self._live -= 1
        return pts.to_bytes(4, "little") + hashlib.sha256(state).digest()

    def flush(self) -> list[bytes]:
        self._maybe_fail("flush", -1)
        return [b"tail%d" % i + self.state for i in range(self.tail)]
