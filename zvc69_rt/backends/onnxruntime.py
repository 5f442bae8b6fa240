"""ONNX Runtime backend: the embedded CPU default; CUDA and TensorRT execution providers
where onnxruntime-gpu provides them.

Session options per docs/gpu-stack: full graph optimisation, a settable intra-op thread
count, and no spinning of idle intra-op threads (they would steal the cores the numba
entropy coder needs when the pipeline overlaps the two).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zvc69_rt.errors import InputError, NotAvailableError

# Fastest first; only those the installed package reports are used.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise NotAvailableError(
            "ONNX Runtime is not installed: pip install 'zvc69-rt[cpu]' (onnxruntime), "
            "or 'zvc69-rt[gpu]' (onnxruntime-gpu) on an NVIDIA host; never both"
        ) from exc
    return onnxruntime


def available_providers() -> list[str]:
    return list(_ort().get_available_providers())


class OrtRunner:
    def __init__(self, session, name: str = "graph"):
        self.session = session
        self.name = name
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputError(f"graph {self.name}: missing inputs {missing} (has {sorted(inputs)})")
        outs = self.session.run(self.output_names, {n: inputs[n] for n in self.input_names})
        return dict(zip(self.output_names, outs, strict=True))


class OnnxRuntimeBackend:
    """One session per graph."""

    name = "onnxruntime"

    def __init__(self, threads: int | None = None, providers: list[str] | None = None,
                 trt_cache_dir: Path | None = None, cpu_mem_arena: bool = True):
        """cpu_mem_arena=False: sessions free their activations after each run instead of
        keeping ORT's arena at its high-water mark (the service does this above 720p)."""
        ort = _ort()
        self.cpu_mem_arena = cpu_mem_arena
        self.threads = threads or int(os.environ.get("ZVC69_ORT_THREADS", "0")) or (os.cpu_count() or 1)
        available = ort.get_available_providers()
        if providers is not None:
            unknown = [p for p in providers if p not in available]
            if unknown:
                raise NotAvailableError(f"ONNX Runtime here lacks providers {unknown} (has {available})")
            self.providers = list(providers)
        else:
            self.providers = [p for p in PROVIDER_ORDER if p in available] or ["CPUExecutionProvider"]
        self.trt_cache_dir = trt_cache_dir

    def describe(self) -> str:
        return f"onnxruntime {_ort().__version__} ({', '.join(self.providers)}; {self.threads} threads)"

    def session_options(self):
        ort = _ort()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.enable_cpu_mem_arena = self.cpu_mem_arena
        return so

    def _provider_args(self) -> list:
        out = []
        for p in self.providers:
            if p == "TensorrtExecutionProvider":  # keep its engines across runs, like engines/
                from zvc69_rt.engines.cache import default_cache_dir

                d = str(self.trt_cache_dir or default_cache_dir() / "ort-trt")
                out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": d,
                                "trt_timing_cache_enable": True, "trt_timing_cache_path": d}))
            else:
                out.append(p)
        return out

    def load(self, graph: Path) -> OrtRunner:
        ort = _ort()
        if not Path(graph).is_file():
            raise InputError(f"graph {graph}: no such file")
        sess = ort.InferenceSession(str(graph), self.session_options(), providers=self._provider_args())
        return OrtRunner(sess, Path(graph).name)
