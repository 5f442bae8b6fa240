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

anneal (opt-in, EncoderConfig.anneal_steps) goes on from the chosen candidate's refined
latent with the rounding inside the steps, relaxed and hardened as it goes (stochastic Gumbel
annealing): the coded symbols, not a continuous stand-in, are what the steps price. Training
photos -2.8 % BD-rate, held-out -0.6 % with MS-SSIM +4.8 % (docs/INTRA.md "Annealed rounding").

refine_residual does the same for a P residual latent with the residual_synthesis_gradient
graph (the prediction is an input; opt-in, EncoderConfig.p_refine_steps: a small gain at
high rates for ~3x the P-frame encode time, docs/INTER.md "Residual refinement").
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from zvc69_rt.codec import checkerboard
from zvc69_rt.codec.intra import IntraCodec, IntraLatents
from zvc69_rt.entropy.gaussian import SCALE_TABLE

if TYPE_CHECKING:
    from zvc69_rt.codec.inter import PFrameAnalysis, PFrameCodec

GRAPH = "synthesis_gradient"
RESIDUAL_GRAPH = "residual_synthesis_gradient"  # the P residual's (refine_residual)
#: Steps at full effort (EncoderConfig.refine_steps) and their size (latent units per unit
#: of gradient, in bits): chosen on three training photos, 20 steps of the chosen candidate:
#: size 0.003 -5.4 %, 0.005 -5.6 %, 0.01 -5.6 % (its top level overshoots) BD-rate (docs/INTRA.md).
STEPS = 20
STEP_SIZE = 0.005
#: The P residual's (refine_residual) at the residual's own lambda, chosen on training clips:
#: docs/INTER.md "Residual refinement". A heavier distortion weight shrinks it in proportion
#: (the cost's curvature grows with the weight: 0.01 at 4x diverged).
RESIDUAL_STEP_SIZE = 0.01
#: The P residual's distortion weighs this many times the frame's lambda when refined: what a
#: P-frame loses in quality its successors inherit (at 1 the steps cut 15-40 % of a frame's
#: bytes for -0.1..-0.5 dB, and the clip got no cheaper).
RESIDUAL_DISTORTION_WEIGHT = 3.0
#: Annealing (anneal, opt-in: EncoderConfig.anneal_steps) after the plain steps, on the chosen
#: I-frame candidate: Adam steps of this size with the rounding temperature going geometrically
#: from soft to nearly hard; chosen on three training photos (docs/INTRA.md "Annealed rounding").
ANNEAL_STEPS = 80
ANNEAL_STEP_SIZE = 0.01
ANNEAL_TEMPERATURE = (0.5, 0.05)
_ADAM_BETAS = (0.9, 0.999)
#: atanh's argument stays this far inside (-1, 1)
_EDGE = 1e-5


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
    feeds = _intra_feeds(codec, x, lat, quality, weight) if steps > 0 else None
    if feeds is None:
        return lat
    return dataclasses.replace(lat, y=_descend(codec.gradient, lat.y, feeds, steps, step_size))


def anneal(codec: IntraCodec, x: np.ndarray, lat: IntraLatents, quality: int, weight: np.ndarray,
           steps: int = ANNEAL_STEPS, step_size: float = ANNEAL_STEP_SIZE, seed: int = 0) -> IntraLatents:
    """lat with y moved ``steps`` Adam steps down the cost of its stochastically rounded
    symbols (stochastic Gumbel annealing, ANNEAL_TEMPERATURE from soft to nearly hard
    rounding), rounded to the coding grid at the end; the arguments as refine's. Seeded:
    the same picture anneals the same way on every run."""
    feeds = _intra_feeds(codec, x, lat, quality, weight) if steps > 0 else None
    if feeds is None:
        return lat
    y = _anneal(codec.gradient, lat.y, feeds, steps, step_size, np.random.default_rng(seed))
    return dataclasses.replace(lat, y=y)


def _intra_feeds(codec: IntraCodec, x: np.ndarray, lat: IntraLatents, quality: int,
                 weight: np.ndarray) -> dict | None:
    """The gradient graph's inputs but y for lat at quality; None where the codec cannot step."""
    lag = codec.lagrangian(quality)
    if codec.gradient is None or lag is None or codec.float_scale:
        return None
    _, inv_gain = codec.gain_vectors(quality)
    mean, index = entropy_parameters(codec, lat)
    return {"inv_gain": inv_gain, "x": x[None].astype(np.float32, copy=False), "weight": weight,
            "mean": mean[None].astype(np.float32, copy=False), "scale": SCALE_TABLE[index.astype(np.intp)][None],
            "lag": np.array([lag], np.float32)}


