"""The staged-encoder protocol the pipelined scheduler drives.

The sequential encoder is, for every frame in order::

    packet = entropy_code(infer(preprocess(frame)))

and ``flush()`` at end of stream. The scheduler runs the same calls concurrently:
``preprocess`` and ``entropy_code`` may run in any order on several threads, while
``infer`` runs on one thread strictly in frame order (a P-frame predicts from the
previous frame's reconstruction). Packets are muxed in submission order, so the output
is byte-identical to the sequential path.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from zvc69_rt.frame import Frame


@runtime_checkable
class StagedEncoder(Protocol):
    def preprocess(self, frame: Frame) -> Any:
        """CPU: colour convert + pad. Any order, parallel-safe."""
        ...

    def infer(self, work: Any) -> Any:
        """Backend inference. Called strictly in frame order, one call at a time."""
        ...

    def entropy_code(self, work: Any) -> Any:
        """CPU entropy coding to a Packet. Parallel-safe, any order."""
        ...

    def flush(self) -> list[Any]:
        """Remaining packets at end of stream (e.g. reordered B-frames); may be empty."""
        ...


def encode_sequential(staged: StagedEncoder, frames) -> list[Any]:
    """The reference path the pipelined encoder must match byte for byte."""
    out = [staged.entropy_code(staged.infer(staged.preprocess(f))) for f in frames]
    out.extend(staged.flush())
    return out
