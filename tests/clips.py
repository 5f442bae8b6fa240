"""The example clip shipped in the repo (real footage, 320x136), for tests that need frames."""

from __future__ import annotations

from pathlib import Path

from zvc69_rt.frame import Frame

EXAMPLE_CLIP = Path(__file__).resolve().parents[1] / "examples" / "bikes_320x136.y4m"


def example_frames(n: int) -> list[Frame]:
    """The clip's first n frames."""
    from zvc69_rt.io.open import open_source

    return [f for _, f in zip(range(n), open_source(str(EXAMPLE_CLIP)))]
