"""`zvc69 engines build`: compile the bundle's ONNX graphs into cached TensorRT engines."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("engines", help="build TensorRT engines for a model bundle")
    cmds = p.add_subparsers(dest="engines_command", metavar="ACTION")
    b = cmds.add_parser("build", help="compile every graph for one precision and profile (cached)")
    b.add_argument("--precision", choices=("fp16", "int8", "fp32"), default="fp16",
                   help="which ONNX variant to compile (precision lives in the graph)")
    b.add_argument("--profile", default="1080p", help="largest frame the engines accept: 720p, 1080p, 4k or WxH")
    b.add_argument("--cache", default=None, help="engine cache folder (default $ZVC69_ENGINE_CACHE or "
                                                 "~/.cache/zvc69/engines)")
    b.add_argument("--model", default=None, help="model bundle folder (default: the shipped bundle)")
    b.add_argument("--force", action="store_true", help="rebuild even when a valid cached engine exists")
    b.add_argument("--json", action="store_true", help="print the rows as one JSON line at the end")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_build(args) -> int:
    from pathlib import Path

    from zvc69_rt.engines.bundle import build_bundle
    from zvc69_rt.engines.onnx_support import require_parsable
    from zvc69_rt.engines.profiles import parse_profile
    from zvc69_rt.engines.trt import import_tensorrt
    from zvc69_rt.models.bundle import ModelBundle

    parse_profile(args.profile)  # bad input is reported before anything heavy
    bundle = ModelBundle.load(args.model)
    require_parsable(bundle)  # a graph TensorRT would refuse is an error on any machine
    import_tensorrt()  # NotAvailableError (exit 2) with the install hint
    rows = build_bundle(bundle, args.precision, args.profile, Path(args.cache) if args.cache else None,
                        force=args.force)
    total = 0.0
    for r in rows:
        if "plan" not in r:
            print(f"{r['graph']:<28} {r['status']}")
            continue
        total += r["device_mib"]
        why = f"  ({r['reason']})" if r["reason"] else ""
        print(f"{r['graph']:<28} {r['status']:<7} {r['plan_mib']:7.1f} MiB plan  {r['device_mib']:8.1f} MiB device"
              f"  {r['build_s']:6.1f} s  {r['plan']}{why}")
    print(f"device memory for this engine set: {total:.1f} MiB ({args.precision}, profile {args.profile})")
    if args.json:
        print(json.dumps({"precision": args.precision, "profile": args.profile, "device_mib": total, "graphs": rows}))
    return 0
