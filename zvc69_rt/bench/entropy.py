"""`zvc69 bench entropy`: rANS speed and rate on a 1080p-shaped latent.

192 x 68 x 120 symbols (1920x1088 at /16), scales log-uniform over 0.2..8, Gaussian
symbols. Reports Msym/s (best of N after a warm-up), bits/symbol against the ideal
-log2 p under the same quantized CDFs, parallel efficiency (auto slices vs 1 slice),
and the first-call cost in a fresh process (numba compile or cache load).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

HELP = "rANS encode/decode Msym/s and rate vs ideal on a 1080p-shaped latent"


def add_arguments(p) -> None:
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--shape", default="192x68x120", help="CxHxW of the latent")
    p.add_argument("--json", action="store_true")


def _best(fn, n):
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(args) -> int:
    import numba

    from zvc69_rt import entropy

    c, h, w = (int(v) for v in args.shape.split("x"))
    rng = np.random.default_rng(0)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(8.0), (c, h, w))).astype(np.float32)
    idx = entropy.scale_to_index(scales)
    sym = np.rint(rng.normal(0, 1, (c, h, w)) * entropy.SCALE_TABLE[idx]).astype(np.int32)
    n = sym.size

    t_first = _first_call_seconds()
    res = {"shape": [c, h, w], "symbols": n, "threads": numba.get_num_threads(),
           "first_call_fresh_process_s": t_first}
    for label, slices in (("1 slice", 1), ("auto", None)):
        data = entropy.encode_gaussian(sym, idx, slices)
        te, data = _best(lambda: entropy.encode_gaussian(sym, idx, slices), args.repeat)
        td, out = _best(lambda: entropy.decode_gaussian(data, idx), args.repeat)
        assert np.array_equal(out, sym)
        res[label] = {"slices": int(data[5]), "encode_msym_s": n / te / 1e6, "decode_msym_s": n / td / 1e6,
                      "bytes": len(data)}
    t = entropy.gaussian_table()
    s = sym - t.offset[idx]
    freq = (t.cdf[idx, s + 1] - t.cdf[idx, s]).astype(np.float64)
    ideal = float(np.sum(-np.log2(freq / 65536.0)))
    actual = res["auto"]["bytes"] * 8
    res["bits_per_symbol"] = actual / n
    res["ideal_bits_per_symbol"] = ideal / n
    res["overhead_vs_ideal_pct"] = 100 * (actual / ideal - 1)
    res["parallel_speedup_encode"] = res["auto"]["encode_msym_s"] / res["1 slice"]["encode_msym_s"]
    res["parallel_speedup_decode"] = res["auto"]["decode_msym_s"] / res["1 slice"]["decode_msym_s"]
    for label in ("1 slice", "auto"):
        r = res[label]
        print(f"{label:8s} ({r['slices']:3d} slices): encode {r['encode_msym_s']:7.1f} Msym/s, "
              f"decode {r['decode_msym_s']:7.1f} Msym/s")
    print(f"rate: {res['bits_per_symbol']:.4f} bits/symbol, ideal {res['ideal_bits_per_symbol']:.4f} "
          f"(+{res['overhead_vs_ideal_pct']:.3f} % incl. headers and final states)")
    print(f"parallel speed-up on {res['threads']} threads: encode x{res['parallel_speedup_encode']:.2f}, "
          f"decode x{res['parallel_speedup_decode']:.2f}; first call in a fresh process {t_first:.2f} s")
    if args.json:
        print(json.dumps(res))
    return 0


def _first_call_seconds() -> float:
    code = ("import time,numpy as np;t=time.perf_counter();from zvc69_rt import entropy;"
            "i=np.zeros((1,4,4),np.uint8);entropy.decode_gaussian(entropy.encode_gaussian(np.zeros((1,4,4),np.int32),i),i);"
            "print(time.perf_counter()-t)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    return float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else float("nan")
