"""Whole-file jobs: POST /v1/encode (Y4M body, streamed in) -> .zvc, POST /v1/decode (.zvc) -> Y4M.

Both work on in-memory file objects only: nothing from a request is ever used as a path.
/v1/encode parses the Y4M as it arrives (BodyPipe) and writes the .zvc to a seekable
buffer, so its bytes equal `zvc69 encode IN.y4m -o OUT.zvc` for the same settings (and with
passes=N, `zvc69 encode --passes N`'s).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.requests import ClientDisconnect
from zvc69_rt.service.auth import require_key
from zvc69_rt.service.bodypipe import BodyPipe
from zvc69_rt.service.limits import LimitExceeded, Reservation, declared_length, read_body
from zvc69_rt.service.routes_streams import OCTETS, encoder_config
from zvc69_rt.service.state import ServiceState, get_state

from zvc69_rt.codec import ratecontrol
from zvc69_rt.codec.api import MAX_AQ_STRENGTH, EncoderConfig
from zvc69_rt.codec.multipass import MAX_PASSES, best_of_passes, error_pct, validate_passes

router = APIRouter(prefix="/v1", tags=["files"])
Owner = Annotated[str, Depends(require_key)]
State = Annotated[ServiceState, Depends(get_state)]
Y4M = "video/x-yuv4mpeg"


class OutputTooLarge(Exception):
    """A job's output passed its limit (raised in the worker, turned into 413)."""


async def _settle(fut: asyncio.Future) -> None:
    """Wait for an abandoned job and consume its outcome (it failed on purpose)."""
    await asyncio.wait([fut])
    if not fut.cancelled():
        fut.exception()


@dataclass
class _EncodedPass:
    data: bytes
    frames: int
    enc: object


def _encode_job(source, params: dict, passes: int, state: ServiceState) -> tuple[_EncodedPass, int, int]:
    """(the kept pass, its index, passes run). With several passes the body is spooled to an
    anonymous temporary file (gone when closed, crash or not) and re-read once per pass."""
    if passes == 1:
        return _encode_pass(source, params, state, None), 0, 1
    with contextlib.ExitStack() as stack:
        try:  # the server's temporary space, not the request, is what fails here
            spool = stack.enter_context(tempfile.TemporaryFile(prefix="zvc69-encode-"))
            shutil.copyfileobj(source, spool, 1 << 20)
        except OSError as exc:
            raise LimitExceeded(507, "spool_space", f"this server could not keep the body for {passes} passes "
                                f"({exc}); send it with passes=1, or later") from None

        def one_pass(plan, k: int) -> _EncodedPass:
            spool.seek(0)
            return _encode_pass(spool, params, state, plan)

        return best_of_passes(passes, one_pass, lambda p: p.enc)


def _encode_pass(source, params: dict, state: ServiceState, plan) -> _EncodedPass:
    from zvc69_rt.bitstream import StreamWriter
    from zvc69_rt.io.y4m import Y4MReader

    reader = Y4MReader(source)
    cfg = encoder_config(dict(width=reader.width, height=reader.height, fps_num=reader.fps_num,
                              fps_den=reader.fps_den, **params), state)
    factory = state.settings.encoder_factory
    enc = factory(cfg) if plan is None else factory(cfg, first_pass=plan)
    sink = io.BytesIO()
    writer = StreamWriter(sink, enc.file_header())
    limit = state.settings.max_stream_bytes
    n = 0

    def drain() -> None:
        while (pkt := enc.receive_packet()) is not None:
            writer.write_packet(pkt)
        if writer.pos > limit:
            raise OutputTooLarge(f"the .zvc passed this server's limit of {limit} bytes at frame {n}")

    for frame in reader:
        enc.send_frame(frame)
        n += 1
        drain()
    enc.send_frame(None)
    drain()
    writer.close()
    return _EncodedPass(sink.getvalue(), n, enc)


@router.post("/encode", response_class=Response,
             responses={200: {"content": {OCTETS: {}}, "description": "the .zvc file"}},
             openapi_extra={"requestBody": {"content": {Y4M: {}}, "required": True}})
