"""Prometheus metrics (names prefixed ``zvc69_``) in a registry owned by one app instance.

A per-app CollectorRegistry keeps test apps from colliding and keeps /metrics limited to
this service's series.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.frames_in = Counter("zvc69_frames_in_total", "Raw frames accepted for encoding", registry=r)
        self.frames_out = Counter("zvc69_frames_out_total", "Encoded frame records produced", registry=r)
        self.bytes_out = Counter("zvc69_bitstream_bytes_total", "Encoded bytes produced (records)", registry=r)
        self.requests = Counter("zvc69_http_requests_total", "HTTP requests by route and status",
                                ["route", "code"], registry=r)
        self.rejections = Counter("zvc69_rejections_total", "Requests refused by a limit",
                                  ["reason"], registry=r)
        self.errors = Counter("zvc69_errors_total", "Encoder/decoder failures", ["kind"], registry=r)
        self.request_latency = Histogram("zvc69_request_seconds", "Time from body received to response ready",
                                         ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.frame_latency = Histogram("zvc69_frame_encode_seconds", "Encoder time per frame",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.active_streams = Gauge("zvc69_active_streams", "Streams held (open or closed, not deleted)",
                                    registry=r)
        self.inflight_bytes = Gauge("zvc69_queue_bytes", "Raw frame bytes received and not yet encoded",
                                    registry=r)
        self.queued_requests = Gauge("zvc69_queue_requests", "Frame requests waiting for or in an encoder",
                                     registry=r)
        self.ready = Gauge("zvc69_ready", "1 when models are loaded and warm", registry=r)
        self.fps = Gauge("zvc69_encode_fps", "Frames encoded per second over the last 10 s", registry=r)
        self._recent: deque[tuple[float, int]] = deque()
        self.fps.set_function(self._fps)

    def frames_done(self, n: int) -> None:
        """Record n encoded frames now (feeds the fps gauge)."""
        self.frames_out.inc(n)
        now = time.monotonic()
        self._recent.append((now, n))
        while self._recent and self._recent[0][0] < now - 60:
            self._recent.popleft()

    def _fps(self) -> float:
        now = time.monotonic()
        return sum(n for t, n in list(self._recent) if t >= now - 10) / 10.0

    def render(self) -> bytes:
        return generate_latest(self.registry)
