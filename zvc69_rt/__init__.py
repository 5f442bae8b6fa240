"""ZVC69-RT: a neural video codec and its realtime encoder service.

Data flow (encode; decode runs it backwards)::

    frames -> io (y4m/raw/PyAV) -> color + pad -> models (ONNX graphs on a backend)
           -> entropy (numba rANS, ZVCP slices) -> bitstream (ZVC69 container)

Importing this package never imports torch, tensorrt or pycuda.
"""

from __future__ import annotations

__version__ = "0.1.0"

from zvc69_rt.errors import (
    EntropyDecodeError,
    InputError,
    ModelMismatchError,
    NotAvailableError,
    ZVC69Error,
    ZVC69FormatError,
)

__all__ = [
    "EntropyDecodeError",
    "InputError",
    "ModelMismatchError",
    "NotAvailableError",
    "ZVC69Error",
    "ZVC69FormatError",
    "__version__",
]
