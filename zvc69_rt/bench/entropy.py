"""`zvc69 bench entropy`: rANS speed and rate on a 1080p-shaped latent.

The latent: 192 x 68 x 120 symbols round(N(0, s)) with scales s log-uniform over
0.2..8, each coded with its scale_to_index row. Reported: encode/decode Msym/s (best of
--repeat after a warm-up call) with automatic slices and with one slice (parallel
efficiency), bits/symbol against the ideal -log2 p under the same quantized CDFs,
numba's first-call cost in fresh processes (cold cache, warm cache) and, when
available, CompressAI's rANS (compressai.ans) and constriction on the same symbols.
Anchors run in this interpreter when importable, else in --anchor-python (a separate
venv, so their pins never touch ours; see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HELP = "rANS encode/decode speed and rate on a 1080p-shaped latent (ZVCP slices, anchors)"


def add_arguments(p) -> None:
    p.add_argument("--shape", default="192x68x120", help="latent C x H x W (default: 1080p, M=192)")
    p.add_argument("--repeat", type=int, default=7, help="timed runs per figure; the best counts")
    p.add_argument("--slices", type=int, default=None, help="slices for the parallel figures (default: auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-compile", action="store_true", help="skip the fresh-process compile timing")
    p.add_argument("--anchor-python", default=os.environ.get("ZVC69_ANCHOR_PY"),
                   help="interpreter with compressai/constriction for the anchors (env ZVC69_ANCHOR_PY)")
    p.add_argument("--json", action="store_true", help="print a JSON object as the last line")


def make_latent(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """symbols int32 and scale indexes uint8 of the benchmark latent (scales 0.2..8)."""
    from zvc69_rt.entropy import scale_to_index

    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(8.0), shape)).astype(np.float32)
    sym = np.rint(rng.standard_normal(shape) * scales).astype(np.int32)
    return sym, scale_to_index(scales)


def _best(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _compile_times() -> dict:
    """First import + warmup() in fresh processes: cold numba cache, then warm cache."""
    code = "import time; t=time.perf_counter(); import zvc69_rt.entropy as e; e.warmup(); print(time.perf_counter()-t)"
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("cold_s", "cached_s"):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, check=False)
            if r.returncode != 0:
                return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
            out[key] = float(r.stdout.strip().splitlines()[-1])
    return out


_ANCHOR_CODE = r'''
import json, sys, time
import numpy as np
d = np.load(sys.argv[1])
sym, idx, cdf, lens, offs = d["sym"].ravel(), d["idx"].ravel(), d["cdf"], d["lens"], d["offs"]
repeat = int(sys.argv[2])
res = {}
def best(fn):
    fn(); b = 1e9
    for _ in range(repeat):
        t = time.perf_counter(); fn(); b = min(b, time.perf_counter() - t)
    return b
try:
    from compressai import ans
    s, i = sym.tolist(), idx.tolist()
    rows = [cdf[k, : lens[k] + 1].tolist() for k in range(len(lens))]
    cl, of = (lens + 1).tolist(), offs.tolist()
    enc = lambda: ans.RansEncoder().encode_with_indexes(s, i, rows, cl, of)
    data = enc()
    def dec():
        return ans.RansDecoder().decode_with_indexes(data, i, rows, cl, of)
    ok = dec() == s
    res["compressai"] = {"encode_s": best(enc), "decode_s": best(dec), "bytes": len(data), "exact": ok,
                         "note": "same CDF tables, one thread, Python lists in/out"}
except ImportError as e:
    res["compressai"] = {"missing": str(e)}
try:
    import constriction
    scales = np.asarray(d["scales"], np.float64)[idx]
    model = constriction.stream.model.QuantizedGaussian(-128, 127)
    means = np.zeros(sym.size)
    s32 = sym.astype(np.int32)
    def enc():
        c = constriction.stream.stack.AnsCoder()
        c.encode_reverse(s32, model, means, scales)
        return c
    coder = enc()
    comp = coder.get_compressed()
    def dec():
        return constriction.stream.stack.AnsCoder(comp).decode(model, means, scales)
    res["constriction"] = {"encode_s": best(enc), "decode_s": best(dec), "bytes": int(comp.nbytes),
                           "exact": bool((dec() == s32).all()),
                           "note": "its own QuantizedGaussian model on the table scales, range [-128, 127]"}
except ImportError as e:
    res["constriction"] = {"missing": str(e)}
print(json.dumps(res))
'''


def _anchors(sym: np.ndarray, idx: np.ndarray, python: str | None, repeat: int) -> dict:
    """Run the anchor snippet here if compressai or constriction import, else in `python`."""
    import importlib.util

    from zvc69_rt.entropy import SCALE_TABLE, gaussian_table

    here = any(importlib.util.find_spec(m) is not None for m in ("compressai", "constriction"))
    exe = sys.executable if here else python
    if not exe:
        return {"missing": "neither compressai nor constriction importable; pass --anchor-python"}
    t = gaussian_table()
    clipped = np.clip(sym, -128, 127)  # constriction's model cannot code beyond its range
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "latent.npz")
        np.savez(path, sym=clipped, idx=idx, cdf=t.cdf, lens=t.cdf_length, offs=t.offset, scales=SCALE_TABLE)
        r = subprocess.run([exe, "-c", _ANCHOR_CODE, path, str(max(1, min(repeat, 3)))],
                           capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1], "python": exe}
    res = json.loads(r.stdout.strip().splitlines()[-1])
    n = sym.size
    for v in res.values():
        if "encode_s" in v:
            v["encode_msym_s"] = n / v["encode_s"] / 1e6
            v["decode_msym_s"] = n / v["decode_s"] / 1e6
            v["bits_per_symbol"] = 8 * v["bytes"] / n
    res["python"] = exe
    return res


def machine_parallel_speedup(repeat: int = 3) -> float:
    """Speed-up of a plain compute-bound numba loop on all numba threads vs one.

    Calibrates the parallel-efficiency figures: on a shared machine the second core is
    often not really free, and then no coder can scale either.
    """
    import numba
    from numba import njit, prange

    @njit(nogil=True)
    def work(n):
        x = 1
        for i in range(n):
            x = (x * 48271 + i) % 2147483647
        return x

    @njit(parallel=True, nogil=True)
    def par(k, n):
        out = np.empty(k, np.int64)
        for i in prange(k):
            out[i] = work(n)
        return out

    threads = numba.get_num_threads()
    par(threads, 10)
    times = {}
    try:
        for t in (1, threads):
            numba.set_num_threads(t)
            times[t] = _best(lambda: par(threads, 2_000_000), repeat)
    finally:
        numba.set_num_threads(threads)
    return times[1] / times[threads]


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def run(args) -> int:
    import numba

    from zvc69_rt import entropy
    from zvc69_rt.entropy import coder

    shape = tuple(int(v) for v in args.shape.lower().split("x"))
    if len(shape) != 3 or min(shape) <= 0:
        from zvc69_rt.errors import InputError

        raise InputError(f"--shape must be CxHxW with positive sizes, got {args.shape!r}")
    sym, idx = make_latent(shape, args.seed)
    n = sym.size
    entropy.warmup()
    threads = numba.get_num_threads()
    slices = args.slices or coder.auto_slices(shape[1], n)
    res: dict = {
        "shape": list(shape), "symbols": n, "threads": threads, "slices": slices, "cpu": _cpu_name(),
        "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    table = entropy.gaussian_table()
    ideal = table.ideal_bits(sym, idx)
    for key, ns in (("parallel", slices), ("single", 1)):
        data = entropy.encode_gaussian(sym, idx, ns)
        if not np.array_equal(entropy.decode_gaussian(data, idx), sym):
            raise AssertionError("entropy benchmark: round trip failed")
        te = _best(lambda ns=ns: entropy.encode_gaussian(sym, idx, ns), args.repeat)
        td = _best(lambda data=data: entropy.decode_gaussian(data, idx), args.repeat)
        res[key] = {
            "slices": ns, "bytes": len(data), "encode_ms": te * 1e3, "decode_ms": td * 1e3,
            "encode_msym_s": n / te / 1e6, "decode_msym_s": n / td / 1e6,
            "bits_per_symbol": 8 * len(data) / n, "overhead_vs_ideal_pct": 100 * (8 * len(data) / ideal - 1),
        }
    res["ideal_bits_per_symbol"] = ideal / n
    for d in ("encode", "decode"):
        res[f"{d}_parallel_efficiency"] = (res["parallel"][f"{d}_msym_s"] / res["single"][f"{d}_msym_s"]
                                           / max(1, min(threads, slices)))
    res["machine_parallel_speedup"] = machine_parallel_speedup()
    if not args.no_compile:
        res["compile"] = _compile_times()
    res["anchors"] = _anchors(sym, idx, args.anchor_python, args.repeat)
    _print_table(res)
    if args.json:
        print(json.dumps(res))
    return 0


def _print_table(r: dict) -> None:
    print(f"entropy: latent {'x'.join(map(str, r['shape']))} ({r['symbols'] / 1e6:.2f} M symbols, scales 0.2..8), "
          f"{r['threads']} numba threads, {r['cpu']}, load {r['loadavg_1m']}")
    print(f"{'coder':<28}{'enc Msym/s':>11}{'dec Msym/s':>11}{'bits/sym':>10}{'vs ideal':>10}")
    for key in ("parallel", "single"):
        v = r[key]
        print(f"{'ZVC69 rANS, ' + str(v['slices']) + ' slice(s)':<28}{v['encode_msym_s']:>11.1f}"
              f"{v['decode_msym_s']:>11.1f}{v['bits_per_symbol']:>10.4f}{v['overhead_vs_ideal_pct']:>9.3f}%")
    print(f"{'ideal -log2 p (same CDFs)':<28}{'':>22}{r['ideal_bits_per_symbol']:>10.4f}")
    for name, v in r.get("anchors", {}).items():
        if isinstance(v, dict) and "encode_msym_s" in v:
            print(f"{name:<28}{v['encode_msym_s']:>11.1f}{v['decode_msym_s']:>11.1f}{v['bits_per_symbol']:>10.4f}")
        elif isinstance(v, dict):
            print(f"{name:<28}  not run: {v.get('missing') or v.get('error')}")
        elif name == "missing":
            print(f"anchors: not run ({v})")
    print(f"parallel efficiency: encode {r['encode_parallel_efficiency']:.2f}, "
          f"decode {r['decode_parallel_efficiency']:.2f} (a plain numba loop: x{r['machine_parallel_speedup']:.2f} "
          f"on {r['threads']} threads right now)")
    c = r.get("compile")
    if c:
        if "error" in c:
            print(f"compile: failed ({c['error']})")
        else:
            print(f"first import + warmup() in a fresh process: {c['cold_s']:.2f} s cold cache, "
                  f"{c['cached_s']:.2f} s cached")