async def encode_file(
    request: Request, owner: Owner, state: State,
    quality: Annotated[int, Query(ge=0, le=100)] = EncoderConfig.quality,
    gop: Annotated[int, Query(ge=1, le=255)] = EncoderConfig.gop,
    bframes: Annotated[int, Query(ge=0, le=254)] = EncoderConfig.bframes,
    b_pyramid: Annotated[bool, Query()] = EncoderConfig.b_pyramid,
    preset: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = EncoderConfig.preset,
    rate_control: Annotated[Literal["cqp", "vbr", "cbr"], Query()] = EncoderConfig.rate_control,
    bitrate: Annotated[int | None, Query(ge=ratecontrol.MIN_BITRATE, le=ratecontrol.MAX_BITRATE)] = None,
    vbv_seconds: Annotated[float, Query(ge=ratecontrol.MIN_VBV_SECONDS, le=ratecontrol.MAX_VBV_SECONDS)
                           ] = EncoderConfig.vbv_seconds,
    p_quality_offset: Annotated[int, Query(ge=0, le=100)] = EncoderConfig.p_quality_offset,
    motion_aq: Annotated[int, Query(ge=0, le=MAX_AQ_STRENGTH)] = EncoderConfig.motion_aq,
    b_quality_offset: Annotated[int, Query(ge=0, le=100)] = EncoderConfig.b_quality_offset,
    reduced_res: Annotated[bool, Query()] = EncoderConfig.reduced_res,
    passes: Annotated[int, Query(ge=1, le=MAX_PASSES)] = 1,
) -> Response:
    """Body: a Y4M file (8-bit 4:2:0, streamed). Settings as query parameters, defaults as the CLI's.
    passes 2-3 (vbr with a bitrate): `zvc69 encode --passes`, the pass closest to the bitrate
    returned (X-Passes, X-Kept-Pass); the body is spooled to a temporary file to be re-read."""
    s = state.settings
    validate_passes(passes, rate_control, bitrate)
    state.check_accepting()
    # several passes keep the body (on disk): a smaller limit than one streaming pass
    limit, what = ((s.max_encode_body_bytes, "/v1/encode") if passes == 1 else
                   (min(s.max_encode_body_bytes, s.max_spool_bytes), f"/v1/encode with {passes} passes"))
    n = declared_length(request)
    if n is not None and n > limit:
        raise LimitExceeded(413, "body_size", f"body of {n} bytes exceeds this server's limit of {limit} for {what}")
    state.acquire_oneshot()
    pipe = BodyPipe(asyncio.get_running_loop())
    source = io.BufferedReader(pipe, buffer_size=1 << 16)
    params = {"quality": quality, "gop": gop, "bframes": bframes, "b_pyramid": b_pyramid, "preset": preset,
              "rate_control": rate_control, "bitrate": bitrate, "vbv_seconds": vbv_seconds,
              "p_quality_offset": p_quality_offset, "motion_aq": motion_aq, "b_quality_offset": b_quality_offset,
              "reduced_res": reduced_res}
    t0 = time.perf_counter()

    def job():
        try:
            return _encode_job(source, params, passes, state)
        finally:
            pipe.reader_done()

    fut = asyncio.ensure_future(state.run(state.oneshot_pool, job))
    try:
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise LimitExceeded(413, "body_size", f"body exceeds this server's limit of {limit} bytes "
                                        f"for {what}")
                if not await pipe.feed(chunk):
                    break  # the job stopped reading (error or done); its result says which
            else:
                pipe.end()
        except (ClientDisconnect, LimitExceeded) as exc:
            pipe.abort("client disconnected" if isinstance(exc, ClientDisconnect) else "body too large")
            await _settle(fut)
            raise
        try:
            kept, kept_index, ran = await fut
        except OutputTooLarge as exc:
            raise LimitExceeded(413, "output_size", str(exc)) from None
    finally:
        if not fut.done():
            pipe.abort("request ended")
            await _settle(fut)
        state.release_oneshot()
    data, frames = kept.data, kept.frames
    state.metrics.frames_in.inc(frames)
    state.metrics.frames_done(frames)
    state.metrics.bytes_out.inc(len(data))
    state.metrics.request_latency.labels("encode").observe(time.perf_counter() - t0)
    headers = {"X-Frames-In": str(frames), "X-Frames-Out": str(frames)}
    if bitrate is not None:  # vbr/cbr: how far the returned stream is from the target
        headers["X-Bitrate-Error-Pct"] = f"{error_pct(kept.enc):+.2f}"
    if passes > 1:
        headers.update({"X-Passes": str(ran), "X-Kept-Pass": str(kept_index + 1)})
    return Response(data, media_type=OCTETS, headers=headers)


def _decode_job(body: bytearray, state: ServiceState) -> tuple[bytes, int]:
    from zvc69_rt.bitstream import StreamReader
    from zvc69_rt.frame import Frame
    from zvc69_rt.io.y4m import Y4MWriter

    s = state.settings
    reader = StreamReader(io.BytesIO(body))
    hdr = reader.header
    per_frame = 6 + Frame.nbytes_for(hdr.width, hdr.height)
    if hdr.total_frames and hdr.total_frames * per_frame > s.max_decode_output_bytes:
        raise OutputTooLarge(f"{hdr.total_frames} frames of {hdr.width}x{hdr.height} decode to "
                             f"{hdr.total_frames * per_frame} bytes of Y4M, over this server's limit of "
                             f"{s.max_decode_output_bytes}")
    dec = s.decoder_factory(hdr, backend=s.backend, precision=s.precision, model=s.model)
    out = io.BytesIO()
    writer = Y4MWriter(out, hdr.width, hdr.height, hdr.framerate_num, hdr.framerate_den)
    n = 0
    for fh, data in itertools.chain(reader.iter_frames(), [(None, None)]):  # (None, None): end of stream
        if out.tell() + per_frame > s.max_decode_output_bytes:
            raise OutputTooLarge(f"the decoded Y4M passed this server's limit of {s.max_decode_output_bytes} "
                                 f"bytes at frame {n}")
        dec.send_packet(fh, data)
        while (frame := dec.receive_frame()) is not None:
            frame.range = "limited"  # as `zvc69 decode`: the codec does not reinterpret the YUV range
            writer.write(frame)
            n += 1
    writer.close()
    return out.getvalue(), n


@router.post("/decode", response_class=Response,
             responses={200: {"content": {Y4M: {}}, "description": "the decoded video as Y4M"}},
             openapi_extra={"requestBody": {"content": {OCTETS: {}}, "required": True}})
async def decode_file(request: Request, owner: Owner, state: State) -> Response:
    """Body: a .zvc file. Returns Y4M (the same bytes `zvc69 decode` writes)."""
    s = state.settings
    state.check_accepting()
    state.acquire_oneshot()
    reservation = Reservation(state.budget)
    t0 = time.perf_counter()
    try:
        body = await read_body(request, s.max_body_bytes, reservation, s.retry_after_s)
        try:
            data, frames = await state.run(state.oneshot_pool, _decode_job, body, state)
        except OutputTooLarge as exc:
            raise LimitExceeded(413, "output_size", str(exc)) from None
    finally:
        reservation.release()
        state.release_oneshot()
    state.metrics.request_latency.labels("decode").observe(time.perf_counter() - t0)
    return Response(data, media_type=Y4M, headers={"X-Frames-Out": str(frames)})
