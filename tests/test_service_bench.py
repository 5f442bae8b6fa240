"""`zvc69 bench service` smoke run (small, loopback, bounded): JSON last line, overload handled, no errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_service_overload_smoke():
    r = subprocess.run([sys.executable, "-m", "zvc69_rt", "bench", "service", "--streams", "3", "--max-streams", "1",
                        "--frames", "2", "--size", "64x64", "--repeat", "1", "--churn", "5", "--time-limit", "60",
                        "--json"], capture_output=True, cwd=REPO, timeout=240, check=False)
    assert r.returncode == 0, r.stdout.decode()[-2000:] + r.stderr.decode()[-2000:]
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert res["errors"] == 0 and res["churn_failures"] == 0 and res["server_exit_code"] == 0
    assert res["load_frames"] == 3 * 2  # every stream got every frame in, despite the 1-stream limit
    assert set(res["refused"]) <= {"429", "503"}
    for k in ("inprocess_fps", "http_overhead_pct", "latency_p50_ms", "latency_p99_ms", "rss_peak_mib",
              "rss_after_churn_mib"):
        assert isinstance(res[k], (int, float)), k
    assert res["rss_peak_mib"] >= res["rss_idle_mib"] > 0
    assert res["admitted_streams"] == 1 and res["rss_budget_mib"] == 1024 + 300
    assert res["churn_gauges_zero"] is True and res["churn_rss_ratio"] > 0
    for k in ("http_overhead_median_pct", "server_encode_ms_per_frame", "http_transport_pct"):
        assert isinstance(res[k], (int, float)), k
    assert len(res["overhead_pairs_s"]) == 1
    assert set(res["targets"]) == {"http_overhead_le_10pct", "rss_peak_le_1GiB_plus_300MiB_per_stream",
                                   "churn_rss_within_10pct_of_idle"}


def test_bench_service_churn_mode_reports_rss_and_gauges_back_to_zero():
    r = subprocess.run([sys.executable, "-m", "zvc69_rt", "bench", "service", "--phases", "churn", "--churn", "20",
                        "--churn-size", "64x64", "--churn-frames", "2", "--churn-concurrency", "2", "--json"],
                       capture_output=True, cwd=REPO, timeout=120, check=False)
    assert r.returncode == 0, r.stdout.decode()[-2000:] + r.stderr.decode()[-2000:]
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert res["phases"] == ["churn"] and "load_frames" not in res and "inprocess_fps" not in res
    assert res["churn_streams"] == 20 and res["churn_failures"] == 0 and res["churn_server_exit_code"] == 0
    assert res["churn_size"] == "64x64" and res["churn_frames"] == 2
    assert res["churn_gauges"] == {"zvc69_active_streams": 0, "zvc69_queue_requests": 0, "zvc69_queue_bytes": 0}
    assert res["churn_gauges_zero"] is True
    assert [s[0] for s in res["churn_rss_samples_mib"]] == list(range(2, 21, 2))
    assert res["churn_rss_idle_mib"] > 0 and res["rss_after_churn_mib"] > 0
    assert res["churn_rss_ratio"] == pytest.approx(res["rss_after_churn_mib"] / res["churn_rss_idle_mib"], abs=0.01)
    assert res["targets"] == {"churn_rss_within_10pct_of_idle": res["churn_target_met"]}


def test_bench_service_phases_are_checked():
    r = subprocess.run([sys.executable, "-m", "zvc69_rt", "bench", "service", "--phases", "churn"],
                       capture_output=True, cwd=REPO, timeout=60, check=False)
    assert r.returncode != 0 and b"--churn N" in r.stderr + r.stdout
