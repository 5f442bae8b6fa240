"""/v1/streams: open a stream, push raw YUV420P frames, close it, fetch the .zvc, delete it."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from zvc69_rt.service.auth import require_key
from zvc69_rt.service.limits import LimitExceeded, Reservation, read_body
from zvc69_rt.service.state import ServiceState, get_state
from zvc69_rt.service.streams import Stream, StreamState

from zvc69_rt.codec import ratecontrol
from zvc69_rt.codec.api import MAX_AQ_STRENGTH, MAX_DIMENSION, MIN_DIMENSION, EncoderConfig
from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame

router = APIRouter(prefix="/v1/streams", tags=["streams"])

Owner = Annotated[str, Depends(require_key)]
State = Annotated[ServiceState, Depends(get_state)]
OCTETS = "application/octet-stream"


class StreamCreate(BaseModel):
    """Settings of a new stream; defaults are EncoderConfig's, i.e. the same as `zvc69 encode`."""

    model_config = ConfigDict(extra="forbid")
    width: StrictInt = Field(ge=MIN_DIMENSION, le=MAX_DIMENSION, description="frame width in pixels (any, odd too)")
    height: StrictInt = Field(ge=MIN_DIMENSION, le=MAX_DIMENSION, description="frame height in pixels")
    fps_num: StrictInt = Field(EncoderConfig.fps_num, ge=1, le=65535)
    fps_den: StrictInt = Field(EncoderConfig.fps_den, ge=1, le=65535)
    quality: StrictInt = Field(EncoderConfig.quality, ge=0, le=100, description="0..100 (57 = level 5)")
    gop: StrictInt = Field(EncoderConfig.gop, ge=1, le=255, description="keyframe interval")
    bframes: StrictInt = Field(EncoderConfig.bframes, ge=0, le=254, description="B-frames between references")
    b_pyramid: StrictBool = Field(EncoderConfig.b_pyramid, description="hierarchical B-frames (BBi references)")
    preset: str | None = Field(EncoderConfig.preset, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    rate_control: Literal["cqp", "vbr", "cbr"] = Field(
        EncoderConfig.rate_control, description="cqp: constant quality; vbr/cbr: hit bitrate (cbr: with a buffer)")
    bitrate: StrictInt | None = Field(EncoderConfig.bitrate, ge=ratecontrol.MIN_BITRATE, le=ratecontrol.MAX_BITRATE,
                                      description="target bit/s, vbr/cbr only")
    vbv_seconds: float = Field(EncoderConfig.vbv_seconds, ge=ratecontrol.MIN_VBV_SECONDS,
                               le=ratecontrol.MAX_VBV_SECONDS, description="cbr buffer, seconds of bitrate")
    b_quality_offset: StrictInt = Field(EncoderConfig.b_quality_offset, ge=0, le=100,
                                        description="quality points non-reference B-frames are coded below P")
    motion_aq: StrictInt = Field(EncoderConfig.motion_aq, ge=0, le=MAX_AQ_STRENGTH,
                                 description="P/B residual quantisation by motion magnitude, 0 = off")
    p_quality_offset: StrictInt = Field(EncoderConfig.p_quality_offset, ge=0, le=100,
                                        description="quality points P/B-frames are coded below the I-frame")
    reduced_res: StrictBool = Field(EncoderConfig.reduced_res,
                                    description="I-frames (cqp) and P/B residuals at half size when cheaper (full effort only)")


class StreamCreated(BaseModel):
    id: str
    frame_bytes: int


def encoder_config(body: StreamCreate | dict, state: ServiceState) -> EncoderConfig:
    """The EncoderConfig a request asks for, on the operator's backend/precision/model; 422 if invalid."""
    s = state.settings
    fields = body.model_dump() if isinstance(body, BaseModel) else body
    cfg = EncoderConfig(**fields, backend=s.backend, precision=s.precision, model=s.model)
    cfg.validate()  # cross-field checks (bframes < gop) raise InputError -> 422
    fb = Frame.nbytes_for(cfg.width, cfg.height)
    if fb > s.max_body_bytes:
        raise InputError(f"one {cfg.width}x{cfg.height} frame is {fb} bytes, more than this server's body limit "
                         f"of {s.max_body_bytes}")
    return cfg


def get_encoder_factory(state: State):
    """FastAPI dependency: builds encoders (Settings.encoder_factory; override it in tests)."""
    return state.settings.encoder_factory


@router.post("", status_code=201, response_model=StreamCreated)
async def create_stream(body: StreamCreate, owner: Owner, state: State,
                        factory: Annotated[object, Depends(get_encoder_factory)]) -> StreamCreated:
    state.check_accepting()
    cfg = encoder_config(body, state)
    state.registry.reserve_slot()
    try:
        encoder = await state.run(state.encode_pool, factory, cfg)
        stream = state.registry.add(owner, cfg, encoder)
    finally:
        state.registry.release_slot()
    state.metrics.active_streams.set(len(state.registry))
    return StreamCreated(id=stream.id, frame_bytes=stream.frame_bytes)


@router.get("/{stream_id}")
async def stream_info(stream_id: str, owner: Owner, state: State) -> dict:
    return state.registry.get(stream_id, owner).info()


def _frame_headers(stream: Stream, n_in: int, n_out: int, **timing: float) -> dict[str, str]:
    h = {"X-Frames-In": str(n_in), "X-Frames-Out": str(n_out), "X-Stream-Frames-In": str(stream.frames_in),
         "X-Stream-Frames-Out": str(stream.frames_out)}
    if timing:  # Server-Timing (ms): body = reading the request body, wait = stream order + pool queue +
        # thread hops, encode = in the encoder thread; the client's time minus these is transport
        h["Server-Timing"] = ", ".join(f"{k};dur={v * 1000:.3f}" for k, v in timing.items())
    return h


def _timed(fn, *args):
    """Run ``fn(*args)`` (in the worker thread); (its result, seconds it took)."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


@router.post("/{stream_id}/frames", response_class=Response,
             responses={200: {"content": {OCTETS: {}}, "description": "frame records (32-byte header + data each)"}})
async def push_frames(stream_id: str, request: Request, owner: Owner, state: State) -> Response:
    """Body: whole raw YUV420P frames (plain or chunked). Returns the frame records that became ready."""
    s = state.settings
    stream = state.registry.get(stream_id, owner)
    state.check_accepting()
    stream.require(StreamState.OPEN)
    if stream.queued >= s.stream_queue_requests:
        raise LimitExceeded(429, "stream_queue", f"stream {stream.id} already has {stream.queued} frame requests "
                            f"queued (limit {s.stream_queue_requests}); wait for their responses", s.retry_after_s)
    if stream.nbytes >= s.max_stream_bytes:
        raise LimitExceeded(413, "stream_bytes", f"stream {stream.id} holds {stream.nbytes} bytes, this server's "
                            f"limit per stream is {s.max_stream_bytes}; close it and open a new one")
    stream.queued += 1
    state.metrics.queued_requests.inc()
    reservation = Reservation(state.budget)
    try:
        t_body = time.perf_counter()
        body = await read_body(request, s.max_body_bytes, reservation, s.retry_after_s, unit=stream.frame_bytes,
                               unit_text=f"{stream.config.width}x{stream.config.height} YUV420P")
        state.metrics.inflight_bytes.set(state.budget.used)
        n_in = len(body) // stream.frame_bytes
        t0 = time.perf_counter()
        async with stream.order:
            (records, n_out), t_enc = await state.encode(stream.pixels, _timed, stream.encode_frames, body,
                                                         state.metrics.frames_done)
        dt = time.perf_counter() - t0
        state.metrics.frames_in.inc(n_in)
        state.metrics.bytes_out.inc(len(records))
        state.metrics.request_latency.labels("frames").observe(dt)
        if n_in:
            state.metrics.frame_latency.observe(dt / n_in)
        return Response(records, media_type=OCTETS,
                        headers=_frame_headers(stream, n_in, n_out, body=t0 - t_body, wait=dt - t_enc, encode=t_enc))
    finally:
        reservation.release()
        stream.queued -= 1
        stream.last_used = state.registry.clock()
        state.metrics.queued_requests.dec()
        state.metrics.inflight_bytes.set(state.budget.used)


@router.post("/{stream_id}/close", response_class=Response,
             responses={200: {"content": {OCTETS: {}}, "description": "the remaining frame records"}})
async def close_stream(stream_id: str, owner: Owner, state: State) -> Response:
    stream = state.registry.get(stream_id, owner)
    stream.require(StreamState.OPEN)
    stream.queued += 1
    t0 = time.perf_counter()
    try:
        async with stream.order:
            (records, n_out), t_enc = await state.encode(stream.pixels, _timed, stream.finish,
                                                         state.metrics.frames_done)
    finally:
        stream.queued -= 1
    dt = time.perf_counter() - t0
    state.metrics.bytes_out.inc(len(records))
    return Response(records, media_type=OCTETS,
                    headers=_frame_headers(stream, 0, n_out, wait=dt - t_enc, encode=t_enc))


@router.get("/{stream_id}/bitstream", response_class=Response,
            responses={200: {"content": {OCTETS: {}}, "description": "the complete .zvc file"}})
async def get_bitstream(stream_id: str, owner: Owner, state: State) -> Response:
    stream = state.registry.get(stream_id, owner)
    return Response(stream.bitstream(), media_type=OCTETS,
                    headers={"Content-Disposition": 'attachment; filename="stream.zvc"',
                             "X-Stream-Frames": str(stream.frames_out)})


@router.delete("/{stream_id}", status_code=204, response_class=Response)
async def delete_stream(stream_id: str, owner: Owner, state: State) -> Response:
    stream = state.registry.get(stream_id, owner)
    if stream.queued:
        raise LimitExceeded(409, "busy", f"stream {stream.id} has requests in progress", state.settings.retry_after_s)
    state.registry.remove(stream.id)
    state.metrics.active_streams.set(len(state.registry))
    return Response(status_code=204)
