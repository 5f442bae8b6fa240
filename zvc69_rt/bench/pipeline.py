"""`zvc69 bench pipeline`: pipelined vs sequential encoder in the same run.

Efficiency = fps_pipelined x max(stage time); `identical` is true when the pipelined
bytes equal the sequential encoder's. The last line with --json is the JSON object.
"""

from __future__ import annotations

import json

HELP = "pipelined vs sequential encoder: fps, per-stage latency, efficiency, identical output"
SIZES = {"realtime_720p": (1280, 720), "realtime_1080p": (1920, 1080), "low_latency": (1280, 720),
         "high_throughput": (1920, 1080)}


def add_arguments(p) -> None:
    p.add_argument("--preset", default="realtime_720p", choices=sorted(SIZES))
    p.add_argument("--size", default=None, help="WxH (default: the preset's)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from zvc69_rt.pipeline.benchmark import codec_benchmark

    w, h = (int(v) for v in args.size.split("x")) if args.size else SIZES[args.preset]
    r = codec_benchmark(w, h, args.frames, args.preset, precision=args.precision)
    print(f"{w}x{h} {args.preset}, {args.frames} frames, {args.precision}: sequential {r['fps_sequential']:.2f} fps, "
          f"pipelined {r['fps_pipelined']:.2f} fps, efficiency {r['efficiency']:.2f}, identical {r['identical']}, "
          f"peak RSS {r.get('peak_rss_mib', float('nan')):.0f} MiB")
    if args.json:
        print(json.dumps(r, default=str))
    return 0
