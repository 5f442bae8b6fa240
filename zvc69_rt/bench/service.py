"""`zvc69 bench service`: N concurrent streams against a local `zvc69 serve` (127.0.0.1 only).

Phases (``--phases``, default ``overhead,load`` plus ``churn`` when ``--churn N`` is given):

* ``overhead``: in-process encoding of the same frames (the anchor, same shared-model
  encoder the server builds) alternated with one stream over HTTP, ``--repeat`` pairs.
  Reports the best-of ratio (best HTTP time / best in-process time - 1), the median of
  the per-pair ratios, and the split of the HTTP time into the server's encoder time
  (``Server-Timing`` header of each response) and everything else (client framing, HTTP,
  body reading, thread hops): ``http_transport_pct`` = that rest / in-process time, which
  a shared machine's noise hardly moves.
* ``load``: N streams at once, each pushing one frame per request, against a server that
  admits ``--max-streams`` (fewer than N = overload: 429/503 are expected and retried
  after Retry-After). Frames/s, per-request latency p50/p99, refusals, errors (any other
  failure, 5xx other than 503, or a bitstream missing an accepted frame), server RSS
  (idle, peak, after) and the memory target: peak <= 1 GiB + 300 MiB per admitted stream.
* ``churn`` (leak check, on a fresh server): open, feed ``--churn-frames`` frames of
  ``--churn-size``, close, fetch and delete ``--churn`` streams (``--churn-concurrency``
  at a time); server RSS at idle (ready, before any stream), sampled along the way and
  after, the ratio to the idle baseline (target <= 1.10) and the service's own gauges
  (active streams, queued requests, bytes in flight), which must be back to 0.

Server RSS is read from /proc/PID/status (VmRSS): Linux only (0 elsewhere).
Bounded: at most 64 streams, ``--time-limit`` seconds of load, 5,000 churned streams.
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
    p.add_argument("--churn", type=int, default=0, help="leak check: open/feed/close/fetch/delete this many streams "
                   "on a fresh server (e.g. 1000)")
    p.add_argument("--churn-size", default="128x128", help="WxH of the churned streams' frames")
    p.add_argument("--churn-frames", type=int, default=2, help="frames fed to each churned stream (one request)")
    p.add_argument("--churn-concurrency", type=int, default=1, help="churned streams open at a time")
    p.add_argument("--phases", default=None, help="comma list of overhead,load,churn (default: overhead,load, "
                   "plus churn when --churn > 0)")
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


def _over_http(url: str, key: str, frames) -> tuple[float, dict[str, float]]:
    """(client seconds to push ``frames`` one per request and close, the server's Server-Timing totals)."""
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
            return time.perf_counter() - t0, s.server_seconds


def _overhead(url: str, key: str, frames, cfg, repeat: int) -> dict:
    """In-process vs one HTTP stream, alternating ``repeat`` pairs (which goes first alternates too)."""
    from zvc69_rt.service.encoders import SharedModelEncoderFactory

    factory = SharedModelEncoderFactory()
    factory(cfg).encode(frames[0])  # load + warm, as the server's warm-up does
    pairs = []
    for i in range(repeat):
        if i % 2:
            t_http, timing = _over_http(url, key, frames)
            t_in = _in_process(frames, cfg, factory)
        else:
            t_in = _in_process(frames, cfg, factory)
            t_http, timing = _over_http(url, key, frames)
        pairs.append((t_in, t_http, timing))
    t_in = min(p[0] for p in pairs)
    best = min(pairs, key=lambda p: p[1])
    t_http, timing = best[1], best[2]
    ratios = sorted(p[1] / p[0] for p in pairs)
    rest = [(p[1] - p[2].get("encode", 0.0)) for p in pairs]  # client framing + HTTP + body + hops
    n = len(frames)
    res = {"inprocess_fps": round(n / t_in, 2), "http_single_stream_fps": round(n / t_http, 2),
           "http_overhead_pct": round(100 * (t_http / t_in - 1), 1),
           "http_overhead_median_pct": round(100 * (float(np.median(ratios)) - 1), 1),
           "overhead_pairs_s": [[round(p[0], 3), round(p[1], 3)] for p in pairs],
           "server_encode_ms_per_frame": round(1000 * timing.get("encode", 0.0) / n, 1),
           "server_body_ms_per_frame": round(1000 * timing.get("body", 0.0) / n, 2),
           "server_wait_ms_per_frame": round(1000 * timing.get("wait", 0.0) / n, 2),
           "http_transport_ms_per_frame": round(1000 * min(rest) / n, 2),
           "http_transport_pct": round(100 * min(rest) / t_in, 2)}
    res["overhead_target_met"] = res["http_overhead_pct"] <= 10.0
    return res


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


def _gauges(c, names: tuple[str, ...]) -> dict[str, float]:
    """Current values of unlabelled gauges from the server's /metrics."""
    out = {}
    for line in c.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            out[name] = float(value)
    return out


CHURN_GAUGES = ("zvc69_active_streams", "zvc69_queue_requests", "zvc69_queue_bytes")


def _churn_one(c, payload: bytes, size) -> bool:
    w, h = size
    r = c.post("/v1/streams", json={"width": w, "height": h})
    if r.status_code != 201:
        return False
    sid = r.json()["id"]
    ok = c.post(f"/v1/streams/{sid}/frames", content=payload).status_code == 200
    ok &= c.post(f"/v1/streams/{sid}/close").status_code == 200
    ok &= c.get(f"/v1/streams/{sid}/bitstream").status_code == 200
    ok &= c.delete(f"/v1/streams/{sid}").status_code == 204
    return ok


def _churn(url: str, key: str, pid: int, payload: bytes, size, n: int, concurrency: int = 1) -> dict:
    """Open/feed/close/fetch/delete ``n`` streams, ``concurrency`` at a time; RSS along the way."""
    import httpx

    auth = {"Authorization": f"Bearer {key}"}
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "fails": 0}
    samples: list[list[float]] = []
    every = max(1, n // 10)

    def worker() -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            while True:
                with lock:
                    if state["next"] >= n:
                        return
                    state["next"] += 1
                try:
                    ok = _churn_one(c, payload, size)
                except httpx.HTTPError:
                    ok = False
                with lock:
                    state["done"] += 1
                    state["fails"] += not ok
                    if state["done"] % every == 0:
                        samples.append([state["done"], round(_rss(pid) / 2**20, 1)])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(max(1, min(concurrency, n)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
        gauges = _gauges(c, CHURN_GAUGES)
    return {"churn_streams": n, "churn_failures": state["fails"], "churn_s": round(wall, 1),
            "churn_streams_per_s": round(n / wall, 1), "churn_rss_samples_mib": samples, "churn_gauges": gauges}


def _churn_phase(args, key: str, payload: bytes, size) -> dict:
    """The leak check on its own server: idle baseline (ready, no stream yet), churn, after."""
    proc, url = _start_server(args, key, max(1, args.churn_concurrency))
    res: dict = {"churn_size": f"{size[0]}x{size[1]}", "churn_frames": args.churn_frames,
                 "churn_concurrency": args.churn_concurrency}
    try:
        _wait_ready(proc, url)
        time.sleep(1.0)  # let the warm-up's garbage settle before the baseline
        idle = _rss(proc.pid)
        res.update(_churn(url, key, proc.pid, payload, size, args.churn, args.churn_concurrency))
        time.sleep(1.0)
        after = _rss(proc.pid)
        samples = res["churn_rss_samples_mib"]
        half = [s for s in samples if s[0] >= args.churn / 2]
        slope = ((half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0]) * 100
                 if len(half) >= 2 and half[-1][0] > half[0][0] else 0.0)
        ratio = after / idle if idle else float("nan")
        res.update(churn_rss_idle_mib=round(idle / 2**20, 1), rss_after_churn_mib=round(after / 2**20, 1),
                   churn_rss_ratio=round(ratio, 3), churn_rss_mib_per_100_streams_2nd_half=round(slope, 2),
                   churn_gauges_zero=all(v == 0 for v in res["churn_gauges"].values())
                   and len(res["churn_gauges"]) == len(CHURN_GAUGES))
        res["churn_target_met"] = bool(idle) and ratio <= 1.10
    finally:
        res["churn_server_exit_code"] = _stop(proc)
    return res


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


PHASES = ("overhead", "load", "churn")


def _phases(args) -> list[str]:
    from zvc69_rt.errors import InputError

    if args.phases is None:
        return ["overhead", "load"] + (["churn"] if args.churn else [])
    out = [p.strip() for p in args.phases.split(",") if p.strip()]
    bad = [p for p in out if p not in PHASES]
    if bad or not out:
        raise InputError(f"--phases takes a comma list of {', '.join(PHASES)}; got {args.phases!r}")
    if "churn" in out and not args.churn:
        raise InputError("--phases churn needs --churn N (streams to open and close)")
    return out


def _load(url: str, key: str, pid: int, frames, size, args, max_streams: int) -> dict:
    payloads = [f.to_bytes() for f in frames]
    load = _Load()
    sampler = _RssSampler(pid)
    sampler.start()
    deadline = time.monotonic() + args.time_limit
    threads = [threading.Thread(target=_client_stream, args=(url, key, payloads, size, load, deadline))
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
    admitted = min(args.streams, max_streams)
    budget = 1024 + 300 * admitted
    peak = sampler.peak / 2**20
    return {"load_wall_s": round(wall, 2), "load_frames": load.frames_ok, "load_fps": round(load.frames_ok / wall, 2),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 1),
            "refused": load.refused, "errors": len(load.errors), "error_samples": load.errors[:5],
            "rss_peak_mib": round(peak, 1), "timed_out": time.monotonic() > deadline,
            "admitted_streams": admitted, "rss_budget_mib": budget, "rss_target_met": peak <= budget}


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
    if not 1 <= args.churn_frames <= 16:
        raise InputError("--churn-frames must be 1..16")
    if not 1 <= args.churn_concurrency <= MAX_STREAMS:
        raise InputError(f"--churn-concurrency must be 1..{MAX_STREAMS}")
    phases = _phases(args)
    max_streams = args.max_streams or args.streams
    key = secrets.token_urlsafe(24)
    res: dict = {"size": f"{width}x{height}", "streams": args.streams, "server_max_streams": max_streams,
                 "frames_per_stream": args.frames, "workers": args.workers, "cpus": os.cpu_count(),
                 "phases": phases, "rss_source": "/proc/PID/status VmRSS (Linux only)"}
    if "overhead" in phases or "load" in phases:
        frames = _frames(width, height, args.frames)
        cfg = EncoderConfig(width=width, height=height)
        cfg.validate()
        proc, url = _start_server(args, key, max_streams)
        try:
            _wait_ready(proc, url)
            res["rss_idle_mib"] = round(_rss(proc.pid) / 2**20, 1)
            if "overhead" in phases:
                res.update(_overhead(url, key, frames, cfg, args.repeat))
                res["rss_after_warm_mib"] = round(_rss(proc.pid) / 2**20, 1)
            if "load" in phases:
                res.update(_load(url, key, proc.pid, frames, (width, height), args, max_streams))
                res["rss_after_load_mib"] = round(_rss(proc.pid) / 2**20, 1)
        finally:
            res["server_exit_code"] = _stop(proc)
    if "churn" in phases:
        cw, ch = parse_size(args.churn_size)
        payload = b"".join(f.to_bytes() for f in _frames(cw, ch, args.churn_frames))
        res.update(_churn_phase(args, key, payload, (cw, ch)))
    res["targets"] = {k: res[v] for k, v in (("http_overhead_le_10pct", "overhead_target_met"),
                                              ("rss_peak_le_1GiB_plus_300MiB_per_stream", "rss_target_met"),
                                              ("churn_rss_within_10pct_of_idle", "churn_target_met")) if v in res}
    _print_table(res)
    if args.json:
        print(json.dumps(res))
    ok = res.get("errors", 0) == 0 and not res.get("churn_failures") and res.get("server_exit_code", 0) == 0
    return 0 if ok else 1


def _print_table(r: dict) -> None:
    if r["phases"] == ["churn"]:
        print(f"service bench (churn only), {r['workers']} encoder threads, {r['cpus']} CPUs")
    else:
        print(f"service bench {r['size']}, {r['streams']} client streams vs {r['server_max_streams']} admitted, "
              f"{r['frames_per_stream']} frames each, {r['workers']} encoder threads, {r['cpus']} CPUs")
    if "inprocess_fps" in r:
        print(f"  in-process encode     {r['inprocess_fps']:8.2f} fps")
        print(f"  one stream over HTTP  {r['http_single_stream_fps']:8.2f} fps  overhead {r['http_overhead_pct']:+.1f} % "
              f"(best of; median of pairs {r['http_overhead_median_pct']:+.1f} %)")
        print(f"  per frame over HTTP: server encode {r['server_encode_ms_per_frame']} ms, body read "
              f"{r['server_body_ms_per_frame']} ms, wait/hops {r['server_wait_ms_per_frame']} ms; everything but "
              f"the encoder {r['http_transport_ms_per_frame']} ms = {r['http_transport_pct']} % of in-process")
    if "load_fps" in r:
        print(f"  load: {r['load_frames']} frames in {r['load_wall_s']} s = {r['load_fps']} fps; latency p50 "
              f"{r['latency_p50_ms']} ms p99 {r['latency_p99_ms']} ms; refused {r['refused']}; errors {r['errors']}")
        for e in r["error_samples"]:
            print(f"    error: {e}")
        print(f"  server RSS MiB: idle {r['rss_idle_mib']}, warm {r.get('rss_after_warm_mib', '-')}, peak "
              f"{r['rss_peak_mib']} (target <= {r['rss_budget_mib']} for {r['admitted_streams']} admitted), "
              f"after load {r['rss_after_load_mib']}")
    if "churn_streams" in r:
        print(f"  churn: {r['churn_streams']} streams of {r['churn_size']} x {r['churn_frames']} frames "
              f"({r['churn_concurrency']} at a time) in {r['churn_s']} s, {r['churn_failures']} failures; RSS MiB "
              f"idle {r['churn_rss_idle_mib']} -> after {r['rss_after_churn_mib']} (x{r['churn_rss_ratio']}, "
              f"2nd half {r['churn_rss_mib_per_100_streams_2nd_half']} MiB/100 streams); gauges {r['churn_gauges']}")
    if r.get("targets"):
        print("  targets: " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}" for k, v in r["targets"].items()))
