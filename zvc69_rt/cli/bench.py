"""`zvc69 bench KIND`: speed benchmarks. Each kind is a module in zvc69_rt.bench.

A bench module exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``;
it writes a human table to stdout and, with ``--json``, a JSON object as its last line.
"""

from __future__ import annotations

import importlib

BENCH_KINDS = ("entropy", "codec", "pipeline", "service")


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a speed benchmark (entropy, codec, pipeline, service)")
    kinds = p.add_subparsers(dest="bench_kind", metavar="KIND")
    for kind in BENCH_KINDS:
        try:
            mod = importlib.import_module(f"zvc69_rt.bench.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"zvc69_rt.bench.{kind}":
                raise
            kp = kinds.add_parser(kind, help=f"{kind} benchmark (not built yet)")
            kp.set_defaults(func=_not_built(kind))
            continue
        kp = kinds.add_parser(kind, help=mod.HELP)
        mod.add_arguments(kp)
        kp.set_defaults(func=mod.run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _not_built(kind: str):
    def run(args) -> int:
        from zvc69_rt.errors import NotAvailableError

        raise NotAvailableError(f"the {kind} benchmark is not built yet")

    return run
