"""`zvc69 serve --host H --port P`: run the HTTP encoder service under uvicorn.

The API key comes from ZVC69_API_KEY or --api-key-file (ZVC69_API_KEY_FILE). Binding
anything but a loopback address without a key is refused unless --insecure-no-auth is
given, so a service is never exposed unauthenticated by accident.
"""

from __future__ import annotations

import ipaddress
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the HTTP encoder service",
        description="Serve the encoder over HTTP (OpenAPI docs at /docs). /v1 routes need "
        "'Authorization: Bearer KEY' when ZVC69_API_KEY or --api-key-file is set; /healthz, /readyz and "
        "/metrics need no key. Limits: ZVC69_SERVICE_* variables (docs/SERVICE.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=8069, help="TCP port (default %(default)s)")
    p.add_argument("--model", default=None, help="model bundle folder (default: the shipped one)")
    p.add_argument("--api-key-file", default=None, help="file with API keys, one per line")
    p.add_argument("--backend", default=None, choices=["auto", "onnxruntime", "tensorrt"])
    p.add_argument("--precision", default=None, choices=["fp32", "fp16", "int8"])
    p.add_argument("--workers", type=int, default=None, help="encoder threads (default 2)")
    p.add_argument("--max-streams", type=int, default=None, help="streams held at once (default 16)")
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up encode (/readyz ready at once)")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="allow a non-loopback --host without an API key (never on a shared network)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    import uvicorn

    from zvc69_rt.errors import InputError
    from zvc69_rt.service.app import create_app
    from zvc69_rt.service.settings import Settings

    if not 1 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is outside 1..65535")
    overrides = {k: v for k, v in (("backend", args.backend), ("precision", args.precision),
                                   ("workers", args.workers), ("max_streams", args.max_streams)) if v is not None}
    if args.no_warmup:
        overrides["warmup"] = False
    settings = Settings.from_env(api_key_file=args.api_key_file, model=args.model, **overrides)
    if not settings.api_keys and not is_loopback(args.host) and not args.insecure_no_auth:
        raise InputError(f"refusing to serve on {args.host} without an API key: set ZVC69_API_KEY or "
                         "--api-key-file (or pass --insecure-no-auth on a private network)")
    if not settings.api_keys:
        print("zvc69 serve: warning: no API key set; /v1 is open to anyone who can reach "
              f"{args.host}:{args.port}", file=sys.stderr)
    app = create_app(settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=30, access_log=args.log_level == "debug")
    server = _server_class()(config)
    server.run()
    if server.stopped_by:
        print(f"zvc69 serve: stopped by signal {server.stopped_by} after a graceful shutdown", file=sys.stderr)
    return 0


def _server_class():
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; we exit 0 instead."""

        stopped_by: int | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                captured = getattr(self, "_captured_signals", None)
                if captured:
                    self.stopped_by = captured[0]
                    captured.clear()

    return Server

