"""The per-request costs of the service (issue #7): body read once into a preallocated buffer,
one-frame bodies encoded from views of it (no copy), Server-Timing on frame responses, and
ORT's CPU arena off for the shared model sessions (memory back after each run)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from zvc69_rt.service.app import create_app
from zvc69_rt.service.limits import InflightBudget, LimitExceeded, Reservation, read_body
from zvc69_rt.service.settings import Settings
from zvc69_rt.service.streams import _frame_view
from zvc69_rt.service.testing import fake_encoder_factory

from zvc69_rt.client import ServiceClient, server_timing
from zvc69_rt.frame import Frame

KEY = "k" * 24


def _request(chunks: list[bytes], length: int | None) -> Request:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    msgs = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return msgs.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


@pytest.mark.parametrize("declared", [True, False])
def test_read_body_declared_and_chunked(declared):
    chunks = [b"ab", b"", b"cdef", b"g"]
    budget = InflightBudget(1 << 20)
    res = Reservation(budget)
    body = asyncio.run(read_body(_request(chunks, 7 if declared else None), 100, res, 1))
    assert isinstance(body, bytearray) and body == b"abcdefg"
    assert res.nbytes == 7 and budget.used == 7
    res.release()
    assert budget.used == 0


def test_read_body_longer_than_declared_is_refused():
    with pytest.raises(LimitExceeded) as e:
        asyncio.run(read_body(_request([b"abc", b"def"], 4), 100, None, 1))
    assert e.value.status == 400


def test_one_frame_view_shares_the_body_and_equals_from_bytes():
    w, h = 33, 17  # odd sizes: chroma rounds up
    buf = bytearray(np.random.default_rng(1).integers(0, 256, Frame.nbytes_for(w, h), dtype=np.uint8).tobytes())
    v = _frame_view(buf, w, h, pts=5)
    c = Frame.from_bytes(bytes(buf), w, h, pts=5)
    v.validate()
    for a, b in ((v.y, c.y), (v.u, c.u), (v.v, c.v)):
        assert np.array_equal(a, b)
        assert np.shares_memory(a, np.frombuffer(buf, np.uint8))
    assert v.pts == 5 and v.to_bytes() == bytes(buf)


def test_frame_and_close_responses_carry_server_timing():
    app = create_app(Settings(api_keys=(KEY,), encoder_factory=fake_encoder_factory(lag=1), warmup=False))
    with TestClient(app) as http, ServiceClient("http://testserver", api_key=KEY, http=http) as c:
        s = c.open_stream(64, 64)
        frame = bytes(Frame.nbytes_for(64, 64))
        s.push(frame)
        s.push(frame + frame)  # two frames in one body: the copying path
        s.close()
        assert s.records_out == 3
        assert set(s.server_seconds) == {"body", "wait", "encode"}
        assert all(v >= 0 for v in s.server_seconds.values())
        r = http.post("/v1/streams", json={"width": 64, "height": 64}, headers={"Authorization": f"Bearer {KEY}"})
        sid = r.json()["id"]
        r = http.post(f"/v1/streams/{sid}/frames", content=frame, headers={"Authorization": f"Bearer {KEY}"})
        t = server_timing(r)
        assert set(t) == {"body", "wait", "encode"} and "encode;dur=" in r.headers["server-timing"]


def test_server_timing_parser_ignores_junk():
    import httpx

    r = httpx.Response(200, headers={"Server-Timing": "encode;dur=12.5, bogus, wait;dur=x, body;desc=a;dur=1"})
    assert server_timing(r) == {"encode": 0.0125, "body": 0.001}


@pytest.mark.parametrize(("mode", "small", "large"), [(None, True, False), ("off", False, False), ("on", True, True)])
def test_shared_sessions_use_the_cpu_arena_only_up_to_720p(monkeypatch, mode, small, large):
    pytest.importorskip("onnxruntime")
    from zvc69_rt.service.encoders import SharedModelEncoderFactory

    from zvc69_rt.codec.api import EncoderConfig

    monkeypatch.delenv("ZVC69_SERVICE_ORT_ARENA", raising=False)  # None = the default, auto
    f = SharedModelEncoderFactory(cpu_mem_arena=mode)
    for (w, h), want in (((64, 64), small), ((1280, 720), small), ((1282, 720), large), ((1920, 1080), large)):
        cfg = EncoderConfig(width=w, height=h, backend="onnxruntime")
        assert f(cfg) is not f(cfg)  # one encoder per stream ...
        (runners,) = [r for k, r in f._cache._runners.items() if k[-1] is want]  # ... on shared sessions
        opts = [r.session.get_session_options() for r in runners.values()]
        assert opts and all(o.enable_cpu_mem_arena is want for o in opts), (w, h)
    assert len(f._cache._runners) == (2 if small != large else 1)


def test_arena_mode_from_the_environment(monkeypatch):
    from zvc69_rt.service.encoders import SharedModelEncoderFactory

    from zvc69_rt.errors import InputError

    monkeypatch.setenv("ZVC69_SERVICE_ORT_ARENA", "0")
    assert SharedModelEncoderFactory()._cache.arena_mode == "off"
    monkeypatch.setenv("ZVC69_SERVICE_ORT_ARENA", "sometimes")
    with pytest.raises(InputError):
        SharedModelEncoderFactory()


def _max_concurrency(limit: int, pixels: list[int], workers: int = 4) -> int:
    import threading
    import time

    from zvc69_rt.service.state import ServiceState

    state = ServiceState(Settings(max_encode_pixels=limit, workers=workers, encoder_factory=fake_encoder_factory(),
                                  warmup=False))
    lock = threading.Lock()
    now = {"in": 0, "max": 0}

    def job():
        with lock:
            now["in"] += 1
            now["max"] = max(now["max"], now["in"])
        time.sleep(0.05)
        with lock:
            now["in"] -= 1

    async def main():
        await asyncio.gather(*(state.encode(p, job) for p in pixels))
        assert state.pixels.used == 0 and not state.pixels._waiters

    try:
        asyncio.run(main())
    finally:
        state.shutdown()
    return now["max"]


def test_pixel_budget_bounds_concurrent_encodes_not_threads():
    assert _max_concurrency(100, [60] * 4) == 1       # two 60-pixel frames never run together
    assert _max_concurrency(100, [50] * 4) == 2
    assert _max_concurrency(100, [10] * 4) == 4       # small frames: as many as there are threads
    assert _max_concurrency(100, [500, 10, 10]) == 2  # larger than the budget: runs, alone
    assert Settings().max_encode_pixels == 1920 * 1080


def test_pixel_budget_waiter_cancelled_reserves_nothing():
    from zvc69_rt.service.limits import PixelBudget

    async def main():
        b = PixelBudget(10)
        await b.acquire(8)
        t = asyncio.create_task(b.acquire(5))
        await asyncio.sleep(0.01)
        assert not t.done() and len(b._waiters) == 1
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert b.used == 8 and not b._waiters
        b.release(8)
        assert await b.acquire(10) == 10 and b.used == 10

    asyncio.run(main())
