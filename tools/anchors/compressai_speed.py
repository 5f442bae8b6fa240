"""CompressAI anchor for `zvc69 bench codec`: compress/decompress time of MeanScaleHyperprior.

Runs in a separate environment (CompressAI pins versions we do not want in ours); see
docs/BENCHMARKS.md for how to make it. Prints one JSON line.

    ANCHOR_PY=/work/anchors-venv/bin/python
    $ANCHOR_PY tools/anchors/compressai_speed.py --N 64 --M 96 --sizes 1280x704,1920x1088
"""

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--M", type=int, default=96)
    ap.add_argument("--sizes", default="1280x704,1920x1088")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from compressai.models import MeanScaleHyperprior

    torch.manual_seed(0)
    net = MeanScaleHyperprior(args.N, args.M).eval()
    net.update(force=True)
    out = {"model": f"MeanScaleHyperprior({args.N},{args.M})", "threads": args.threads, "sizes": {}}
    for s in args.sizes.split(","):
        w, h = map(int, s.split("x"))
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        x = (0.5 + 0.25 * torch.sin(xx / 13.0) * torch.cos(yy / 17.0)).expand(1, 3, h, w).contiguous()
        with torch.no_grad():
            net.compress(x)
            tc, td = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                enc = net.compress(x)
                tc.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                net.decompress(enc["strings"], enc["shape"])
                td.append(time.perf_counter() - t0)
        out["sizes"][s] = {"compress_s": min(tc), "decompress_s": min(td)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
