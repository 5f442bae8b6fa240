"""``create_app(settings)``: the FastAPI application of the encoder service.

The lifespan warms the model (``/readyz`` turns 200 after a first encode), sweeps idle
streams, and on shutdown (uvicorn has stopped accepting and drained requests on SIGTERM)
lets running encoder jobs finish before dropping every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from zvc69_rt.service.limits import LimitExceeded
from zvc69_rt.service.settings import Settings
from zvc69_rt.service.state import ServiceState
from zvc69_rt.service.streams import EncoderFailed, StreamConflict, StreamNotFound

from zvc69_rt import __version__
from zvc69_rt.errors import InputError, ModelMismatchError, NotAvailableError, ZVC69FormatError

log = logging.getLogger("zvc69.service")


async def _sweep(state: ServiceState) -> None:
    while True:
        await asyncio.sleep(state.settings.sweep_interval_s)
        dead = state.registry.expire_idle()
        if dead:
            log.info("expired %d idle streams", len(dead))
            state.metrics.active_streams.set(len(state.registry))


def _warm_once(state: ServiceState) -> None:
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.frame import Frame

    s = state.settings
    cfg = EncoderConfig(width=64, height=64, backend=s.backend, precision=s.precision, model=s.model)
    enc = s.encoder_factory(cfg)
    enc.send_frame(Frame.from_bytes(bytes([128]) * Frame.nbytes_for(64, 64), 64, 64))
    enc.send_frame(None)
    while enc.receive_packet() is not None:
        pass


async def _warmup(state: ServiceState) -> None:
    try:
        await state.run(state.encode_pool, _warm_once, state)
        state.ready = True
        state.metrics.ready.set(1)
    except Exception as exc:  # noqa: BLE001 - /readyz reports it; /healthz stays up so operators can see why
        state.ready_error = f"model warm-up failed: {type(exc).__name__}: {exc}"
        log.error(state.ready_error)


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _install_handlers(app: FastAPI, state: ServiceState) -> None:
    m = state.metrics

    @app.exception_handler(LimitExceeded)
    async def limit(_: Request, exc: LimitExceeded) -> JSONResponse:
        m.rejections.labels(exc.reason).inc()
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return _json(exc.status, exc.detail, headers)

    @app.exception_handler(StreamNotFound)
    async def not_found(_: Request, exc: StreamNotFound) -> JSONResponse:
        return _json(404, str(exc))

    @app.exception_handler(StreamConflict)
    async def conflict(_: Request, exc: StreamConflict) -> JSONResponse:
        return _json(409, str(exc))

    @app.exception_handler(EncoderFailed)
    async def encoder_failed(_: Request, exc: EncoderFailed) -> JSONResponse:
        m.errors.labels("encoder").inc()
        log.warning("%s", exc)
        return _json(exc.status, str(exc))

    @app.exception_handler(InputError)
    @app.exception_handler(ZVC69FormatError)
    @app.exception_handler(ModelMismatchError)
    async def bad_input(_: Request, exc: Exception) -> JSONResponse:
        m.errors.labels("input").inc()
        return _json(422, str(exc))

    @app.exception_handler(NotAvailableError)
    async def not_available(_: Request, exc: NotAvailableError) -> JSONResponse:
        return _json(501, str(exc))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(_: Request, exc: ClientDisconnect) -> Response:
        m.rejections.labels("client_disconnect").inc()
        return Response(status_code=400)  # nobody reads it; nothing from the partial body was encoded


class _RequestMetrics:
    """ASGI middleware counting responses by route template (never by raw path: ids would explode it)."""

    def __init__(self, app, state: ServiceState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.state.metrics.requests.labels(name, str(status["code"])).inc()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; ``settings`` defaults to Settings.from_env() (ZVC69_API_KEY etc.)."""
    settings = settings or Settings.from_env()
    settings.validate()
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        sweeper = asyncio.create_task(_sweep(state))
        warm = None
        if settings.warmup:
            warm = asyncio.create_task(_warmup(state))
        else:
            state.ready = True
            state.metrics.ready.set(1)
        try:
            yield
        finally:
            state.draining = True
            state.metrics.ready.set(0)
            sweeper.cancel()
            if warm is not None:
                with contextlib.suppress(BaseException):
                    await warm
            await asyncio.to_thread(state.shutdown)

    app = FastAPI(title="ZVC69-RT encoder service", version=__version__, lifespan=lifespan,
                  description="Raw YUV420P frames in, ZVC69 bitstreams out. See docs/SERVICE.md.")
    app.state.service = state
    _install_handlers(app, state)
    from zvc69_rt.service import routes_health, routes_oneshot, routes_streams

    app.include_router(routes_health.router)
    app.include_router(routes_streams.router)
    app.include_router(routes_oneshot.router)
    app.add_middleware(_RequestMetrics, state=state)
    return app
