"""`zvc69 import-compressai CHECKPOINT --out DIR`: a CompressAI model as a model bundle.

Converts a CompressAI ``bmshj2018-hyperprior`` or ``mbt2018-mean`` state dict into our
graphs and tables (onnx_export/compressai_import.py); encode/decode/serve then take the
folder as ``--model DIR``. Needs torch (the ``train`` extra) and a source checkout (the
converter lives in onnx_export/, which is not installed); CompressAI itself is not needed.
See docs/COMPRESSAI.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean")


def register(sub) -> None:
    p = sub.add_parser(
        "import-compressai", help="convert a CompressAI hyperprior checkpoint into a model bundle",
        description="Convert a CompressAI bmshj2018-hyperprior / mbt2018-mean state dict (.pth/.pt) into a "
        "model bundle folder usable with --model on encode/decode/serve. The bundle is single-rate "
        "(--quality does not change the rate) and its streams are not INTEGERIZED (float scale path).",
    )
    p.add_argument("checkpoint", help="CompressAI state dict (.pth/.pt), bare or under a 'state_dict' key")
    p.add_argument("--arch", choices=ARCHS, default=None, help="architecture (default: inferred from the weights)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--N", type=int, default=None, help="hyperprior channels (default: from the weights)")
    p.add_argument("--M", type=int, default=None, help="latent channels (default: from the weights)")
    p.add_argument("--precisions", default="fp32,fp16", help="graph precisions to write (fp32,fp16)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import importlib.util

    from zvc69_rt.errors import InputError, NotAvailableError

    if importlib.util.find_spec("torch") is None:
        raise NotAvailableError(
            "needs torch to read the checkpoint: pip install 'zvc69_rt[train]' (or pip install torch==2.13.0)"
        )
    try:
        from onnx_export import compressai_import
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("onnx_export", "onnx", "onnxconverter_common", "onnxscript"):
            raise NotAvailableError(
                f"needs {exc.name} (run from a source checkout with pip install -e '.[train,cpu]')"
            ) from exc
        raise
    precisions = tuple(p for p in args.precisions.split(",") if p)
    bad = sorted(set(precisions) - {"fp32", "fp16"})
    if bad or "fp32" not in precisions:
        raise InputError(f"--precisions must include fp32 and may add fp16 (got {args.precisions!r})")
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise InputError(f"cannot open {ckpt}: no such file")
    try:
        sd = compressai_import.load_checkpoint(ckpt)
        if not isinstance(sd, dict):
            raise TypeError(f"{ckpt} holds a {type(sd).__name__}, not a state dict")
        manifest = compressai_import.import_state_dict(
            sd, Path(args.out), args.arch, args.N, args.M, precisions, source={"checkpoint": str(ckpt)}
        )
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        raise InputError(f"{ckpt}: {exc}") from exc
    if not args.quiet:
        src = manifest["source"]
        print(f"imported {src['arch']} N={src['N']} M={src['M']} into {args.out} (model {manifest['hash'][:16]}); "
              f"use it with --model {args.out}", file=sys.stderr)
    return 0
