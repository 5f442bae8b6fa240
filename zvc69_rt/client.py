"""Python client of `zvc69 serve` (httpx): open a stream, push frames, collect the .zvc.

    with ServiceClient("http://127.0.0.1:8069", api_key=KEY) as c:
        with c.open_stream(1280, 720, fps_num=30) as s:
            s.push(frames)                 # Frames, raw bytes or uint8 arrays
            s.close()
            zvc = s.bitstream()
        zvc = c.encode_y4m("clip.y4m")    # one request, Y4M streamed up

429/503 answers are retried after their Retry-After (bounded attempts); any other error
raises :class:`ServiceError` with the server's message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Self

import httpx
import numpy as np

from zvc69_rt.errors import InputError, ZVC69Error
from zvc69_rt.frame import Frame

RETRY_STATUSES = (429, 503)


class ServiceError(ZVC69Error):
    """The service answered with an error; ``status`` is the HTTP code, the message the server's detail."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _detail(r: httpx.Response) -> str:
    try:
        d = r.json().get("detail", r.text)
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        d = r.text
    return d if isinstance(d, str) else str(d)


def server_timing(r: httpx.Response) -> dict[str, float]:
    """The ``Server-Timing`` header as {name: seconds} (the service sends body, wait, encode)."""
    out: dict[str, float] = {}
    for part in r.headers.get("server-timing", "").split(","):
        name, _, params = part.strip().partition(";")
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "dur" and name:
                try:
                    out[name] = float(v) / 1000.0
                except ValueError:
                    pass
    return out


def _frames_bytes(frames: Any, width: int, height: int) -> bytes | memoryview:
    """Raw YUV420P bytes for a Frame, a list of Frames, bytes, or a uint8 array of whole frames."""
    fb = Frame.nbytes_for(width, height)
    if isinstance(frames, Frame):
        frames = [frames]
    if isinstance(frames, (bytes, bytearray, memoryview)):
        data = frames
    elif isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise InputError(f"frame array must be uint8, got {frames.dtype}")
        data = np.ascontiguousarray(frames).data.cast("B")
    else:
        parts = []
        for f in frames:
            if (f.width, f.height) != (width, height):
                raise InputError(f"frame pts={f.pts} is {f.width}x{f.height}, the stream is {width}x{height}")
            f.validate()
            parts.append(f.to_bytes())
        data = b"".join(parts)
    if len(data) % fb:
        raise InputError(f"{len(data)} bytes are not whole {width}x{height} YUV420P frames ({fb} bytes each)")
    return data


class RemoteStream:
    """One stream on the server; push() returns the frame records that became ready."""

    def __init__(self, client: ServiceClient, sid: str, width: int, height: int, frame_bytes: int):
        self.client = client
        self.id = sid
        self.width, self.height = width, height
        self.frame_bytes = frame_bytes
        self.frames_in = 0
        self.records_out = 0
        self.closed = False
        self.server_seconds: dict[str, float] = {}  # Server-Timing totals over this stream's requests

    def _account(self, r: httpx.Response) -> None:
        for k, v in server_timing(r).items():
            self.server_seconds[k] = self.server_seconds.get(k, 0.0) + v

    def push(self, frames: Any) -> bytes:
        """Send whole frames (Frame, list of Frames, raw bytes, uint8 array); returns ready records."""
        data = _frames_bytes(frames, self.width, self.height)
        r = self.client.request("POST", f"/v1/streams/{self.id}/frames", content=bytes(data),
                                headers={"Content-Type": "application/octet-stream"})
        self.frames_in += int(r.headers.get("x-frames-in", 0))
        self.records_out += int(r.headers.get("x-frames-out", 0))
        self._account(r)
        return r.content

    def close(self) -> bytes:
        """Flush the encoder; returns the remaining records."""
        r = self.client.request("POST", f"/v1/streams/{self.id}/close")
        self.closed = True
        self.records_out += int(r.headers.get("x-frames-out", 0))
        self._account(r)
        return r.content

    def bitstream(self) -> bytes:
        """The complete .zvc (after close())."""
        return self.client.request("GET", f"/v1/streams/{self.id}/bitstream").content

    def delete(self) -> None:
        self.client.request("DELETE", f"/v1/streams/{self.id}", ok=(204, 404))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.delete()


