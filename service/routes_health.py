"""Unauthenticated probes: /healthz (process up), /readyz (model loaded, warm), /metrics (Prometheus)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from zvc69_rt.service.metrics import CONTENT_TYPE
from zvc69_rt.service.state import ServiceState, get_state

router = APIRouter(tags=["health"])
State = Annotated[ServiceState, Depends(get_state)]


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    if state.ready and not state.draining:
        return JSONResponse({"ready": True})
    reason = "shutting down" if state.draining else (state.ready_error or "warming up (loading model, first encode)")
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)


@router.get("/metrics")
async def metrics(state: State) -> Response:
    state.metrics.active_streams.set(len(state.registry))
    state.metrics.inflight_bytes.set(state.budget.used)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
