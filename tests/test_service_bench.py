"""`zvc69 bench service` smoke run (small, loopback, bounded): JSON last line, overload handled, no errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
