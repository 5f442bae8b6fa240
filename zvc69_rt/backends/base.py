"""The one interface both inference backends implement (ONNX Runtime, TensorRT).

    Backend.load(graph) -> Runner;  Runner.run({name: ndarray}) -> {name: ndarray}

Both return numpy arrays on the host, so everything above this line is backend-agnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Runner(Protocol):
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@runtime_checkable
class Backend(Protocol):
    name: str

    def load(self, graph: Path) -> Runner: ...
