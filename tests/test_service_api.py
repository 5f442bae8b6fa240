"""The encoder service's HTTP API with a deterministic fake encoder: streams, records, validation,
auth and ownership, limits (413/429/503 + Retry-After), encoder failures, idle expiry, metrics."""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from zvc69_rt.service.app import create_app
from zvc69_rt.service.settings import Settings
from zvc69_rt.service.testing import fake_encoder_factory

from zvc69_rt.bitstream import FrameHeader, StreamReader
from zvc69_rt.frame import Frame

KEY_A = "a" * 24
KEY_B = "b" * 24
W, H = 64, 66
FB = Frame.nbytes_for(W, H)


def client(**overrides) -> TestClient:
    kw = {"encoder_factory": fake_encoder_factory(), "warmup": False}
    kw.update(overrides)
    return TestClient(create_app(Settings(**kw)))


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def frames_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n * FB, dtype=np.uint8).tobytes()


def split_records(buf: bytes) -> list[tuple[FrameHeader, bytes]]:
    out, pos = [], 0
    while pos < len(buf):
        fh = FrameHeader.unpack(buf[pos : pos + 32])
        data = buf[pos + 32 : pos + 32 + fh.frame_size]
        fh.check_data(data)
        out.append((fh, data))
        pos += 32 + fh.frame_size
    assert pos == len(buf)
    return out


def open_stream(c: TestClient, headers=None, **body) -> str:
    r = c.post("/v1/streams", json={"width": W, "height": H, **body}, headers=headers or {})
    assert r.status_code == 201, r.text
    assert r.json()["frame_bytes"] == FB
    return r.json()["id"]


def test_stream_round_trip_records_and_bitstream():
    raw = frames_bytes(5)
    with client(encoder_factory=fake_encoder_factory(lag=2)) as c:
        sid = open_stream(c, quality=40)
        r1 = c.post(f"/v1/streams/{sid}/frames", content=raw[: 3 * FB])
        assert r1.status_code == 200 and r1.headers["content-type"] == "application/octet-stream"
        assert (r1.headers["x-frames-in"], r1.headers["x-frames-out"]) == ("3", "1")  # lag 2 holds two back
        r2 = c.post(f"/v1/streams/{sid}/frames", content=raw[3 * FB :])
        assert (r2.headers["x-frames-in"], r2.headers["x-frames-out"]) == ("2", "2")
        assert r2.headers["x-stream-frames-in"] == "5"
        assert c.get(f"/v1/streams/{sid}/bitstream").status_code == 409  # not closed yet
        r3 = c.post(f"/v1/streams/{sid}/close")
        assert r3.status_code == 200 and r3.headers["x-frames-out"] == "2"
        records = r1.content + r2.content + r3.content
        zvc = c.get(f"/v1/streams/{sid}/bitstream").content
        assert c.post(f"/v1/streams/{sid}/frames", content=raw[:FB]).status_code == 409  # closed
    recs = split_records(records)
    assert [fh.pts for fh, _ in recs] == [0, 1, 2, 3, 4]
    for i, (fh, data) in enumerate(recs):  # each record is exactly frame i's bytes, in order
        assert fh.quality_level == 40
        assert data[:32] == hashlib.sha256(raw[i * FB : (i + 1) * FB] + struct.pack("<Q", i)).digest()
    # the .zvc = file header + exactly those records + index + trailer, and it reads back
    assert zvc[64 : 64 + len(records)] == records
    reader = StreamReader(io.BytesIO(zvc))
    assert reader.header.total_frames == 5 and (reader.header.width, reader.header.height) == (W, H)
    assert [d for _, d in reader.iter_frames()] == [d for _, d in recs]


def test_chunked_body_equals_plain_body():
    raw = frames_bytes(3, seed=1)

    def chunks():
        for i in range(0, len(raw), 1000):  # chunk edges fall inside frames
            yield raw[i : i + 1000]

    with client() as c:
        a, b = open_stream(c), open_stream(c)
        ra = c.post(f"/v1/streams/{a}/frames", content=raw)
        rb = c.post(f"/v1/streams/{b}/frames", content=chunks())
        assert ra.status_code == rb.status_code == 200
        assert "content-length" not in rb.request.headers  # really chunked
        assert ra.content == rb.content and len(split_records(ra.content)) == 3


@pytest.mark.parametrize("chunked", [False, True])
def test_partial_frame_body_is_rejected_whole(chunked):
    raw = frames_bytes(2) + b"\x00" * 10
    with client() as c:
        sid = open_stream(c)
        content = iter([raw[:FB], raw[FB:]]) if chunked else raw
        r = c.post(f"/v1/streams/{sid}/frames", content=content)
        assert r.status_code == 422
        assert "not a whole number" in r.json()["detail"] and "nothing was encoded" in r.json()["detail"]
        info = c.get(f"/v1/streams/{sid}").json()
        assert info["frames_in"] == 0 and info["frames_out"] == 0
        assert c.app.state.service.budget.used == 0
        # the stream is still usable and starts at pts 0
        r = c.post(f"/v1/streams/{sid}/frames", content=raw[:FB])
        assert split_records(r.content)[0][0].pts == 0