class ServiceClient:
    """Thin synchronous client; pass ``transport`` (e.g. httpx.ASGITransport) to test in-process."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0, retries: int = 20,
                 transport: httpx.BaseTransport | None = None, http: httpx.Client | None = None):
        key = api_key if api_key is not None else os.environ.get("ZVC69_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._own_http = http is None
        self.http = http or httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        if http is not None and key:
            self.http.headers["Authorization"] = f"Bearer {key}"
        self.retries = retries

    def request(self, method: str, url: str, ok: tuple[int, ...] = (200, 201, 204), retry: bool = True,
                **kw: Any) -> httpx.Response:
        """Send with bounded retries on 429/503 (honouring Retry-After); ServiceError otherwise."""
        for attempt in range(self.retries + 1):
            r = self.http.request(method, url, **kw)
            if (retry and r.status_code in RETRY_STATUSES and attempt < self.retries
                    and "Retry-After" in r.headers):
                time.sleep(min(float(r.headers["Retry-After"]), 10.0))
                continue
            if r.status_code not in ok:
                raise ServiceError(r.status_code, _detail(r))
            return r
        raise AssertionError("unreachable")

    def open_stream(self, width: int, height: int, fps_num: int = 30, fps_den: int = 1, **settings: Any
                    ) -> RemoteStream:
        """POST /v1/streams; ``settings``: quality, gop, bframes, b_pyramid, preset, rate_control, bitrate,
        vbv_seconds, p_quality_offset, b_quality_offset, motion_aq (None = server default)."""
        body = {"width": width, "height": height, "fps_num": fps_num, "fps_den": fps_den}
        body.update({k: v for k, v in settings.items() if v is not None})
        r = self.request("POST", "/v1/streams", json=body)
        j = r.json()
        return RemoteStream(self, j["id"], width, height, j["frame_bytes"])

    def encode_y4m(self, source: str | os.PathLike | bytes | BinaryIO, chunk: int = 1 << 20, **settings: Any
                   ) -> bytes:
        """POST /v1/encode with the Y4M streamed up in chunks; returns the .zvc bytes."""
        params = {k: v for k, v in settings.items() if v is not None}

        def body() -> Iterator[bytes]:
            if isinstance(source, (bytes, bytearray)):
                for i in range(0, len(source), chunk):
                    yield bytes(source[i : i + chunk])
                return
            f = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source  # noqa: SIM115
            try:
                while block := f.read(chunk):
                    yield block
            finally:
                if f is not source:
                    f.close()

        return self.request("POST", "/v1/encode", params=params, content=body(), retry=False,
                            headers={"Content-Type": "video/x-yuv4mpeg"}).content

    def decode(self, zvc: bytes | str | os.PathLike) -> bytes:
        """POST /v1/decode; returns Y4M bytes."""
        data = zvc if isinstance(zvc, (bytes, bytearray)) else Path(zvc).read_bytes()
        return self.request("POST", "/v1/decode", content=bytes(data),
                            headers={"Content-Type": "application/octet-stream"}).content

    def ready(self) -> bool:
        return self.http.get("/readyz").status_code == 200

    def close(self) -> None:
        if self._own_http:  # a caller's client (e.g. a TestClient) stays open
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _batches(frames: Iterable[Frame], max_bytes: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    size = 0
    for f in frames:
        batch.append(f)
        size += f.y.size + f.u.size + f.v.size
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _oneshot_settings(config) -> dict:
    """POST /v1/encode's query parameters for ``config``'s settings."""
    names = ("quality", "gop", "bframes", "b_pyramid", "preset", "rate_control", "bitrate", "vbv_seconds",
             "p_quality_offset", "b_quality_offset", "motion_aq", "reduced_res")
    return {n: v for n in names if (v := getattr(config, n)) is not None}


def encode_frames_via_server(client: ServiceClient, frames: Iterable[Frame], config, batch_bytes: int = 8 << 20
                             ) -> bytes:
    """Encode frames on the server with ``config``'s settings (quality, gop, bframes, preset,
    rate control); the .zvc."""
    stream = client.open_stream(config.width, config.height, config.fps_num, config.fps_den,
                                quality=config.quality, gop=config.gop, bframes=config.bframes,
                                b_pyramid=config.b_pyramid, preset=config.preset,
                                rate_control=config.rate_control, bitrate=config.bitrate,
                                vbv_seconds=config.vbv_seconds, p_quality_offset=config.p_quality_offset,
                                b_quality_offset=config.b_quality_offset, motion_aq=config.motion_aq)
    with stream:
        for batch in _batches(frames, batch_bytes):
            stream.push(batch)
        stream.close()
        return stream.bitstream()


def encode_file_via_server(url: str, src, config, output: str, limit: int = 0, passes: int = 1,
                           y4m_path: str | None = None) -> int:
    """`zvc69 encode --server URL`: frames from ``src`` encoded remotely, written to ``output`` ('-' ok).
    With passes > 1 the Y4M file ``y4m_path`` goes to POST /v1/encode (a stream is one pass)."""
    import itertools
    import sys

    from zvc69_rt.bitstream import atomic_output

    t0 = time.perf_counter()
    with ServiceClient(url) as client:
        if passes > 1:
            data = client.encode_y4m(y4m_path, passes=passes, **_oneshot_settings(config))
        else:
            data = encode_frames_via_server(client, itertools.islice(src, limit or None), config)
    with atomic_output(output) as sink:
        sink.write(data)
    print(f"encoded on {url}: {len(data)} bytes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
