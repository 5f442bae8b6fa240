"""Optimization profiles: which tensor shapes an engine accepts, from a frame resolution.

A graph input's dynamic spatial dims are the padded frame size divided by the input's
stride (analysis sees pixels, synthesis the 1/16 latent, hyper_synthesis the 1/64
hyper-latent). Strides come from the bundle manifest's optional ``input_strides``
({graph: stride} or {graph: {input: stride}}), else from the table below.
min = the smallest frame (one alignment block), opt = max = the profile resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zvc69_rt.errors import InputError

PROFILES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}

DEFAULT_STRIDES = {
    "analysis": 1, "hyper_analysis": 16, "hyper_synthesis": 64, "synthesis": 16,
    "motion_estimation": 1, "residual_analysis": 1,
    # P graphs: motion vectors at H/4, the residual latent at H/8 and its hyper latent at H/32
    "motion_compensation": {"ref": 1, "motion": 4}, "motion_compensation_cubic": {"ref": 1, "motion": 4},
    "residual_hyper_synthesis": 32, "residual_synthesis": {"y_hat": 8, "pred": 1},
    # encoder-only I-frame cost gradient (codec/latent_refine.py): latents, and the picture with its weights
    "synthesis_gradient": {"y": 16, "mean": 16, "scale": 16, "x": 1, "weight": 1},
    # and the P residual's (latents at H/8)
    "residual_synthesis_gradient": {"y": 8, "mean": 8, "scale": 8, "pred": 1, "x": 1, "weight": 1},
}

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    name: str
    width: int
    height: int

    def padded(self, alignment: int) -> tuple[int, int]:
        """(height, width) rounded up to the bundle alignment."""
        return (-(-self.height // alignment) * alignment, -(-self.width // alignment) * alignment)


def parse_profile(text: str) -> Profile:
    """``720p`` | ``1080p`` | ``4k`` | ``WxH`` (e.g. ``2560x1440``)."""
    t = text.strip().lower()
    if t in PROFILES:
        w, h = PROFILES[t]
        return Profile(t, w, h)
    m = re.fullmatch(r"(\d{1,5})x(\d{1,5})", t)
    if not m:
        raise InputError(f"--profile {text!r}: use 720p, 1080p, 4k or WxH such as 2560x1440")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise InputError(f"--profile {text!r}: width and height must be in 16..16384")
    return Profile(f"{w}x{h}", w, h)


def _stride(graph: str, input_name: str, strides: dict | None) -> int:
    entry = (strides or {}).get(graph)
    if isinstance(entry, dict):
        entry = entry.get(input_name)
    if entry is None:
        entry = DEFAULT_STRIDES.get(graph)
        if isinstance(entry, dict):
            entry = entry.get(input_name)
    if entry is None:
        raise InputError(
            f"graph {graph!r}: unknown spatial stride of input {input_name!r}; add it to the bundle "
            "manifest as input_strides: {graph: stride}"
        )
    return int(entry)


def input_shapes(graph: str, inputs: list[tuple[str, list[int | str | None]]], profile: Profile,
                 alignment: int = 64, strides: dict | None = None) -> dict[str, tuple[Shape, Shape, Shape]]:
    """{input: (min, opt, max)} for graph inputs given as (name, dims) with None/str for dynamic.

    Dynamic dims are allowed in the batch position (always 1) and the two spatial
    positions of an NCHW tensor; fixed dims stay as they are.
    """
    out = {}
    ph, pw = profile.padded(alignment)
    for name, dims in inputs:
        lo, hi = [], []
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int) or d <= 0]
        if any(i not in (0, 2, 3) for i in dynamic) or (set(dynamic) & {2, 3} and len(dims) != 4):
            raise InputError(f"graph {graph!r} input {name!r} {dims}: only batch and NCHW height/width may be dynamic")
        s = _stride(graph, name, strides) if set(dynamic) & {2, 3} else 1
        for i, d in enumerate(dims):
            if i not in dynamic:
                lo.append(int(d))
                hi.append(int(d))
            elif i == 0:
                lo.append(1)
                hi.append(1)
            else:
                full = ph if i == 2 else pw
                if full % s:
                    raise InputError(f"graph {graph!r}: profile {profile.name} padded size is not a multiple of stride {s}")
                lo.append(max(1, alignment // s))
                hi.append(full // s)
        out[name] = (tuple(lo), tuple(hi), tuple(hi))
    return out


def onnx_inputs(onnx_bytes: bytes) -> list[tuple[str, list[int | str | None]]]:
    """(name, dims) of the real graph inputs (initializers excluded), dynamic dims as str/None."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    inits = {i.name for i in model.graph.initializer}
    res = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in vi.type.tensor_type.shape.dim]
        res.append((vi.name, dims))
    return res
