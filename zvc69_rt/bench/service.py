"""`zvc69 bench service`: N concurrent streams against a local `zvc69 serve` (127.0.0.1 only).

In one run: in-process encoding of the same frames (the anchor), one stream over HTTP
(service overhead = HTTP time / in-process time - 1), then the load phase: N streams at
once, each pushing one frame per request, against a server that admits ``--max-streams``
(fewer than N = overload: 429/503 are expected and retried after Retry-After). Reports
frames/s, per-request latency p50/p99, refusals, errors (any other failure, 5xx other
than 503, or a bitstream missing an accepted frame), server RSS (idle, peak, after) and,
with ``--churn``, RSS after that many streams were opened, fed, closed and deleted.
Bounded: at most 64 streams, ``--time-limit`` seconds of load.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np

HELP = "encoder service: concurrent streams over loopback HTTP (fps, latency, errors, RSS, overhead)"
MAX_STREAMS = 64


def add_arguments(p) -> None:
    p.add_argument("--streams", type=int, default=4, help="concurrent client streams (max 64)")
    p.add_argument("--max-streams", type=int, default=None, help="streams the server admits (default = --streams; "
                   "fewer makes an overload test)")
    p.add_argument("--frames", type=int, default=8, help="frames per stream")
    p.add_argument("--size", default="320x192", help="WxH (e.g. 1280x720 for the 720p overhead target)")
    p.add_argument("--workers", type=int, default=2, help="server encoder threads")
    p.add_argument("--churn", type=int, default=0, help="then open/feed/close/delete this many streams (leak check)")
    p.add_argument("--repeat", type=int, default=3, help="alternating in-process/HTTP runs for the overhead")
    p.add_argument("--time-limit", type=float, default=90.0, help="seconds for the load phase")
    p.add_argument("--json", action="store_true")


def _frames(width: int, height: int, n: int) -> list:
    from zvc69_rt.frame import Frame

    rng = np.random.default_rng(0)
    base = (np.add.outer(np.arange(height), np.arange(width)) % 256).astype(np.int16)
    ch, cw = Frame.chroma_shape(width, height)
    out = []
    for i in range(n):
        y = np.clip(np.roll(base, 3 * i, axis=1) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        out.append(Frame(y=y, u=np.full((ch, cw), 120, np.uint8), v=np.full((ch, cw), 136, np.uint8), pts=i))
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _rss(self.pid))
            self.stop.wait(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(args, key: str, max_streams: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, ZVC69_API_KEY=key)
    cmd = [sys.executable, "-m", "zvc69_rt", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(args.workers), "--max-streams", str(max_streams), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float = 120.0) -> None:
    import httpx

    from zvc69_rt.errors import NotAvailableError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotAvailableError(f"server exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise NotAvailableError(f"server at {url} not ready after {timeout:.0f} s")


def _in_process(frames, cfg, factory) -> float:
    """Seconds to encode ``frames`` in this process (shared-model encoder, as the server builds them)."""
    from zvc69_rt.bitstream import StreamWriter

    enc = factory(cfg)
    w = StreamWriter(io.BytesIO(), enc.file_header())
    t0 = time.perf_counter()
    for f in frames:
        enc.send_frame(f)
        while (p := enc.receive_packet()) is not None:
            w.write_packet(p)
    enc.send_frame(None)
    while (p := enc.receive_packet()) is not None:
        w.write_packet(p)
    w.close()
    return time.perf_counter() - t0


def _over_http(url: str, key: str, frames) -> float:
    from zvc69_rt.client import ServiceClient

    f0 = frames[0]
    with ServiceClient(url, api_key=key) as c:
        with c.open_stream(f0.width, f0.height) as s:  # warm the connection and the server's encoder
            s.push(f0)
            s.close()
        with c.open_stream(f0.width, f0.height) as s:
            t0 = time.perf_counter()
            for f in frames:
                s.push(f)
            s.close()
            return time.perf_counter() - t0


class _Load:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.frames_ok = 0
        self.refused: dict[str, int] = {}
        self.errors: list[str] = []

    def refuse(self, code: int) -> None:
        with self.lock:
            self.refused[str(code)] = self.refused.get(str(code), 0) + 1

    def error(self, msg: str) -> None:
        with self.lock:
            self.errors.append(msg)


def _client_stream(url: str, key: str, payloads: list[bytes], size, load: _Load, deadline: float) -> None:
    import httpx

    from zvc69_rt.bitstream import StreamReader

    w, h = size
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
        def call(method, path, **kw):
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = c.request(method, path, **kw)
                if r.status_code in (429, 503) and "Retry-After" in r.headers:
                    load.refuse(r.status_code)
                    time.sleep(min(float(r.headers["Retry-After"]), 1.0) * (0.5 + np.random.rand()))
                    continue
                return r, time.perf_counter() - t0
            return None, 0.0

        try:
            r, _ = call("POST", "/v1/streams", json={"width": w, "height": h})
            if r is None:
                return
            if r.status_code != 201:
                load.error(f"open: HTTP {r.status_code} {r.text[:200]}")
                return
            sid = r.json()["id"]
            accepted = 0
            for body in payloads:
                r, dt = call("POST", f"/v1/streams/{sid}/frames", content=body)
                if r is None:
                    break
                if r.status_code != 200:
                    load.error(f"frames: HTTP {r.status_code} {r.text[:200]}")
                    break
                accepted += int(r.headers["x-frames-in"])
                with load.lock:
                    load.latencies.append(dt)
                    load.frames_ok += 1
            r, _ = call("POST", f"/v1/streams/{sid}/close")
            zvc = c.get(f"/v1/streams/{sid}/bitstream")
            if r is None or r.status_code != 200 or zvc.status_code != 200:
                load.error(f"close/bitstream: HTTP {getattr(r, 'status_code', None)}/{zvc.status_code}")
            else:
                got = sum(1 for _ in StreamReader(io.BytesIO(zvc.content)).iter_frames())
                if got != accepted:
                    load.error(f"stream {sid}: bitstream has {got} frames, {accepted} were accepted")
            c.delete(f"/v1/streams/{sid}")
        except Exception as exc:  # noqa: BLE001 - a transport error or a crash counts, never aborts the run
            load.error(f"{type(exc).__name__}: {exc}")


def _churn(url: str, key: str, payload: bytes, size, n: int) -> int:
    import httpx

    w, h = size
    fails = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for _ in range(n):
            r = c.post("/v1/streams", json={"width": w, "height": h})
            if r.status_code != 201:
                fails += 1
                continue
            sid = r.json()["id"]
            ok = c.post(f"/v1/streams/{sid}/frames", content=payload).status_code == 200
            ok &= c.post(f"/v1/streams/{sid}/close").status_code == 200
            ok &= c.get(f"/v1/streams/{sid}/bitstream").status_code == 200
            ok &= c.delete(f"/v1/streams/{sid}").status_code == 204
            fails += not ok
    return fails


def run(args) -> int:
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.errors import InputError
    from zvc69_rt.io.open import parse_size

    width, height = parse_size(args.size)
    if not 1 <= args.streams <= MAX_STREAMS:
        raise InputError(f"--streams must be 1..{MAX_STREAMS}")
    if not 1 <= args.frames <= 1000:
        raise InputError("--frames must be 1..1000")
    if not 1 <= args.repeat <= 20:
        raise InputError("--repeat must be 1..20")
    if not 0 <= args.churn <= 5000:
        raise InputError("--churn must be 0..5000")
    max_streams = args.max_streams or args.streams
    frames = _frames(width, height, args.frames)
    cfg = EncoderConfig(width=width, height=height)
    cfg.validate()
    key = secrets.token_urlsafe(24)
    proc, url = _start_server(args, key, max_streams)
    res: dict = {"size": f"{width}x{height}", "streams": args.streams, "server_max_streams": max_streams,
                 "frames_per_stream": args.frames, "workers": args.workers, "cpus": os.cpu_count()}
    try:
        _wait_ready(proc, url)
        res["rss_idle_mib"] = round(_rss(proc.pid) / 2**20, 1)
        # overhead: best of --repeat alternating runs each (the machine may be shared), same frames,
        # one frame per request
        from zvc69_rt.service.encoders import SharedModelEncoderFactory

        factory = SharedModelEncoderFactory()
        factory(cfg).encode(frames[0])  # load + warm, as the server's warm-up does
        t_in, t_http = float("inf"), float("inf")
        for _ in range(args.repeat):
            t_in = min(t_in, _in_process(frames, cfg, factory))
            t_http = min(t_http, _over_http(url, key, frames))
        res.update(inprocess_fps=round(len(frames) / t_in, 2), http_single_stream_fps=round(len(frames) / t_http, 2),
                   http_overhead_pct=round(100 * (t_http / t_in - 1), 1))
        res["rss_after_warm_mib"] = round(_rss(proc.pid) / 2**20, 1)
        # load phase
        payloads = [f.to_bytes() for f in frames]
        load = _Load()
        sampler = _RssSampler(proc.pid)
        sampler.start()
        deadline = time.monotonic() + args.time_limit
        threads = [threading.Thread(target=_client_stream, args=(url, key, payloads, (width, height), load, deadline))
                   for _ in range(args.streams)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.time_limit + 60)
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        lat = np.array(load.latencies) * 1000 if load.latencies else np.zeros(1)
        res.update(load_wall_s=round(wall, 2), load_frames=load.frames_ok, load_fps=round(load.frames_ok / wall, 2),
                   latency_p50_ms=round(float(np.percentile(lat, 50)), 1),
                   latency_p99_ms=round(float(np.percentile(lat, 99)), 1),
                   refused=load.refused, errors=len(load.errors), error_samples=load.errors[:5],
                   rss_peak_mib=round(sampler.peak / 2**20, 1), timed_out=time.monotonic() > deadline)
        res["rss_after_load_mib"] = round(_rss(proc.pid) / 2**20, 1)
        if args.churn:
            t0 = time.perf_counter()
            res["churn_failures"] = _churn(url, key, payloads[0], (width, height), args.churn)
            res.update(churn_streams=args.churn, churn_s=round(time.perf_counter() - t0, 1),
                       rss_after_churn_mib=round(_rss(proc.pid) / 2**20, 1))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        res["server_exit_code"] = proc.returncode
    _print_table(res)
    if args.json:
        print(json.dumps(res))
    return 0 if res.get("errors", 1) == 0 and not res.get("churn_failures") else 1


def _print_table(r: dict) -> None:
    print(f"service bench {r['size']}, {r['streams']} client streams vs {r['server_max_streams']} admitted, "
          f"{r['frames_per_stream']} frames each, {r['workers']} encoder threads, {r['cpus']} CPUs")
    if "inprocess_fps" in r:
        print(f"  in-process encode     {r['inprocess_fps']:8.2f} fps")
        print(f"  one stream over HTTP  {r['http_single_stream_fps']:8.2f} fps  overhead {r['http_overhead_pct']:+.1f} %")
    if "load_fps" in r:
        print(f"  load: {r['load_frames']} frames in {r['load_wall_s']} s = {r['load_fps']} fps; latency p50 "
              f"{r['latency_p50_ms']} ms p99 {r['latency_p99_ms']} ms; refused {r['refused']}; errors {r['errors']}")
        for e in r["error_samples"]:
            print(f"    error: {e}")
        print(f"  server RSS MiB: idle {r['rss_idle_mib']}, warm {r['rss_after_warm_mib']}, peak {r['rss_peak_mib']}, "
              f"after load {r['rss_after_load_mib']}")
    if "churn_streams" in r:
        print(f"  churn: {r['churn_streams']} streams opened/fed/closed/deleted in {r['churn_s']} s, "
              f"{r['churn_failures']} failures, RSS after {r['rss_after_churn_mib']} MiB")