def test_create_validation_messages():
    with client(max_body_bytes=1 << 20, max_inflight_bytes=1 << 20) as c:
        cases = [
            ({"width": 63, "height": 64}, "width"),
            ({"width": 64, "height": 8193}, "height"),
            ({"width": 64, "height": 64, "quality": 101}, "quality"),
            ({"width": 64, "height": 64, "gop": 0}, "gop"),
            ({"width": 64, "height": 64, "p_quality_offset": -1}, "p_quality_offset"),
            ({"width": 64, "height": 64, "p_quality_offset": 101}, "p_quality_offset"),
            ({"width": 64, "height": 64, "b_pyramid": "yes"}, "b_pyramid"),
            ({"width": 64, "height": 64, "motion_aq": 5}, "motion_aq"),
            ({"width": 64, "height": 64, "b_quality_offset": 101}, "b_quality_offset"),
            ({"width": 64, "height": 64, "fps_num": 0}, "fps_num"),
            ({"width": "64", "height": 64}, "width"),
            ({"width": 64, "height": 64, "gop": True}, "gop"),
            ({"width": 64, "height": 64, "preset": "../../etc"}, "preset"),
            ({"width": 64, "height": 64, "model": "/tmp/x"}, "model"),  # no path from a request
            ({"height": 64}, "width"),
        ]
        for body, field in cases:
            r = c.post("/v1/streams", json=body)
            assert r.status_code == 422, body
            assert any(field in map(str, e["loc"]) for e in r.json()["detail"]), (body, r.json())
        r = c.post("/v1/streams", json={"width": 64, "height": 64, "gop": 4, "bframes": 4})
        assert r.status_code == 422 and "bframes" in r.json()["detail"]
        r = c.post("/v1/streams", json={"width": 8192, "height": 8192})  # 96 MiB frame > 1 MiB body limit
        assert r.status_code == 422 and "body limit" in r.json()["detail"]
        assert c.post("/v1/streams", json={"width": 8192, "height": 64}).status_code == 201
        assert c.post("/v1/streams", json={"width": 97, "height": 65}).json()["frame_bytes"] == \
            Frame.nbytes_for(97, 65)


def test_auth_and_ownership():
    with client(api_keys=(KEY_A, KEY_B)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200
        r = c.post("/v1/streams", json={"width": W, "height": H})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        for bad in ("Bearer " + "x" * 24, "Basic " + KEY_A, KEY_A, "Bearer " + KEY_A[:-1], "Bearer "):
            assert c.post("/v1/streams", json={"width": W, "height": H},
                          headers={"Authorization": bad}).status_code == 401, bad
        sid = open_stream(c, headers=auth(KEY_A))
        raw = frames_bytes(1)
        for method, path in (("GET", ""), ("POST", "/frames"), ("POST", "/close"), ("GET", "/bitstream"),
                             ("DELETE", "")):
            r = c.request(method, f"/v1/streams/{sid}{path}", headers=auth(KEY_B), content=raw)
            assert r.status_code == 404, (method, path)
            assert c.request(method, f"/v1/streams/{sid}{path}", content=raw).status_code == 401
        assert c.post(f"/v1/streams/{sid}/frames", content=raw, headers=auth(KEY_A)).status_code == 200
        assert c.post("/v1/encode", content=b"", headers=auth("z" * 24)).status_code == 401
        assert c.post("/v1/decode", content=b"").status_code == 401


def test_body_too_large_is_413_before_encoding():
    with client(max_body_bytes=2 * FB, max_inflight_bytes=4 * FB) as c:
        sid = open_stream(c)
        r = c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(3))
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = c.post(f"/v1/streams/{sid}/frames", content=iter([frames_bytes(1)] * 3))  # chunked, no length
        assert r.status_code == 413
        assert c.get(f"/v1/streams/{sid}").json()["frames_in"] == 0
        assert c.app.state.service.budget.used == 0


def test_stream_count_limit_429_with_retry_after():
    with client(max_streams=2) as c:
        a, _ = open_stream(c), open_stream(c)
        r = c.post("/v1/streams", json={"width": W, "height": H})
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and "limit of 2" in r.json()["detail"]
        assert c.delete(f"/v1/streams/{a}").status_code == 204
        assert c.get(f"/v1/streams/{a}").status_code == 404
        open_stream(c)


