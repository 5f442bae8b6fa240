"""Faults at the ASGI level: a client that disconnects mid-body gets nothing encoded (frame streams and
/v1/encode), and a lifespan shutdown lets running encoder jobs finish before streams are dropped."""

from __future__ import annotations

import asyncio
import threading

from zvc69_rt.service.app import create_app
from zvc69_rt.service.settings import Settings
from zvc69_rt.service.testing import fake_encoder_factory

from zvc69_rt.frame import Frame

W, H = 64, 64
FB = Frame.nbytes_for(W, H)


async def call(app, method: str, path: str, chunks: list[bytes], disconnect: bool = False,
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int | None, bytes]:
    """Drive the ASGI app directly: body in ``chunks``; with ``disconnect`` the client vanishes after them."""
    events = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    if disconnect:
        events.append({"type": "http.disconnect"})
    else:
        events.append({"type": "http.request", "body": b"", "more_body": False})
    status, body = [None], bytearray()

    async def receive():
        if events:
            return events.pop(0)
        await asyncio.sleep(3600)

    async def send(msg):
        if msg["type"] == "http.response.start":
            status[0] = msg["status"]
        elif msg["type"] == "http.response.body":
            body.extend(msg.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": headers or [], "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "root_path": ""}
    await app(scope, receive, send)
    return status[0], bytes(body)


def test_disconnect_mid_body_encodes_nothing():
    app = create_app(Settings(encoder_factory=fake_encoder_factory(), warmup=False))
    state = app.state.service

    async def scenario():
        import json

        st, body = await call(app, "POST", "/v1/streams", [json.dumps({"width": W, "height": H}).encode()],
                              headers=[(b"content-type", b"application/json")])
        assert st == 201
        sid = json.loads(body)["id"]
        # two whole frames arrive, then the client disconnects before the body ends
        await call(app, "POST", f"/v1/streams/{sid}/frames", [bytes(FB), bytes(FB)], disconnect=True)
        stream = state.registry.get(sid, "anonymous")
        assert stream.frames_in == 0 and stream.nbytes == 64 and stream.queued == 0
        assert state.budget.used == 0
        # the same with a declared length that never arrives
        await call(app, "POST", f"/v1/streams/{sid}/frames", [bytes(FB)], disconnect=True,
                   headers=[(b"content-length", str(3 * FB).encode())])
        assert stream.frames_in == 0 and state.budget.used == 0
        st, body = await call(app, "POST", f"/v1/streams/{sid}/frames", [bytes(FB)])
        assert st == 200 and stream.frames_in == 1
        # /v1/encode: a Y4M upload cut off after its first frame yields no job output and frees the slot
        y4m = b"YUV4MPEG2 W64 H64 F25:1 Ip C420jpeg\n" + b"FRAME\n" + bytes(FB)
        await call(app, "POST", "/v1/encode", [y4m], disconnect=True)
        assert state.oneshot_jobs == 0
        assert 'zvc69_rejections_total{reason="client_disconnect"} 3.0' in state.metrics.render().decode()
        assert "zvc69_frames_in_total 1.0" in state.metrics.render().decode()

    asyncio.run(scenario())
    state.shutdown()


def test_shutdown_waits_for_running_encode():
    gate = threading.Event()

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def file_header(self):
            return self.inner.file_header()

        def send_frame(self, f):
            gate.wait(5)
            self.inner.send_frame(f)

        def receive_packet(self):
            return self.inner.receive_packet()

    base = fake_encoder_factory()
    app = create_app(Settings(encoder_factory=lambda cfg: Slow(base(cfg)), warmup=False))
    state = app.state.service
    done = []

    async def scenario():
        import json

        _, body = await call(app, "POST", "/v1/streams", [json.dumps({"width": W, "height": H}).encode()],
                             headers=[(b"content-type", b"application/json")])
        sid = json.loads(body)["id"]
        push = asyncio.create_task(call(app, "POST", f"/v1/streams/{sid}/frames", [bytes(FB)]))
        await asyncio.sleep(0.1)
        stream = state.registry.get(sid, "anonymous")
        assert stream.queued == 1  # the job is running in the encoder pool
        shut = asyncio.create_task(asyncio.to_thread(state.shutdown))
        await asyncio.sleep(0.1)
        assert not shut.done()  # shutdown waits for the job ...
        gate.set()
        status, records = await push
        await shut
        done.append((status, len(records), stream.frames_in))
        st, _ = await call(app, "POST", "/v1/streams", [json.dumps({"width": W, "height": H}).encode()],
                           headers=[(b"content-type", b"application/json")])
        assert st == 503  # ... and after it nothing new is accepted

    asyncio.run(scenario())
    assert done == [(200, 32 + 33, 1)]
    assert len(state.registry) == 0
