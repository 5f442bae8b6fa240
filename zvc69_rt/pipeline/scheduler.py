"""PipelinedEncoder: overlaps preprocess, inference and entropy coding of a StagedEncoder.

One scheduler for both backends. Roles map to threads::

    submit -> [preprocess x num_workers] -> [inference x 1, in frame order]
           -> [postprocess: entropy_code x num_workers] -> mux (in order) -> try_recv

On a CUDA host the inference thread is where the CUDA stream roles live (the backend
runner uploads on MemoryH2D, runs on Inference and downloads on MemoryD2H, ordered by
events); ``thread_context(role)`` lets it push the shared primary context on every
worker thread. On the CPU backend the same roles are plain threads.

Errors: the first failing frame (by frame order) stops the stream there. Packets of
earlier frames are still delivered in order, exactly as the sequential encoder would have
produced them before raising; then ``try_recv``/``flush``/``submit`` raise the stage's
exception (with a note naming the stage and frame) and the threads shut down.
"""

from __future__ import annotations

import collections
import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Self

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.pipeline.config import PipelineConfig
from zvc69_rt.pipeline.pool import FramePool
from zvc69_rt.pipeline.stages import StagedEncoder
from zvc69_rt.pipeline.stats import PipelineStats, StageTimer

ROLES = ("preprocess", "inference", "postprocess")
_STOP = object()
ThreadContext = Callable[[str], AbstractContextManager]