def test_global_inflight_budget_503():
    with client(max_body_bytes=2 * FB, max_inflight_bytes=3 * FB) as c:
        sid = open_stream(c)
        budget = c.app.state.service.budget
        assert budget.try_reserve(2 * FB)  # as if other streams had 2 frames waiting
        r = c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(2))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(1)).status_code == 200  # fits
        budget.release(2 * FB)
        assert budget.used == 0
        assert c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(2)).status_code == 200


def test_per_stream_queue_429_under_concurrency():
    """Slow encoder, queue of 1: concurrent pushes to one stream get 429; accepted ones are all encoded."""
    with client(encoder_factory=fake_encoder_factory(delay_s=0.15), stream_queue_requests=1) as c:
        sid = open_stream(c)
        codes, lock = [], threading.Lock()

        def push(seed):
            r = c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(1, seed))
            with lock:
                codes.append((r.status_code, r.headers.get("retry-after")))

        threads = [threading.Thread(target=push, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        ok = sum(1 for s, _ in codes if s == 200)
        assert ok >= 1 and all(s in (200, 429) for s, _ in codes), codes
        assert any(s == 429 and ra == "1" for s, ra in codes), codes
        c.post(f"/v1/streams/{sid}/close")
        zvc = c.get(f"/v1/streams/{sid}/bitstream").content
        assert StreamReader(io.BytesIO(zvc)).header.total_frames == ok  # every accepted frame is there


def test_encoder_error_fails_only_that_stream():
    with client(encoder_factory=fake_encoder_factory(fail_at_frame=2)) as c:
        bad, good = open_stream(c), open_stream(c)
        r = c.post(f"/v1/streams/{bad}/frames", content=frames_bytes(3))
        assert r.status_code == 500
        assert "failed" in r.json()["detail"] and "fake encoder failure at frame 2" in r.json()["detail"]
        r = c.post(f"/v1/streams/{bad}/frames", content=frames_bytes(1))
        assert r.status_code == 409 and "fake encoder failure" in r.json()["detail"]
        assert c.get(f"/v1/streams/{bad}/bitstream").status_code == 409
        assert c.get(f"/v1/streams/{bad}").json()["state"] == "failed"
        assert c.post(f"/v1/streams/{good}/frames", content=frames_bytes(2)).status_code == 200
        assert c.get("/healthz").status_code == 200
        assert 'zvc69_errors_total{kind="encoder"} 1.0' in c.get("/metrics").text
        assert c.app.state.service.budget.used == 0


def test_idle_streams_expire():
    now = [1000.0]
    with client(idle_timeout_s=30, sweep_interval_s=0.02) as c:
        reg = c.app.state.service.registry
        reg.clock = lambda: now[0]
        old, fresh = open_stream(c), open_stream(c)
        now[0] += 20
        c.get(f"/v1/streams/{fresh}")  # touching a stream keeps it alive
        now[0] += 15
        deadline = time.monotonic() + 5
        while len(reg) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.get(f"/v1/streams/{old}").status_code == 404
        assert "expire" in c.get(f"/v1/streams/{old}").json()["detail"]
        assert c.get(f"/v1/streams/{fresh}").status_code == 200


def test_metrics_names_and_values():
    with client() as c:
        sid = open_stream(c)
        c.post(f"/v1/streams/{sid}/frames", content=frames_bytes(3))
        text = c.get("/metrics").text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert names and all(n.startswith("zvc69_") for n in names)
    assert "zvc69_frames_in_total 3.0" in text and "zvc69_frames_out_total 3.0" in text
    assert "zvc69_active_streams 1.0" in text
    assert 'zvc69_http_requests_total{code="200",route="/v1/streams/{stream_id}/frames"} 1.0' in text
    assert "zvc69_frame_encode_seconds_count 3.0" not in text  # observed once per request, not per frame
    assert "zvc69_frame_encode_seconds_count 1.0" in text


def test_readyz_waits_for_warmup_and_reports_failure():
    def broken(config):
        raise RuntimeError("no model here")

    with client(encoder_factory=broken, warmup=True) as c:
        deadline = time.monotonic() + 5
        while c.app.state.service.ready_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        r = c.get("/readyz")
        assert r.status_code == 503 and "no model here" in r.json()["reason"]
        assert c.get("/healthz").status_code == 200
    with client(warmup=True) as c:
        deadline = time.monotonic() + 5
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.get("/readyz").json() == {"ready": True}


def test_openapi_lists_the_routes():
    with client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    for p in ("/v1/streams", "/v1/streams/{stream_id}/frames", "/v1/streams/{stream_id}/close",
              "/v1/streams/{stream_id}/bitstream", "/v1/encode", "/v1/decode", "/healthz", "/readyz", "/metrics"):
        assert p in paths
