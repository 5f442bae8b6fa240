"""`zvc69 serve` as a real process on 127.0.0.1 (bounded: one short-lived server): API key from the
environment, probes without a key, a real encode over TCP, SIGTERM shuts down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from zvc69_rt.bitstream import StreamReader
from zvc69_rt.client import ServiceClient, ServiceError
from zvc69_rt.frame import Frame

REPO = Path(__file__).resolve().parents[1]
KEY = "test-key-" + "x" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_non_loopback_without_key_is_refused():
    env = {k: v for k, v in os.environ.items() if k not in ("ZVC69_API_KEY", "ZVC69_API_KEY_FILE")}
    r = subprocess.run([sys.executable, "-m", "zvc69_rt", "serve", "--host", "0.0.0.0", "--port", "1"],
                       capture_output=True, env=env, cwd=REPO, timeout=60, check=False)
    assert r.returncode == 1 and b"without an API key" in r.stderr


def test_serve_over_loopback_with_key_and_sigterm(tmp_path):
    port = free_port()
    env = dict(os.environ, ZVC69_API_KEY=KEY, ZVC69_ORT_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "zvc69_rt", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready in 90 s"
            time.sleep(0.3)
        assert httpx.get(url + "/healthz").status_code == 200
        assert "zvc69_ready 1.0" in httpx.get(url + "/metrics").text
        assert httpx.post(url + "/v1/streams", json={"width": 64, "height": 64}).status_code == 401
        with pytest.raises(ServiceError) as err, ServiceClient(url, api_key="wrong-key-" + "y" * 20) as c:
            c.open_stream(64, 64)
        assert err.value.status == 401
        rng = np.random.default_rng(0)
        with ServiceClient(url, api_key=KEY) as c, c.open_stream(96, 64, gop=1) as s:
            raw = rng.integers(0, 256, 2 * Frame.nbytes_for(96, 64), dtype=np.uint8)
            recs = s.push(raw) + s.close()
            zvc = s.bitstream()
        import io

        reader = StreamReader(io.BytesIO(zvc))
        assert reader.header.total_frames == 2 and len(list(reader.iter_frames())) == 2
        assert zvc[64 : 64 + len(recs)] == recs
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out and b"after a graceful shutdown" in out