def refine_residual(codec: PFrameCodec, a: PFrameAnalysis, weight: np.ndarray, steps: int,
                    step_size: float = RESIDUAL_STEP_SIZE, lag: float | None = None) -> PFrameAnalysis:
    """A P/B residual's analysis with y moved ``steps`` gradient steps down the cost of coding
    a.cur against a.pred at a.quality (the codec's residual_synthesis_gradient graph), priced
    with the mean and scale of a.z_hat as analysed; ``a`` itself where there is nothing to
    refine (no graph, no coded latent, steps 0). lag: the distortion's weight (lambda*255^2)
    when not a.quality's (the encoder's: RESIDUAL_DISTORTION_WEIGHT times the frame's, and
    for a reduced-size residual times the pixels each of its pixels stands for); step_size
    is for a.quality's own and shrinks by lag's ratio to it."""
    if codec.gradient is None or a.y is None or steps <= 0:
        return a
    own = codec.lagrangian(a.quality)
    lag = own if lag is None else lag
    _, inv_gain = codec.gain_vectors(a.quality)
    index = codec.scale_head(a.z_hat) if a.scale_index is None else a.scale_index
    feeds = {"inv_gain": inv_gain, "pred": a.pred[None].astype(np.float32, copy=False),
             "x": a.cur[None].astype(np.float32, copy=False), "weight": weight,
             "mean": a.mean[None].astype(np.float32, copy=False), "scale": SCALE_TABLE[index.astype(np.intp)][None],
             "lag": np.array([lag], np.float32)}
    y = _descend(codec.gradient, a.y, feeds, steps, step_size * own / lag)
    return dataclasses.replace(a, y=y, scale_index=index)


def _descend(gradient, y0: np.ndarray, feeds: dict, steps: int, step_size: float) -> np.ndarray:
    """y0 [C, h, w] after ``steps`` plain gradient steps of the graph's "grad" output."""
    y = y0[None].astype(np.float32, copy=True)
    for _ in range(steps):
        y -= np.float32(step_size) * gradient.run({"y": y, **feeds})["grad"]
    return y[0]


def _anneal(gradient, y0: np.ndarray, feeds: dict, steps: int, step_size: float,
            rng: np.random.Generator) -> np.ndarray:
    """y0 [C, h, w] after ``steps`` Adam steps of stochastic Gumbel annealing (Yang et al.
    2020, "Improving inference for neural image compression"), returned on the coding grid
    (mean + integers). Each step rounds v = y - mean to floor(v) + s, s in (0, 1) a
    two-class Gumbel-softmax sample whose odds favour the nearer integer more as the
    temperature t falls; the graph's gradient at that rounding, chained through s, moves v:

        logit(ceil) - logit(floor) = (atanh(v - floor v) - atanh(ceil v - v)) / t
        s = sigmoid((that + g1 - g0) / t),  g Gumbel noise
    """
    mean = feeds["mean"].astype(np.float64)
    v = y0[None].astype(np.float64) - mean
    first = np.zeros_like(v)
    second = np.zeros_like(v)
    (b1, b2), (t0, t1) = _ADAM_BETAS, ANNEAL_TEMPERATURE
    for k in range(steps):
        t = t0 * (t1 / t0) ** (k / max(1, steps - 1))
        floor = np.floor(v)
        up = np.clip(v - floor, _EDGE, 1 - _EDGE)  # distance to the integer below; 1 - up to the one above
        odds = (np.arctanh(up) - np.arctanh(1 - up)) / t
        noise = rng.gumbel(size=(2, *v.shape))
        s = 0.5 * (1 + np.tanh((odds + noise[1] - noise[0]) / (2 * t)))  # sigmoid(x / t)
        grad = gradient.run({"y": (floor + s + mean).astype(np.float32), **feeds})["grad"]
        # chain rule: ds/dv = s (1 - s) / t * d(odds)/dv, d(odds)/dv = (1/(1-up^2) + 1/(1-(1-up)^2)) / t
        grad = grad * (s * (1 - s) * (1 / (1 - up * up) + 1 / (1 - (1 - up) ** 2)) / (t * t))
        first = b1 * first + (1 - b1) * grad
        second = b2 * second + (1 - b2) * grad * grad
        v -= step_size * (first / (1 - b1 ** (k + 1))) / (np.sqrt(second / (1 - b2 ** (k + 1))) + 1e-8)
    return (np.round(v) + mean)[0].astype(np.float32)
