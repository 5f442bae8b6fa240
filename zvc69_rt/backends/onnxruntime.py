"""ONNX Runtime backend: the embedded CPU default (CUDA/TensorRT EPs with onnxruntime-gpu)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zvc69_rt.errors import NotAvailableError


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise NotAvailableError(
            "ONNX Runtime is not installed: pip install 'zvc69-rt[cpu]' (or [gpu] on an NVIDIA host)"
        ) from exc
    return onnxruntime


class OrtRunner:
    def __init__(self, session):
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outs))


class OnnxRuntimeBackend:
    """One session per graph. Threads default to the machine's cores; idle worker
    threads do not spin, so numba entropy coding keeps its cores in a pipeline."""

    name = "onnxruntime"

    def __init__(self, threads: int | None = None, providers: list[str] | None = None):
        ort = _ort()
        self.threads = threads or int(os.environ.get("ZVC69_ORT_THREADS", "0")) or (os.cpu_count() or 1)
        available = ort.get_available_providers()
        self.providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]

    def load(self, graph: Path) -> OrtRunner:
        ort = _ort()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return OrtRunner(ort.InferenceSession(str(graph), so, providers=self.providers))
