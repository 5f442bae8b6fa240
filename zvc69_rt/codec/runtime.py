"""Load a bundle's graphs on a backend: the one place the codec meets backends."""

from __future__ import annotations

from zvc69_rt.models.bundle import ModelBundle

GRAPHS = ("analysis", "hyper_synthesis", "synthesis")
#: Graphs a bundle may lack (exported before session 6): skipped when absent; a frame that
#: needs one is refused by name (PFrameCodec.predict).
OPTIONAL_GRAPHS = ("motion_compensation_cubic", "synthesis_gradient", "residual_synthesis_gradient")


def load_runners(bundle: ModelBundle, backend: str = "auto", precision: str = "fp32",
                 graphs: tuple[str, ...] = GRAPHS) -> tuple[dict, str]:
    """Returns ({graph name: Runner}, backend name actually used)."""
    from zvc69_rt.backends.select import select_backend

    be = select_backend(backend)
    present = bundle.manifest.get("graphs", {})
    wanted = [g for g in graphs if g in present or g not in OPTIONAL_GRAPHS]
    return {g: be.load(bundle.graph_path(g, precision)) for g in wanted}, be.name
