"""The real codec behind the service: Encoder/Decoder factories that share one loaded model.

Loading a bundle and its ONNX sessions costs hundreds of milliseconds and tens of MiB; a
service that opens thousands of streams loads them once per (model, backend, precision,
graph set) and hands the same runners to every Encoder (ORT sessions are stateless and
thread-safe). The bytes produced are the same as a fresh ``Encoder(config)`` (the CLI's).
"""

from __future__ import annotations

import threading
from typing import Any

from zvc69_rt.codec.api import EncoderConfig


class _ModelCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bundles: dict[str | None, Any] = {}
        self._runners: dict[tuple, dict] = {}

    def bundle(self, model: str | None):
        from zvc69_rt.models.bundle import ModelBundle

        with self._lock:
            if model not in self._bundles:
                self._bundles[model] = ModelBundle.load(model)
            return self._bundles[model]

    def runners(self, model: str | None, backend: str, precision: str, graphs: tuple[str, ...]) -> dict:
        from zvc69_rt.codec.runtime import load_runners

        key = (model, backend, precision, graphs)
        bundle = self.bundle(model)
        with self._lock:
            if key not in self._runners:
                self._runners[key] = load_runners(bundle, backend, precision, graphs)[0]
            return self._runners[key]


class SharedModelEncoderFactory:
    """``factory(config) -> zvc69_rt.codec.encoder.Encoder`` with the model loaded once."""

    def __init__(self) -> None:
        self._cache = _ModelCache()

    def __call__(self, config: EncoderConfig):
        from zvc69_rt.codec.encoder import Encoder
        from zvc69_rt.codec.inter import ENCODER_GRAPHS
        from zvc69_rt.codec.runtime import GRAPHS

        config.validate()
        bundle = self._cache.bundle(config.model)
        graphs = GRAPHS + (ENCODER_GRAPHS if config.gop > 1 and "inter" in bundle.manifest else ())
        runners = self._cache.runners(config.model, config.backend, config.precision, graphs)
        return Encoder(config, bundle=bundle, runners=runners)


class SharedModelDecoderFactory:
    """``factory(file_header, backend, precision, model) -> Decoder`` with the model loaded once."""

    def __init__(self) -> None:
        self._cache = _ModelCache()

    def __call__(self, file_header, backend: str = "auto", precision: str = "fp32", model: str | None = None):
        from zvc69_rt.codec.decoder import Decoder
        from zvc69_rt.codec.inter import DECODER_GRAPHS
        from zvc69_rt.codec.runtime import GRAPHS

        bundle = self._cache.bundle(model)
        bundle.check_stream(bytes(file_header.model_hash))  # refuse a foreign stream before loading graphs
        has_inter = "inter" in bundle.manifest and file_header.gop_size > 1
        graphs = GRAPHS + (DECODER_GRAPHS if has_inter else ())
        runners = self._cache.runners(model, backend, precision, graphs)
        return Decoder(file_header, bundle=bundle, runners=runners)