class PipelinedEncoder:
    def __init__(self, staged: StagedEncoder, config: PipelineConfig | None = None,
                 pools: dict[str, FramePool] | None = None,
                 thread_context: ThreadContext | None = None):
        for name in ("preprocess", "infer", "entropy_code", "flush"):
            if not callable(getattr(staged, name, None)):
                raise InputError(f"pipelined encoder: the staged encoder has no {name}() method")
        self.staged = staged
        self.config = (config or PipelineConfig.realtime_1080p()).validate()
        self.pools = dict(pools or {})
        self._thread_context = thread_context or (lambda role: contextlib.nullcontext())
        self._cond = threading.Condition()
        self._pre_q: queue.SimpleQueue = queue.SimpleQueue()
        self._ent_q: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: dict[int, Any] = {}  # preprocessed, waiting for inference
        self._done: dict[int, Any] = {}  # packets waiting to be muxed (a list: several, or none yet)
        self._out_buf: collections.deque = collections.deque()  # the rest of a list being delivered
        self._submitted_at: dict[int, float] = {}
        self._next_seq = 0
        self._next_out = 0
        self._finished = 0  # packets done (released slots)
        self._in_flight = 0
        self._ended = False
        self._closed = False
        self._flush_packets: list | None = None
        self._error: BaseException | None = None
        self._error_seq = math.inf
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._timers = {k: StageTimer() for k in ("preprocess", "infer", "entropy_code", "end_to_end")}
        n = self.config.num_workers
        self._threads = (
            [threading.Thread(target=self._run_role, args=("preprocess", self._preprocess_loop),
                              name=f"zvc69-pre-{i}", daemon=True) for i in range(n)]
            + [threading.Thread(target=self._run_role, args=("inference", self._infer_loop),
                                name="zvc69-infer", daemon=True)]
            + [threading.Thread(target=self._run_role, args=("postprocess", self._entropy_loop),
                                name=f"zvc69-entropy-{i}", daemon=True) for i in range(n)]
        )
        for t in self._threads:
            t.start()

    # -- public API --------------------------------------------------------------------
    def submit(self, frame: Frame, timeout: float | None = None) -> int:
        """Queue one frame; blocks while ``queue_depth`` frames are in flight. Returns its index."""
        with self._cond:
            if self._error is not None:
                raise self._error
            if self._closed or self._ended:
                raise InputError("pipelined encoder: submit after flush() or close()")
            ok = self._cond.wait_for(
                lambda: self._in_flight < self.config.queue_depth or self._error is not None or self._closed,
                timeout,
            )
            if self._error is not None:
                raise self._error
            if self._closed:
                raise InputError("pipelined encoder: closed while submit() waited")
            if not ok:
                raise TimeoutError(f"pipelined encoder: no free slot within {timeout} s")
            seq = self._next_seq
            self._next_seq += 1
            self._in_flight += 1
            now = time.perf_counter()
            self._submitted_at[seq] = now
            if self._t_first is None:
                self._t_first = now
        self._pre_q.put((seq, frame))
        return seq

    def try_recv(self) -> Any | None:
        """The next packet in submission order, or None if it is not ready yet."""
        with self._cond:
            return self._take()

    def recv(self, timeout: float | None = None) -> Any | None:
        """Blocking try_recv: waits for the next packet; None at end of stream or on timeout."""
        with self._cond:
            self._cond.wait_for(self._can_take, timeout)
            return self._take()

    def flush(self, timeout: float | None = None) -> list[Any]:
        """End of stream: wait for every frame, then the staged encoder's own flush; all
        packets not yet received, in order. Raises a stage's error; shuts the threads down."""
        with self._cond:
            if self._closed and self._error is None:
                raise InputError("pipelined encoder: flush() after close()")
            self._ended = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        out = []
        try:
            while True:
                with self._cond:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    if not self._cond.wait_for(self._can_take, left):
                        raise TimeoutError(f"pipelined encoder: flush did not finish within {timeout} s")
                    pkt = self._take()
                    if pkt is None:
                        break
                    out.append(pkt)
        finally:
            self.close()
        return out

    def stats(self) -> PipelineStats:
        with self._cond:
            frames = self._finished
            elapsed = (self._t_last - self._t_first) if self._t_first is not None and self._t_last else 0.0
        return PipelineStats(
            frames=frames, elapsed_s=elapsed, fps=frames / elapsed if elapsed > 0 else 0.0,
            stages={k: t.summary() for k, t in self._timers.items()},
            pools={k: p.stats().to_dict() for k, p in self.pools.items()},
            target_latency_ms=self.config.target_latency_ms,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker threads (idempotent). Frames still in flight are dropped."""
        with self._cond:
            self._signal_stop()
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _signal_stop(self) -> None:
        """Tell every worker to exit (lock held; does not wait for them)."""
        if self._closed:
            return
        self._closed = True
        self._cond.notify_all()
        for _ in range(self.config.num_workers):
            self._pre_q.put(_STOP)
            self._ent_q.put(_STOP)

    # -- muxing (call with the lock held) ---------------------------------------------
    def _skip_empty(self) -> None:
        """Pass over frames that produced no packet (B-frames waiting for their anchor)."""
        while self._next_out < self._error_seq and isinstance(item := self._done.get(self._next_out), list) \
                and not item:
            del self._done[self._next_out]
            self._next_out += 1

    def _can_take(self) -> bool:
        self._skip_empty()
        if self._out_buf or (self._next_out < self._error_seq and self._next_out in self._done):
            return True
        if self._error is not None and self._next_out >= self._error_seq:
            return True
        return self._flush_packets is not None or self._closed

    def _take(self) -> Any | None:
        self._skip_empty()
        if self._out_buf:
            return self._out_buf.popleft()
        seq = self._next_out
        if seq < self._error_seq and seq in self._done:
            self._next_out += 1
            item = self._done.pop(seq)
            if isinstance(item, list):  # an anchor and the B-frames coded after it
                self._out_buf.extend(item[1:])
                return item[0]
            return item
        if self._error is not None and seq >= self._error_seq:
            self._signal_stop()  # nothing after the failed frame can be delivered
            raise self._error
        if self._flush_packets:
            return self._flush_packets.pop(0)
        return None

    def _fail(self, seq: float, stage: str, exc: BaseException) -> None:
        with self._cond:
            if seq < self._error_seq:
                where = "end of stream" if stage == "flush" else f"frame {seq}"
                exc.add_note(f"pipelined encoder: raised in stage {stage} at {where}")
                self._error, self._error_seq = exc, seq
            self._cond.notify_all()

    def _stopping(self, seq: int) -> bool:
        return self._closed or seq >= self._error_seq

    # -- worker loops -----------------------------------------------------------------
    def _run_role(self, role: str, loop: Callable[[], None]) -> None:
        try:
            with self._thread_context(role):
                loop()
        except BaseException as exc:  # noqa: BLE001 (context setup failed: the stream cannot go on)
            self._fail(self._next_out, f"{role} thread setup", exc)

    def _preprocess_loop(self) -> None:
        while (item := self._pre_q.get()) is not _STOP:
            seq, frame = item
            if self._stopping(seq):
                continue
            t0 = time.perf_counter()
            try:
                work = self.staged.preprocess(frame)
            except BaseException as exc:  # noqa: BLE001 (a worker must report, not die)
                self._fail(seq, "preprocess", exc)
                continue
            self._timers["preprocess"].add(time.perf_counter() - t0)
            with self._cond:
                self._ready[seq] = work
                self._cond.notify_all()

    def _infer_loop(self) -> None:
        seq = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda s=seq: s in self._ready or self._stopping(s)
                                    or (self._ended and s >= self._next_seq))
                if self._stopping(seq):
                    return
                if seq not in self._ready:  # end of stream: every frame went through inference
                    break
                work = self._ready.pop(seq)
            t0 = time.perf_counter()
            try:
                out = self.staged.infer(work)
            except BaseException as exc:  # noqa: BLE001 (a worker must report, not die)
                self._fail(seq, "infer", exc)
                return
            self._timers["infer"].add(time.perf_counter() - t0)
            self._ent_q.put((seq, out))
            seq += 1
        # The staged flush runs here (it may need inference) once every packet exists,
        # matching the sequential order: all frames, then flush.
        with self._cond:
            self._cond.wait_for(lambda: self._finished >= self._next_seq or self._closed
                                or self._error is not None)
            if self._closed or self._error is not None:
                return
        try:
            tail = list(self.staged.flush())
        except BaseException as exc:  # noqa: BLE001 (a worker must report, not die)
            self._fail(self._next_seq, "flush", exc)  # after every frame's packet
            return
        with self._cond:
            self._flush_packets = tail
            self._cond.notify_all()

    def _entropy_loop(self) -> None:
        while (item := self._ent_q.get()) is not _STOP:
            seq, work = item
            if self._stopping(seq):
                continue
            t0 = time.perf_counter()
            try:
                pkt = self.staged.entropy_code(work)
            except BaseException as exc:  # noqa: BLE001 (a worker must report, not die)
                self._fail(seq, "entropy_code", exc)
                continue
            now = time.perf_counter()
            self._timers["entropy_code"].add(now - t0)
            with self._cond:
                self._done[seq] = pkt
                self._finished += 1
                self._in_flight -= 1
                self._t_last = now
                self._timers["end_to_end"].add(now - self._submitted_at.pop(seq, now))
                self._cond.notify_all()
