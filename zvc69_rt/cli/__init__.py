"""`zvc69` command line: thin front end over the same Encoder/Decoder the service uses.

Each subcommand lives in its own module exposing ``register(subparsers)``; the
module sets ``func`` on its parser. Modules are imported here, but they import their
heavy dependencies (numba kernels, onnxruntime, FastAPI) only inside ``func``, so
``zvc69 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zvc69_rt import __version__
from zvc69_rt.errors import NotAvailableError, ZVC69Error

COMMAND_MODULES = ("info", "encode", "decode", "serve", "bench", "engines", "evaluate", "import-compressai")
COMMAND_HELP = {"serve": "run the HTTP encoder service", "engines": "build TensorRT engines for a model bundle",
                "import-compressai": "convert a CompressAI hyperprior checkpoint into a model bundle"}


def _version_text() -> str:
    try:
        from zvc69_rt.models.bundle import default_bundle_hash

        return f"zvc69_rt {__version__} (default model bundle {default_bundle_hash()})"
    except Exception as exc:  # noqa: BLE001 (a missing or broken bundle must not break --version)
        return f"zvc69_rt {__version__} (default model bundle unavailable: {exc})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="zvc69", description="ZVC69-RT neural video codec.")
    parser.add_argument("--version", action=_VersionAction, help="print version and model hash")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"zvc69_rt.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"zvc69_rt.cli.{name.replace('-', '_')}":
                raise
            p = sub.add_parser(name, help=f"{COMMAND_HELP.get(name, name)} (not built yet)")
            p.set_defaults(func=_not_built(name))
            continue
        mod.register(sub)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"zvc69: warning: {message}\n"


def _not_built(name: str):
    def run(args) -> int:
        raise NotAvailableError(f"the {name} command is not built yet in this version")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except NotAvailableError as exc:
        print(f"zvc69 {args.command}: {exc}", file=sys.stderr)
        return 2
    except ZVC69Error as exc:
        print(f"zvc69 {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        print(f"zvc69 {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
