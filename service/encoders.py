"""The real codec behind the service: Encoder/Decoder factories that share one loaded model.

Loading a bundle and its ONNX sessions costs hundreds of milliseconds and tens of MiB; a
service that opens thousands of streams loads them once per (model, backend, precision,
graph set) and hands the same runners to every Encoder (ORT sessions are stateless and
thread-safe). The bytes produced are the same as a fresh ``Encoder(config)`` (the CLI's).

Memory: ONNX Runtime's CPU memory arena (one per session) grows in powers of two to the
largest frame ever encoded and never gives memory back. That is worth keeping for frames
up to 1280x720 (at most ~0.7 GiB held; without the arena every run page-faults its
activations afresh, ~15 % slower on a 2-core CPU), not above: a server that encoded two
1080p frames at once held ~1.8 GiB for good, versus a 1.5 GiB peak and ~0.6 GiB after
without the arena. So ZVC69_SERVICE_ORT_ARENA=auto (default) builds arena sessions for
frames up to 921,600 pixels and arena-less ones (loaded on first use) for larger frames;
``on``/``off`` force one kind. The arithmetic, and so the bytes, are the same either way.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from zvc69_rt.codec.api import EncoderConfig

ARENA_MAX_PIXELS = 1280 * 720
ARENA_MODES = ("auto", "on", "off")


def _arena_mode(mode: str | bool | None) -> str:
    from zvc69_rt.errors import InputError

    if mode is None:
        mode = os.environ.get("ZVC69_SERVICE_ORT_ARENA", "auto").strip().lower() or "auto"
    if isinstance(mode, bool):
        return "on" if mode else "off"
    mode = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(mode, mode)
    if mode not in ARENA_MODES:
        raise InputError(f"ZVC69_SERVICE_ORT_ARENA={mode!r}: use one of {', '.join(ARENA_MODES)}")
    return mode


def use_arena(mode: str, width: int, height: int) -> bool:
    """Whether frames of this size run on sessions with ORT's CPU arena (see the module doc)."""
    return mode == "on" or (mode == "auto" and width * height <= ARENA_MAX_PIXELS)


def _load_runners(bundle, backend: str, precision: str, graphs: tuple[str, ...], cpu_mem_arena: bool) -> dict:
    """codec.runtime.load_runners, with ORT's CPU arena switched off unless ``cpu_mem_arena``."""
    from zvc69_rt.backends.select import select_backend

    be = select_backend(backend, onnxruntime={"cpu_mem_arena": cpu_mem_arena})
    return {g: be.load(bundle.graph_path(g, precision)) for g in graphs}


class _ModelCache:
    def __init__(self, cpu_mem_arena: str | bool | None = None) -> None:
        self.arena_mode = _arena_mode(cpu_mem_arena)
        self._lock = threading.Lock()
        self._bundles: dict[str | None, Any] = {}
        self._runners: dict[tuple, dict] = {}

    def bundle(self, model: str | None):
        from zvc69_rt.models.bundle import ModelBundle

        with self._lock:
            if model not in self._bundles:
                self._bundles[model] = ModelBundle.load(model)
            return self._bundles[model]

    def runners(self, model: str | None, backend: str, precision: str, graphs: tuple[str, ...],
                size: tuple[int, int]) -> dict:
        arena = use_arena(self.arena_mode, *size)
        key = (model, backend, precision, graphs, arena)
        bundle = self.bundle(model)
        with self._lock:
            if key not in self._runners:
                self._runners[key] = _load_runners(bundle, backend, precision, graphs, arena)
            return self._runners[key]


class SharedModelEncoderFactory:
    """``factory(config) -> zvc69_rt.codec.encoder.Encoder`` with the model loaded once."""

    def __init__(self, cpu_mem_arena: str | bool | None = None) -> None:
        self._cache = _ModelCache(cpu_mem_arena)

    def __call__(self, config: EncoderConfig, first_pass=None):
        """first_pass: a previous pass's measurements (multi-pass vbr, codec/multipass.py)."""
        from zvc69_rt.codec.encoder import Encoder, encoder_graphs

        config.validate()
        bundle = self._cache.bundle(config.model)
        graphs = encoder_graphs(config, bundle)
        runners = self._cache.runners(config.model, config.backend, config.precision, graphs,
                                      (config.width, config.height))
        return Encoder(config, bundle=bundle, runners=runners, first_pass=first_pass)


class SharedModelDecoderFactory:
    """``factory(file_header, backend, precision, model) -> Decoder`` with the model loaded once."""

    def __init__(self, cpu_mem_arena: str | bool | None = None) -> None:
        self._cache = _ModelCache(cpu_mem_arena)

    def __call__(self, file_header, backend: str = "auto", precision: str = "fp32", model: str | None = None):
        from zvc69_rt.codec.decoder import Decoder
        from zvc69_rt.codec.inter import DECODER_GRAPHS
        from zvc69_rt.codec.runtime import GRAPHS

        bundle = self._cache.bundle(model)
        bundle.check_stream(bytes(file_header.model_hash))  # refuse a foreign stream before loading graphs
        has_inter = "inter" in bundle.manifest and file_header.gop_size > 1
        graphs = GRAPHS + (DECODER_GRAPHS if has_inter else ())
        runners = self._cache.runners(model, backend, precision, graphs, (file_header.width, file_header.height))
        return Decoder(file_header, bundle=bundle, runners=runners)
