"""Service settings: one frozen dataclass built from the environment (ZVC69_*), so limits are explicit.

Every bound that protects the server's memory lives here: body size, bytes in flight,
streams held, requests queued per stream, bitstream size, decode output. The encoder and
decoder factories are settings too, so tests inject a small deterministic encoder and the
real codec is the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zvc69_rt.errors import InputError

MiB = 1 << 20


def _env_int(name: str, default: int, lo: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not an integer") from None
    if v < lo:
        raise InputError(f"environment variable {name}={v} must be >= {lo}")
    return v


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = float(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not a number") from None
    if not v > 0:
        raise InputError(f"environment variable {name}={v} must be > 0")
    return v


def read_key_file(path: str | os.PathLike) -> tuple[str, ...]:
    """API keys from an operator's file (one per line, '#' comments); never from a request."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read API key file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    keys = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise InputError(f"API key file {os.fspath(path)!r} holds no key")
    for k in keys:
        if len(k) < 16:
            raise InputError(f"API key file {os.fspath(path)!r}: keys must be at least 16 characters")
    return keys


def _default_encoder_factory() -> Callable[[Any], Any]:
    from zvc69_rt.service.encoders import SharedModelEncoderFactory

    return SharedModelEncoderFactory()


def _default_decoder_factory() -> Callable[[Any], Any]:
    from zvc69_rt.service.encoders import SharedModelDecoderFactory

    return SharedModelDecoderFactory()


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with; see ``from_env`` for the variable names."""

    api_keys: tuple[str, ...] = ()              # empty = no auth (only for loopback use)
    max_body_bytes: int = 128 * MiB              # one request body (a 8192x8192 frame is ~96 MiB)
    max_inflight_bytes: int = 512 * MiB          # raw frame bytes received but not yet encoded, all streams
    max_streams: int = 16                        # streams held (open or closed, not yet deleted/expired)
    stream_queue_requests: int = 4               # frame requests queued on one stream (running one included)
    max_stream_bytes: int = 256 * MiB            # bitstream bytes one stream may hold
    max_oneshot_jobs: int = 2                    # concurrent /v1/encode + /v1/decode jobs
    max_encode_body_bytes: int = 2048 * MiB      # Y4M body of /v1/encode (streamed, not held)
    max_spool_bytes: int = 512 * MiB             # ... with passes > 1: spooled to a temp file, re-read per pass
    max_decode_output_bytes: int = 512 * MiB     # Y4M produced by /v1/decode
    idle_timeout_s: float = 300.0                # streams untouched this long are dropped
    sweep_interval_s: float = 5.0
    retry_after_s: int = 1
    workers: int = 2                             # encoder threads (numba/ORT release the GIL)
    max_encode_pixels: int = 1920 * 1080  # frame pixels encoded at once, all streams (CPU memory): one 1080p or two 720p
    backend: str = "auto"
    precision: str = "fp32"
    model: str | None = None                     # bundle folder, set by the operator only
    warmup: bool = True                          # encode one 64x64 frame at start before /readyz says ready
    encoder_factory: Callable[[Any], Any] = field(default_factory=_default_encoder_factory)
    decoder_factory: Callable[[Any], Any] = field(default_factory=_default_decoder_factory)

    def validate(self) -> None:
        for name in ("max_body_bytes", "max_inflight_bytes", "max_streams", "stream_queue_requests",
                     "max_stream_bytes", "max_oneshot_jobs", "max_encode_body_bytes", "max_spool_bytes",
                     "max_decode_output_bytes",
                     "workers", "retry_after_s", "max_encode_pixels"):
            if getattr(self, name) < 1:
                raise InputError(f"service setting {name} must be >= 1, got {getattr(self, name)}")
        if self.max_inflight_bytes < self.max_body_bytes:
            raise InputError(f"service setting max_inflight_bytes ({self.max_inflight_bytes}) must be >= "
                             f"max_body_bytes ({self.max_body_bytes}) or no full-size body could ever be admitted")
        for k in self.api_keys:
            if len(k) < 16:
                raise InputError("API keys must be at least 16 characters")

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, api_key_file: str | None = None, model: str | None = None, **overrides: Any) -> Settings:
        """Read ZVC69_API_KEY / ZVC69_API_KEY_FILE and the ZVC69_SERVICE_* limits."""
        keys: list[str] = []
        env_key = os.environ.get("ZVC69_API_KEY", "").strip()
        if env_key:
            keys.append(env_key)
        key_file = api_key_file or os.environ.get("ZVC69_API_KEY_FILE")
        if key_file:
            keys.extend(read_key_file(key_file))
        d = cls()
        s = cls(
            api_keys=tuple(dict.fromkeys(keys)),
            max_body_bytes=_env_int("ZVC69_SERVICE_MAX_BODY_BYTES", d.max_body_bytes, 1),
            max_inflight_bytes=_env_int("ZVC69_SERVICE_MAX_INFLIGHT_BYTES", d.max_inflight_bytes, 1),
            max_streams=_env_int("ZVC69_SERVICE_MAX_STREAMS", d.max_streams, 1),
            stream_queue_requests=_env_int("ZVC69_SERVICE_STREAM_QUEUE", d.stream_queue_requests, 1),
            max_stream_bytes=_env_int("ZVC69_SERVICE_MAX_STREAM_BYTES", d.max_stream_bytes, 1),
            max_oneshot_jobs=_env_int("ZVC69_SERVICE_MAX_ONESHOT_JOBS", d.max_oneshot_jobs, 1),
            max_spool_bytes=_env_int("ZVC69_SERVICE_MAX_SPOOL_BYTES", d.max_spool_bytes, 1),
            idle_timeout_s=_env_float("ZVC69_SERVICE_IDLE_TIMEOUT_S", d.idle_timeout_s),
            workers=_env_int("ZVC69_SERVICE_WORKERS", d.workers, 1),
            max_encode_pixels=_env_int("ZVC69_SERVICE_MAX_ENCODE_PIXELS", d.max_encode_pixels, 1),
            backend=os.environ.get("ZVC69_BACKEND", d.backend),
            precision=os.environ.get("ZVC69_PRECISION", d.precision),
            model=model or os.environ.get("ZVC69_MODEL") or None,
        )
        s = s.replace(**overrides) if overrides else s
        s.validate()
        return s
