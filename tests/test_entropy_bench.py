"""`zvc69 bench entropy` on a small latent: figures present, last line JSON, rate honest."""

import argparse
import json

from zvc69_rt.bench import entropy as bench


def test_bench_entropy_json(capsys, monkeypatch):
    monkeypatch.setattr(bench, "machine_parallel_speedup", lambda repeat=3: 1.0)
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = p.parse_args(["--shape", "8x16x12", "--repeat", "1", "--no-compile", "--json", "--anchor-python", ""])
    assert bench.run(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    res = json.loads(lines[-1])
    assert res["shape"] == [8, 16, 12] and res["symbols"] == 8 * 16 * 12
    for key in ("parallel", "single"):
        r = res[key]
        assert r["encode_msym_s"] > 0 and r["decode_msym_s"] > 0
        assert abs(r["bits_per_symbol"] * res["symbols"] - 8 * r["bytes"]) < 1e-6 * r["bytes"]
        assert r["overhead_vs_ideal_pct"] > -0.5  # nothing beats -log2 p by more than rounding
    assert res["single"]["slices"] == 1
    assert "compile" not in res
    assert any("ZVC69 rANS" in line for line in lines)


def test_bench_latent_is_the_documented_one():
    sym, idx = bench.make_latent((4, 5, 6), seed=0)
    assert sym.dtype.name == "int32" and idx.dtype.name == "uint8" and sym.shape == idx.shape == (4, 5, 6)
    # scales 0.2..8 map to table rows between those of 0.2 and 8
    from zvc69_rt import entropy

    lo, hi = entropy.scale_to_index([0.2, 8.0])
    assert idx.min() >= lo and idx.max() <= hi
