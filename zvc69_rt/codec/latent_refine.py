"""Encoder-side refinement of an I-frame's latent: a few gradient steps on y toward lower
rate-distortion cost for the fixed synthesis and entropy model. Same format: the decoder
sees an ordinary latent.

    x --analysis--> y0, z_hat --hyper--> mean, scale index
    y <- y0;  repeat steps:  y <- y - step_size * grad      (the bundle's synthesis_gradient graph:
                                                              lambda*255^2/3 * weighted SSE + rate proxy)
    code(y) as usual: checkerboard, the hyper-latent search, the real cost decides (Encoder.code_intra)

The analysis is amortised over all pictures; for one picture its latent is not the cheapest
for the synthesis to decode (training photos, 20 steps: -6.35 % BD-rate, held-out photos
-8.0 %; docs/INTRA.md "Latent refinement"). z_hat stays as analysed, and so do the mean and
scale the rate term prices y with: the hyper's, and with the checkerboard context the
non-anchors' from the anchors' symbols as analysed (the steps move those symbols a little;
the real coding then follows them).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zvc69_rt.codec import checkerboard
from zvc69_rt.codec.intra import IntraCodec, IntraLatents
from zvc69_rt.entropy.gaussian import SCALE_TABLE

GRAPH = "synthesis_gradient"
#: Steps at full effort (EncoderConfig.refine_steps) and their size (latent units per unit
#: of gradient, in bits): chosen on three training photos, 20 steps of the chosen candidate:
#: size 0.003 -5.4 %, 0.005 -5.6 %, 0.01 -5.6 % (its top level overshoots) BD-rate (docs/INTRA.md).
STEPS = 20
STEP_SIZE = 0.005


def visible_weight(padded_hw: tuple[int, int], visible_hw: tuple[int, int]) -> np.ndarray:
    """float32 [1, 1, H, W]: 1 on the picture, 0 on the padding the decoder crops."""
    w = np.zeros((1, 1, *padded_hw), np.float32)
    w[..., : visible_hw[0], : visible_hw[1]] = 1.0
    return w


def entropy_parameters(codec: IntraCodec, lat: IntraLatents) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale index) per latent as code() will use them for lat as analysed: with the
    checkerboard context, the non-anchors' come from the anchors' symbols (which the steps
    then move a little; the context follows them only in the real coding)."""
    index = codec._scale_index(lat)
    if codec.context is None:
        return lat.mean, index
    _, _, mean_a, mean_n, index_n = codec._two_pass(lat, index)
    return checkerboard.merge(mean_a, mean_n), checkerboard.merge(checkerboard.split(index)[0], index_n)


def refine(codec: IntraCodec, x: np.ndarray, lat: IntraLatents, quality: int, weight: np.ndarray,
           steps: int = STEPS, step_size: float = STEP_SIZE) -> IntraLatents:
    """lat with y moved ``steps`` gradient steps down the cost of coding picture ``x`` [3, H, W]
    (what lat was analysed from) at ``quality``, with the codec's gradient graph; ``weight``
    [1, 1, H, W] (visible_weight). lat itself where the codec has no graph to step with."""
    lag = codec.lagrangian(quality)
    if codec.gradient is None or lag is None or codec.float_scale or steps <= 0:
        return lat
    _, inv_gain = codec.gain_vectors(quality)
    mean, index = entropy_parameters(codec, lat)
    feeds = {"inv_gain": inv_gain, "x": x[None].astype(np.float32, copy=False), "weight": weight,
             "mean": mean[None].astype(np.float32, copy=False), "scale": SCALE_TABLE[index.astype(np.intp)][None],
             "lag": np.array([lag], np.float32)}
    y = lat.y[None].astype(np.float32, copy=True)
    for _ in range(steps):
        y -= np.float32(step_size) * codec.gradient.run({"y": y, **feeds})["grad"]
    return dataclasses.replace(lat, y=y[0])
