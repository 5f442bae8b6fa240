"""P-frame coding: motion-compensated prediction from the decoded reference + a coded
(or skipped) residual. Layout of the frame data: docs/INTER.md.

    encoder:  analyse(cur, ref, quality)  backend: motion_estimation -> quantise ->
                  motion_compensation -> residual_analysis -> z_hat -> residual_hyper_synthesis
              code(analysis)              CPU: motion data, integer scale head, rANS; backend:
                                          residual_synthesis; skip decision -> (data, recon)
    decoder:  parse(data, latent_hw)      CPU: motion + residual payloads
              synthesise(parsed, ref, q)  backend: motion_compensation, residual_hyper_synthesis
                                          (mean), residual_synthesis

A bundle with the conditional mean (manifest inter.conditional_mean, session 19) computes the
residual's entropy mean from z_hat *and* the prediction (and the quality's gain), so the
decoder runs residual_hyper_synthesis after motion compensation, not while parsing. The
scale index stays an integer function of z_hat alone: the symbols never depend on the
prediction.

Closed loop: ``ref`` is always the decoder's reconstruction of the reference (float32
[3, H, W] in [0, 1], padded), and code() returns the reconstruction by running exactly
the graphs and inputs the decoder will run, so both sides stay bit-identical on the same
backend. An all-zero motion field predicts with the reference itself (no warp graph), a
skipped residual reconstructs the prediction unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zvc69_rt import entropy
from zvc69_rt.bitstream.motion_header import MotionPrecision
from zvc69_rt.codec import hyper_search, latent_refine, motion_aq, motion_search
from zvc69_rt.codec.intra import interpolate_levels
from zvc69_rt.codec.motion import (
    CodedMotion,
    affine_motion,
    block_mean,
    decode_motion,
    encode_motion,
    estimate_motion_bits,
    quantize,
)
from zvc69_rt.codec.reduced_res import downsample_2x, upsample_to
from zvc69_rt.errors import EntropyDecodeError, InputError, ZVC69FormatError
from zvc69_rt.io.padding import pad_to_multiple
from zvc69_rt.models.bundle import ModelBundle
from zvc69_rt.models.scale_head import IntegerScaleHead

PREFIX = "p_"
ENCODER_GRAPHS = ("motion_estimation", "motion_compensation", "motion_compensation_cubic", "residual_analysis",
                  "residual_hyper_synthesis", "residual_synthesis")
DECODER_GRAPHS = ("motion_compensation", "motion_compensation_cubic", "residual_hyper_synthesis",
                  "residual_synthesis")
CUBIC_GRAPH = "motion_compensation_cubic"  # optional (codec.runtime.OPTIONAL_GRAPHS)
RESIDUAL_SKIPPED, RESIDUAL_CODED, RESIDUAL_CODED_MOTION_AQ, RESIDUAL_CODED_HALF, RESIDUAL_CODED_QUARTER = range(5)
#: Flag of a residual coded at 1/2^halvings size (the format), and its inverse for the parser.
REDUCED_RESIDUAL_FLAGS = {1: RESIDUAL_CODED_HALF, 2: RESIDUAL_CODED_QUARTER}
HALVINGS_OF_FLAG = {flag: halvings for halvings, flag in REDUCED_RESIDUAL_FLAGS.items()}
#: Reduced sizes the encoder tries (halvings), each at these quality steps above the frame's:
#: half size (flag 3) at +0/+14; quarter size (flag 4) at +28/+42 (+14 was never chosen on
#: bikes or Big Buck Bunny, +42 most; docs/INTER.md "Quarter-size residual").
REDUCED_RESIDUAL_QUALITY_STEPS = {1: (0, 14), 2: (28, 42)}
#: Mean squared prediction error (RGB in [0,1]) below which the residual is not even analysed.
SKIP_MSE = (0.25 / 255) ** 2
#: Motion smoothing the encoder tries (block x block groups of H/4 vectors averaged): 1 = as estimated,
#: 4 = one vector per 16x16 pixels, 16 = per 64x64; plus one global vector (the median), which
#: costs almost nothing under camera pans. Measured on bikes.mp4 (step-3000 inter model): the
#: noisy per-4x4 field took 5.3 KB of an 8 KB P-frame.
MOTION_BLOCKS = (1, 4, 16)
#: Residual bits the motion estimate expects per unit of prediction SAD (sum over visible
#: pixels and RGB channels of |cur - pred| in 0..255): SAD_BITS[0] * exp(SAD_BITS[1] * quality).
#: Bits follow SAD, not MSE: over the motion candidates of training-clip P-frames
#: (session 5, shipped P model) residual bytes correlate 0.89-0.92 with SAD at every
#: quality; on one Big Buck Bunny frame, constant fields 0.25 px apart: SAD 0.99, MSE 0.79
#: (the best-MSE field cost 17 % more than the best-SAD one). Slopes fitted per quality
#: (0.0080, 0.0193, 0.0304, 0.0479 bit per SAD unit at 15, 43, 71, 92); docs/INTER.md.
#: Refit for another model: python -m zvc69_rt.eval.sad_fit --model BUNDLE.
SAD_BITS = (0.00563, 0.0232)
#: Motion fields coded in full by PFrameCodec.encode to pick the best (1 = trust the estimate).
RD_CANDIDATES = 3
#: Fields (of those scored at quarter pel) also tried at half and full pel.
PRECISION_RETRIES = 2


def should_skip_residual(residual: np.ndarray, threshold: float = SKIP_MSE) -> bool:
    """The spec's fast skip test: the prediction is already (nearly) the frame."""
    return float(np.mean(np.square(residual, dtype=np.float64))) < threshold


@dataclass
class PFrameAnalysis:
    """Encoder state between analyse() (backend) and code() (CPU + residual synthesis)."""

    cur: np.ndarray  # float32 [3, H, W]
    motion: CodedMotion
    pred: np.ndarray  # float32 [3, H, W], exactly what the decoder will predict
    quality: int
    y: np.ndarray | None = None  # float32 [M, H/8, W/8] (gained), None: residual skipped early
    z_hat: np.ndarray | None = None  # int32 [Nz, H/32, W/32]
    mean: np.ndarray | None = None  # float32 [M, H/8, W/8]
    scale_index: np.ndarray | None = None  # uint8 [M, H/8, W/8], from z_hat (computed once)


def half_picture(x: np.ndarray, halvings: int = 1) -> np.ndarray:
    """A padded [3, H, W] picture halved ``halvings`` times (1: half size, flag 3; 2: quarter
    size, flag 4), edge-padded to the alignment (64): what a reduced-size residual is coded
    against; the decoder computes it too (normative)."""
    for _ in range(halvings):
        x = downsample_2x(x)
    return pad_to_multiple(x, 64)[0]


def add_half_residual(pred: np.ndarray, pred_half: np.ndarray, x_half: np.ndarray, halvings: int = 1) -> np.ndarray:
    """The flag-3/4 reconstruction: the decoded reduced-size picture's difference to the
    reduced prediction, upsampled (2x at a time) onto the full prediction; clipped like the
    full-size synthesis' output (its graph ends in Clip(0, 1))."""
    up = x_half - pred_half
    for k in range(halvings - 1, -1, -1):
        up = upsample_to(up, (pred.shape[1] >> k, pred.shape[2] >> k))
    return np.clip(pred + up, 0.0, 1.0)


def half_latent_size(latent_hw: tuple[int, int], halvings: int = 1) -> tuple[int, int]:
    """Latent size (H/16, W/16) of half_picture(halvings) for a frame of latent size latent_hw."""
    return tuple(-(-((v * 16) >> halvings) // 64) * 64 // 16 for v in latent_hw)


@dataclass
class ParsedPFrame:
    motion: CodedMotion
    residual_coded: bool
    symbols: np.ndarray | None = None
    z_hat: np.ndarray | None = None  # int32 [Nz, h/4, w/4]: the mean is computed with the prediction
    step: np.ndarray | None = None  # float32 [1, H/8, W/8] with motion-adaptive quantisation, else None
    half_quality: int | None = None  # a half/quarter-size residual (flag 3/4) coded at this quality, else None
    halvings: int = 0  # 1: half size (flag 3), 2: quarter size (flag 4)


class PFrameCodec:
    def __init__(self, bundle: ModelBundle, runners: dict, num_slices: int | None = None, skip: str = "auto",
                 rd_candidates: int = RD_CANDIDATES, aq_strength: int = 0, block_search: bool = True,
                 visible_size: tuple[int, int] | None = None, half_residual: bool = False,
                 z_search: bool = False, refine_steps: int = 0):
        """skip: "auto" (rate-distortion decision), "never" (code every residual the fast
        test does not find zero), "always" (prediction only: cheapest, lowest quality).
        aq_strength: 1..4, block-adaptive quantisation by motion magnitude
        (codec/motion_aq.py), tried beside plain quantisation and kept where it costs less;
        0 = off. block_search: also try the block-matching fields (codec/motion_search.py).
        visible_size: (height, width) of the frames before padding; the encoder then codes
        the padding as the prediction (see analyse_residual). z_search: the frame's chosen
        residual is coded once more with a searched hyper latent (codec/hyper_search.py).
        refine_steps: the frame's chosen residual is coded once more with its latent refined
        by that many gradient steps (codec/latent_refine.refine_residual; before the hyper
        search, with both) where the bundle has the gradient graph; kept where cheaper."""
        if skip not in ("auto", "never", "always"):
            raise InputError(f"skip must be auto, never or always, got {skip!r}")
        if not 0 <= aq_strength <= motion_aq.MAX_STRENGTH:
            raise InputError(f"motion AQ strength must be 0..{motion_aq.MAX_STRENGTH}, got {aq_strength}")
        self.aq_strength = aq_strength
        if "inter" not in bundle.manifest:
            raise InputError(f"model bundle {bundle.folder} has no P-frame (inter) graphs")
        self.bundle = bundle
        self.runners = runners
        sec = bundle.manifest["inter"]
        self.M = int(sec["latent_channels"])
        self.Nz = int(sec["hyperprior_channels"])
        self.levels = int(sec["levels"])
        t = {k[len(PREFIX):]: v for k, v in bundle.tables.items() if k.startswith(PREFIX)}
        self.gains = t["gains"].astype(np.float64)
        self.inv_gains = t["inv_gains"].astype(np.float64)
        self.lambdas = t["lambdas"].astype(np.float64)
        self.z_table = entropy.CdfTable(cdf=t["z_cdf"], cdf_length=t["z_cdf_length"], offset=t["z_offset"])
        self.scale_head = IntegerScaleHead.from_tables(t)
        self.num_slices = num_slices
        self.skip = skip
        self.rd_candidates = max(1, int(rd_candidates))
        self.block_search = bool(block_search)
        self.visible_size = visible_size
        self.half_residual = bool(half_residual)  # encoder: also try the residual at half size
        self.z_search = bool(z_search)
        self.conditional_mean = bool(sec.get("conditional_mean", False))
        self.gradient = runners.get(latent_refine.RESIDUAL_GRAPH)  # encoder-only, optional
        self.refine_steps = int(refine_steps) if self.gradient is not None else 0

    def _run(self, graph: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        runner = self.runners.get(graph)
        if runner is None:
            raise InputError(f"P-frame codec was built without the {graph} graph (encoder side needs it)")
        return runner.run(inputs)

    # -- quality -------------------------------------------------------------------
    def gain_vectors(self, quality: int) -> tuple[np.ndarray, np.ndarray]:
        g = interpolate_levels(self.gains, quality, self.levels).astype(np.float32).reshape(1, -1, 1, 1)
        ig = interpolate_levels(self.inv_gains, quality, self.levels).astype(np.float32).reshape(1, -1, 1, 1)
        return g, ig

    def lagrangian(self, quality: int) -> float:
        """lambda*255^2 of the training loss (per-pixel MSE vs bits per pixel) at this quality."""
        return float(interpolate_levels(self.lambdas, quality, self.levels)) * 255**2

    def rd_cost(self, cur: np.ndarray, data: bytes, recon: np.ndarray, quality: int) -> float:
        """lambda * distortion (visible area) + bits per padded pixel: the one cost every
        P/B coding choice (motion field, warp, skip, motion AQ, half size) is decided by."""
        return (self.lagrangian(quality) * self.distortion(cur, recon)
                + 8 * len(data) / (cur.shape[1] * cur.shape[2]))

    def residual_mean(self, z_hat: np.ndarray, pred: np.ndarray, quality: int) -> np.ndarray:
        """Entropy mean float32 [M, h, w] of a residual latent: from z_hat int [Nz, h/4, w/4],
        and with the conditional mean from the prediction pred [3, 8h, 8w] at this quality."""
        z = z_hat[None].astype(np.float32)
        if not self.conditional_mean:
            return self._run("residual_hyper_synthesis", z_hat=z)["mean"][0]
        gain, _ = self.gain_vectors(quality)
        return self._run("residual_hyper_synthesis", z_hat=z, pred=pred[None].astype(np.float32, copy=False),
                         gain=gain)["mean"][0]

    # -- shared prediction ---------------------------------------------------------
    def predict(self, ref: np.ndarray, motion: CodedMotion) -> np.ndarray:
        """Motion-compensated prediction, identical in encoder and decoder."""
        if motion.is_zero:
            return ref.astype(np.float32, copy=True)
        graph = "motion_compensation"
        if motion.cubic:
            if CUBIC_GRAPH not in self.runners:
                raise ZVC69FormatError(
                    f"a frame uses the bicubic warp, and model bundle {self.bundle.folder} has no {CUBIC_GRAPH} "
                    "graph (it predates session 6): decode with the bundle that encoded the stream"
                )
            graph = CUBIC_GRAPH
        return self._run(graph, ref=ref[None].astype(np.float32, copy=False), motion=motion.pixels()[None])["pred"][0]

    # -- encoder -------------------------------------------------------------------
    def analyse(self, cur: np.ndarray, ref: np.ndarray, quality: int,
                precision: MotionPrecision | int | None = None) -> PFrameAnalysis:
        """Backend half: cur, ref float32 [3, H, W] (H, W multiples of 64; ref = decoded).

        precision None lets the encoder pick quarter, half or full pel (or the zero field)
        by rate-distortion cost; a given precision is used as is (the zero field stays an
        option)."""
        if cur.shape != ref.shape or cur.ndim != 3 or cur.shape[0] != 3:
            raise InputError(f"P-frame: cur {cur.shape} and ref {ref.shape} must both be [3, H, W]")
        if cur.shape[1] % 64 or cur.shape[2] % 64:
            raise InputError(f"P-frame: {cur.shape[2]}x{cur.shape[1]} is not padded to a multiple of 64")
        cur = cur.astype(np.float32, copy=False)
        motion, pred = self.choose_motion(cur, ref, quality, precision)
        return self.analyse_residual(PFrameAnalysis(cur=cur, motion=motion, pred=pred, quality=quality))

    def choose_motion(self, cur: np.ndarray, ref: np.ndarray, quality: int,
                      precision: MotionPrecision | int | None = None) -> tuple[CodedMotion, np.ndarray]:
        """Estimate, quantise and pick the motion field of least rate-distortion cost: (motion, pred)."""
        return self.motion_candidates(cur, ref, quality, precision, count=1)[0]

    def motion_candidates(self, cur: np.ndarray, ref: np.ndarray, quality: int,
                          precision: MotionPrecision | int | None = None,
                          count: int = 1) -> list[tuple[CodedMotion, np.ndarray]]:
        """The `count` motion fields of least estimated cost, cheapest first: (motion, pred).

        Fields: the flow network's estimate (smoothed at MOTION_BLOCKS), its median, with
        block search its affine fit (motion_search.affine_fit: zoom, rotation; quantised
        as a ramp, and refined on the pixels (motion_search.refine_affine) as six
        parameters at quarter pel, motion.AFFINE_FIELD), a
        piecewise-constant field of the frame's few dominant motions
        (motion_search.segmented_field: objects moving differently), and when the frame
        moves as a whole (motion_search.global_translation), that translation, the
        network's estimate against the reference pre-shifted by it (the network only sees
        what is left) and a block-matching field. Each is scored at quarter pel; the
        PRECISION_RETRIES best are also tried at half and full pel. The estimate is motion
        bits plus the residual bits the prediction error's SAD predicts (SAD_BITS).

        With count > 1 the list also holds the best of the network's own fields, the best
        one-vector field and the zero field when they did not make the cut: the estimate is
        a poor judge of what the residual coder will spend (bikes.mp4: the global pan
        predicted 4.6 dB better than the zero field and still cost 8 % more bits; Big Buck
        Bunny frame 1: a flow field predicting 30.7 dB left a residual of 2086 bytes, the
        median vector's 24.7 dB one of 1829), so encode() codes those in full too."""
        bits_per_sad = SAD_BITS[0] * math.exp(SAD_BITS[1] * quality)
        coarse = (MotionPrecision.HALF_PEL, MotionPrecision.FULL_PEL) if precision is None else ()
        first = MotionPrecision.QUARTER_PEL if precision is None else MotionPrecision(precision)
        scored, seen = [], set()

        def score(cand: CodedMotion, field: int) -> None:
            key = (int(cand.precision), cand.vectors.tobytes())
            if key in seen:
                return
            seen.add(key)
            pred = self.predict(ref, cand)
            cost = bits_per_sad * self.sad(cur, pred) + estimate_motion_bits(cand)
            scored.append((cost, len(scored), cand, pred, field))

        fields, network_fields, affine = self._motion_fields(cur, ref)
        for i, f in enumerate(fields):
            cand = quantize(f, first)
            if not cand.is_zero:
                score(cand, i)
        if affine is not None and (cand := affine_motion(affine, fields[0].shape[1:], first)) is not None:
            score(cand, -2)  # the affine fit as six parameters (AFFINE_FIELD): 31 bytes at any size
        for i in sorted({t[4] for t in sorted(scored, key=lambda t: t[:2])[:PRECISION_RETRIES] if t[4] >= 0}):
            for p in coarse:
                cand = quantize(fields[i], p)
                if not cand.is_zero:
                    score(cand, i)
        score(quantize(np.zeros_like(fields[0]), first), -1)
        scored.sort(key=lambda t: t[:2])
        chosen = scored[:count]
        if count > 1:
            network = next((t for t in scored if 0 <= t[4] < network_fields), None)
            uniform = next((t for t in scored if not t[2].is_zero and t[2].is_uniform), None)
            zero = next(t for t in scored if t[2].is_zero)
            chosen += [t for t in (network, uniform, zero) if t is not None and all(t is not c for c in chosen)]
        return [(c, p) for _, _, c, p, _ in chosen]

    def _motion_fields(self, cur: np.ndarray, ref: np.ndarray) -> tuple[list[np.ndarray], int, np.ndarray | None]:
        """Candidate float fields [2, H/4, W/4] in pixels (see motion_candidates), how many
        of them (the first ones) are the network's own estimate, and with block search the
        affine fit's coefficients (motion_search.affine_fit)."""
        def estimate(r: np.ndarray) -> np.ndarray:
            return self._run("motion_estimation", ref=r[None].astype(np.float32, copy=False), cur=cur[None])["flow"][0]

        flow = estimate(ref)
        fields = [f for f in (block_mean(flow, b) for b in MOTION_BLOCKS) if f is not None]
        fields.append(np.broadcast_to(np.median(flow, axis=(1, 2))[:, None, None], flow.shape))
        network = len(fields)
        if not self.block_search:
            return fields, network, None
        affine = motion_search.affine_fit(flow, self.visible_size)
        fields.append(motion_search.affine_ramp(affine, flow.shape[1:]))
        cur_y, ref_y = motion_search.luma(cur), motion_search.luma(ref)
        affine = motion_search.refine_affine(cur_y, ref_y, affine, self.visible_size)  # the parametric one
        g = motion_search.global_translation(cur_y, ref_y)
        gi = np.rint(g).astype(int)
        motions = [np.zeros(2, np.float32)] + ([g] if gi.any() else [])
        for m in motion_search.dominant_motions(cur_y, ref_y):
            if all(np.any(np.rint(k) != m) for k in motions):
                motions.append(np.asarray(m, np.float32))
        if len(motions) > 1:  # objects moving differently, e.g. a vehicle over static ground
            grid = flow.shape[1:]
            fields.append(motion_search.segmented_field(cur_y, ref_y, motions, grid, self.visible_size))
        if not gi.any():  # no whole-frame motion the network could have missed
            return fields, network, affine
        fields.append(np.broadcast_to(g[:, None, None], flow.shape))
        fine = motion_search.refine_translation(cur_y, ref_y, g, self.visible_size)
        fields.append(np.broadcast_to(fine[:, None, None], flow.shape))
        shifted = estimate(motion_search.shift_reference(ref, int(gi[0]), int(gi[1])))
        shifted = shifted + gi[:, None, None].astype(np.float32)
        fields += [f for f in (block_mean(shifted, b) for b in MOTION_BLOCKS) if f is not None]
        fields.append(motion_search.block_field(cur_y, ref_y, g, flow.shape[1:]))
        return fields, network, affine

    def encode(self, cur: np.ndarray, ref: np.ndarray, quality: int,
               precision: MotionPrecision | int | None = None) -> tuple[bytes, np.ndarray]:
        """analyse + code with the motion field chosen by the real rate-distortion cost: the
        best `self.rd_candidates` fields by estimate are each coded in full, and the one of
        least lambda * MSE(recon) + bits/pixel is kept. With more than one candidate and a
        bundle that has the bicubic warp, the winner is coded again with it and kept if
        cheaper: bicubic keeps a sub-pixel pan sharp (training coffee pan -10 % BD-rate)
        but loses on noisy footage (Big Buck Bunny +7 %) with this bilinear-trained
        residual coder. (frame data, reconstruction)."""
        cur = cur.astype(np.float32, copy=False)
        best = None

        def consider(motion: CodedMotion, pred: np.ndarray) -> None:
            nonlocal best
            a = self.analyse_residual(PFrameAnalysis(cur=cur, motion=motion, pred=pred, quality=quality))
            data, recon, recodes = self._cheapest_residual(a)
            data = encode_motion(a.motion, self.num_slices) + data
            cost = self.rd_cost(cur, data, recon, quality)
            if best is None or cost < best[0]:
                best = (cost, data, recon, motion, recodes)

        for motion, pred in self.motion_candidates(cur, ref, quality, precision, count=self.rd_candidates):
            consider(motion, pred)
        chosen = best[3]
        if self.rd_candidates > 1 and CUBIC_GRAPH in self.runners and not chosen.is_zero:
            sharp = dataclasses.replace(chosen, cubic=True)
            consider(sharp, self.predict(ref, sharp))
        if best[4]:  # recodes (with z_search or refine_steps)
            head = encode_motion(best[3], self.num_slices)
            for recode in best[4]:
                data, recon = recode()
                cost = self.rd_cost(cur, head + data, recon, quality)
                if cost < best[0]:
                    best = (cost, head + data, recon, *best[3:])
        return best[1], best[2]

    def analyse_residual(self, a: PFrameAnalysis) -> PFrameAnalysis:
        """Backend half of residual coding against a.pred (left empty when the fast test skips it).

        With visible_size, a.cur's padding (rows and columns the decoder crops) becomes the
        prediction there first: the padded source is a replicated edge, the prediction moved
        content (a 640x272 frame is padded to 320 rows, 15 % of the area), and the residual
        coder would otherwise spend bits on pixels nobody sees."""
        a.cur = self.fill_padding(a.cur, a.pred)
        if self.skip == "always" or should_skip_residual(a.cur - a.pred):
            return a
        return self._analyse_latents(a)

    def _analyse_latents(self, a: PFrameAnalysis) -> PFrameAnalysis:
        """The residual graphs on a.cur against a.pred at a.quality: y, z_hat, mean."""
        gain, _ = self.gain_vectors(a.quality)
        r = self._run("residual_analysis", cur=a.cur[None], pred=a.pred[None], gain=gain)
        a.y = r["y"][0]
        a.z_hat = np.rint(r["z"][0]).astype(np.int32)
        a.scale_index = None
        a.mean = self.residual_mean(a.z_hat, a.pred, a.quality)
        return a

    def distortion(self, cur: np.ndarray, x: np.ndarray) -> float:
        """Squared error over the visible area (the decoder crops the padding) per padded
        sample: the unit of `lambda * distortion + bits / padded pixels` costs."""
        h, w = self.visible_size or cur.shape[1:]
        return float(np.square(cur[:, :h, :w] - x[:, :h, :w], dtype=np.float64).sum()) / cur.size

    def sad(self, cur: np.ndarray, x: np.ndarray) -> float:
        """Sum of absolute differences over the visible area, RGB channels, in 0..255 units."""
        h, w = self.visible_size or cur.shape[1:]
        return 255.0 * float(np.abs(cur[:, :h, :w] - x[:, :h, :w], dtype=np.float64).sum())

    def fill_padding(self, cur: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """cur with its padding (beyond visible_size) taken from pred; cur itself when unpadded."""
        if self.visible_size is None:
            return cur
        h, w = self.visible_size
        if cur.shape[1] <= h and cur.shape[2] <= w:
            return cur
        out = cur.copy()
        out[:, h:, :] = pred[:, h:, :]
        out[:, :h, w:] = pred[:, :h, w:]
        return out

    def code(self, a: PFrameAnalysis) -> tuple[bytes, np.ndarray]:
        """Entropy code; decide skip by rate-distortion. Returns (frame data, reconstruction)."""
        data, recon = self.code_residual(a)
        return encode_motion(a.motion, self.num_slices) + data, recon

    def code_residual(self, a: PFrameAnalysis) -> tuple[bytes, np.ndarray]:
        """Residual flag and payloads, the cheapest (lambda*MSE + bits) of: skipped, coded,
        (with aq_strength) coded with motion-adaptive quantisation and (with half_residual)
        coded at half size: (bytes, reconstruction)."""
        return self._cheapest_residual(a)[:2]

    def code_residual_improved(self, a: PFrameAnalysis) -> tuple[bytes, np.ndarray]:
        """code_residual's choice, then coded again improved (hyper-latent search, latent
        refinement, where configured) where that costs less at a.quality."""
        data, recon, recodes = self._cheapest_residual(a)
        best = (self.rd_cost(a.cur, data, recon, a.quality), data, recon)
        for recode in recodes:
            d, r = recode()
            cost = self.rd_cost(a.cur, d, r, a.quality)
            if cost < best[0]:
                best = (cost, d, r)
        return best[1], best[2]

    def _cheapest_residual(self, a: PFrameAnalysis) -> tuple[bytes, np.ndarray, list[Callable]]:
        """code_residual's choice, and calls that code it again improved (_improved; none where
        there is no plain-quantised latent to improve: skipped, motion AQ): with z_search its
        hyper latent searched; with refine_steps its latent refined (and searched), and for a
        reduced-size choice the full-size coding refined too (refinement lowers its cost
        more). The caller keeps whichever costs least."""
        skip = bytes((RESIDUAL_SKIPPED,))
        if a.y is None:
            return skip, a.pred, []

        def cost(option: tuple) -> float:
            return self.rd_cost(a.cur, option[0], option[1], a.quality)

        options = [(skip, a.pred, None)] if self.skip == "auto" else []
        plain = (*self.code_latents(a, 0), lambda search, refine: self.code_latents(self._improved(a, search, refine), 0))
        options.append(plain)
        if self.aq_strength:
            levels = motion_aq.block_levels(a.motion, self.aq_strength)
            if levels.any():
                options.append((*self.code_latents(a, self.aq_strength, levels), None))
        if self.half_residual:
            # the plain per-frame choice: weighting the half size's distortion 2x (it is what later
            # frames predict from) measured worse, -1.5 % instead of -6.3 % on the training clips
            for halvings, steps in REDUCED_RESIDUAL_QUALITY_STEPS.items():
                small = half_picture(a.cur, halvings), half_picture(a.pred, halvings)  # shared by the steps
                for q in sorted({min(100, a.quality + step) for step in steps}):
                    options.append((*self.code_half(a, q, *small, halvings=halvings),
                                    functools.partial(self.code_half, a, q, *small, halvings=halvings)))
        best = min(options, key=cost)  # ties go to the first: skip, plain, motion AQ, half, quarter
        recodes = []
        if best[2] is not None and self.z_search:
            recodes.append(functools.partial(best[2], search=True, refine=False))
        if best[2] is not None and self.refine_steps:
            recodes.append(functools.partial(best[2], search=self.z_search, refine=True))
            if best[0][0] in HALVINGS_OF_FLAG:
                recodes.append(functools.partial(plain[2], search=self.z_search, refine=True))
        return best[0], best[1], recodes

    def _improved(self, a: PFrameAnalysis, search: bool, refine: bool, halvings: int = 0,
                  frame_quality: int | None = None) -> PFrameAnalysis:
        """a with its latent refined (refine, with refine_steps) and then its hyper latent
        searched (search). A picture reduced ``halvings`` times (flags 3/4) for a frame of
        ``frame_quality`` is refined toward the frame's cost: its visible part as reduced,
        each of its pixels' error counted 4^halvings times (the upsampled error covers that
        many), at the frame's lambda rather than its own higher quality's."""
        if refine and self.refine_steps:
            h, w = self.visible_size or a.cur.shape[1:]
            visible = (min(-(-h >> halvings), a.cur.shape[1]), min(-(-w >> halvings), a.cur.shape[2]))
            weight = latent_refine.visible_weight(a.cur.shape[1:], visible)
            q = a.quality if frame_quality is None else frame_quality
            lag = self.lagrangian(q) * 4**halvings * latent_refine.RESIDUAL_DISTORTION_WEIGHT
            a = latent_refine.refine_residual(self, a, weight, self.refine_steps, latent_refine.RESIDUAL_STEP_SIZE,
                                              lag)
        return self._searched(a) if search else a

    def _searched(self, a: PFrameAnalysis) -> PFrameAnalysis:
        """a with the hyper latent hyper_search finds (mean and scale index to match)."""
        y_rate = hyper_search.gaussian_y_rate(a.y, functools.partial(self._hyper_batch, a), entropy.gaussian_table())
        z, before, after = hyper_search.search_z(a.z_hat, y_rate, self.z_table)
        if after >= before:
            return a
        return dataclasses.replace(a, z_hat=z, mean=self.residual_mean(z, a.pred, a.quality), scale_index=None)

    def _hyper_batch(self, a: PFrameAnalysis, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hyper_search.HyperModel for a's residual: one graph run per z (TensorRT profiles
        take batch 1)."""
        return np.stack([self.residual_mean(zi, a.pred, a.quality) for zi in z]), self.scale_head(z)

    def code_half(self, a: PFrameAnalysis, quality: int, cur_half: np.ndarray | None = None,
                  pred_half: np.ndarray | None = None, halvings: int = 1,
                  search: bool = False, refine: bool = False) -> tuple[bytes, np.ndarray]:
        """The residual coded at half (flag 3) or quarter (flag 4, halvings=2) width and
        height, then the quality byte: current picture and prediction downsampled
        (half_picture, computed here unless given), the decoded reduced picture's difference
        to the reduced prediction upsampled onto the full prediction. search, refine: with
        the hyper latent searched, the latent refined (_improved)."""
        cur_half = half_picture(a.cur, halvings) if cur_half is None else cur_half
        pred_half = half_picture(a.pred, halvings) if pred_half is None else pred_half
        half = self._analyse_latents(PFrameAnalysis(cur=cur_half, motion=a.motion, pred=pred_half, quality=quality))
        if search or refine:
            half = self._improved(half, search, refine, halvings, a.quality)
        data, x_half = self.code_latents(half, 0)  # flag 1 and the payloads, decoded at the reduced size
        return (bytes((REDUCED_RESIDUAL_FLAGS[halvings], quality)) + data[1:],
                add_half_residual(a.pred, pred_half, x_half, halvings))

    def code_latents(self, a: PFrameAnalysis, strength: int,
                     levels: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
        """The coded residual (flag, payloads) with motion-adaptive quantisation at this
        strength (0 = plain; levels: motion_aq.block_levels if already known):
        (bytes, reconstruction)."""
        if a.scale_index is None:  # shared by the plain and the motion-AQ coding
            a.scale_index = self.scale_head(a.z_hat)
        index = a.scale_index
        if strength:
            if levels is None:
                levels = motion_aq.block_levels(a.motion, strength)
            step = motion_aq.step_map(levels)
            symbols = np.rint((a.y - a.mean) / step).astype(np.int32)
            index = motion_aq.shift_index(index, levels)
            head = bytes((RESIDUAL_CODED_MOTION_AQ, strength))
        else:
            step = None
            symbols = np.rint(a.y - a.mean).astype(np.int32)
            head = bytes((RESIDUAL_CODED,))
        # z and y in one stream (a chain: one header, one flush) where y is one slice anyway
        payload = entropy.encode_parts([(a.z_hat, None, self.z_table), (symbols, index, entropy.gaussian_table())],
                                       self.num_slices, chain=entropy.one_slice(symbols.shape, self.num_slices))
        return head + payload, self._synthesise_residual(symbols, a.mean, a.pred, a.quality, step)

    # -- decoder -------------------------------------------------------------------
    def parse(self, data: bytes | memoryview, latent_hw: tuple[int, int], where: str = "P-frame") -> ParsedPFrame:
        """Entropy-decode frame data. latent_hw is the frame header's (H/16, W/16)."""
        lh, lw = latent_hw
        if lh <= 0 or lw <= 0 or lh % 2 or lw % 2:
            raise ZVC69FormatError(f"{where}: latent {lh}x{lw} is not a positive multiple of 2")
        view = memoryview(data)
        motion, pos = decode_motion(view, 0, (lh * 4, lw * 4), where)
        return self.parse_residual(view, pos, latent_hw, where, motion)

    def parse_residual(self, view: memoryview, pos: int, latent_hw: tuple[int, int], where: str,
                       motion: CodedMotion) -> ParsedPFrame:
        """The residual flag at view[pos] and what follows, to the end of the frame data;
        ``motion`` (decoded before it) sets the steps of motion-adaptive quantisation."""
        lh, lw = latent_hw
        if pos >= len(view):
            raise ZVC69FormatError(f"{where}: residual flag missing after {pos} bytes of motion data")
        flag = view[pos]
        pos += 1
        if flag == RESIDUAL_SKIPPED:
            if pos != len(view):
                raise ZVC69FormatError(f"{where}: {len(view) - pos} stray bytes after a skipped residual")
            return ParsedPFrame(motion, False)
        levels = half_quality = None
        halvings = HALVINGS_OF_FLAG.get(flag, 0)
        if halvings:
            if pos >= len(view) or view[pos] > 100:
                raise ZVC69FormatError(f"{where}: {('half', 'quarter')[halvings - 1]}-size residual quality "
                                       + ("byte missing" if pos >= len(view) else f"{view[pos]} is outside 0..100"))
            half_quality = view[pos]
            pos += 1
            lh, lw = half_latent_size(latent_hw, halvings)
        elif flag == RESIDUAL_CODED_MOTION_AQ:
            strength = view[pos] if pos < len(view) else 0
            if not 1 <= strength <= motion_aq.MAX_STRENGTH:
                raise ZVC69FormatError(f"{where}: motion-AQ strength {strength} is not 1..{motion_aq.MAX_STRENGTH}"
                                       + (" (byte missing)" if pos >= len(view) else ""))
            pos += 1
            levels = motion_aq.block_levels(motion, strength)
        elif flag != RESIDUAL_CODED:
            raise ZVC69FormatError(f"{where}: residual flag {flag} is not 0 (skipped), 1 (coded), "
                                   "2 (coded, motion-adaptive quantisation), 3 (coded at half size) "
                                   "or 4 (coded at quarter size)")
        try:  # z and y, as one chain or two payloads, to the end of the frame data
            parts = entropy.PartsReader(view[pos:])
            z_hat = parts.decode(self.z_table, (self.Nz, lh // 2, lw // 2))
            index = self.scale_head(z_hat)
            if levels is not None:
                index = motion_aq.shift_index(index, levels)
            symbols = parts.decode(entropy.gaussian_table(), index.shape, index)
            parts.finish()
        except EntropyDecodeError as exc:
            raise EntropyDecodeError(f"{where}: residual payload: {exc}") from exc
        step = None if levels is None else motion_aq.step_map(levels)
        return ParsedPFrame(motion, True, symbols, z_hat, step, half_quality, halvings)

    def synthesise(self, parsed: ParsedPFrame, ref: np.ndarray, quality: int) -> np.ndarray:
        """Reconstruction float32 [3, H, W] from the decoded reference."""
        _, h, w = parsed.motion.vectors.shape
        if ref.shape != (3, h * 4, w * 4):
            raise InputError(f"P-frame: reference is {list(ref.shape)}, the frame is [3, {h * 4}, {w * 4}]")
        return self.reconstruct(parsed, self.predict(ref, parsed.motion), quality)

    def reconstruct(self, parsed: ParsedPFrame, pred: np.ndarray, quality: int) -> np.ndarray:
        if not parsed.residual_coded:
            return pred
        if parsed.half_quality is not None:
            pred_half = half_picture(pred, parsed.halvings)
            mean = self.residual_mean(parsed.z_hat, pred_half, parsed.half_quality)
            x_half = self._synthesise_residual(parsed.symbols, mean, pred_half, parsed.half_quality)
            return add_half_residual(pred, pred_half, x_half, parsed.halvings)
        mean = self.residual_mean(parsed.z_hat, pred, quality)
        return self._synthesise_residual(parsed.symbols, mean, pred, quality, parsed.step)

    def decompress(self, data: bytes | memoryview, ref: np.ndarray, latent_hw: tuple[int, int],
                   quality: int) -> np.ndarray:
        return self.synthesise(self.parse(data, latent_hw), ref, quality)

    def _synthesise_residual(self, symbols: np.ndarray, mean: np.ndarray, pred: np.ndarray,
                             quality: int, step: np.ndarray | None = None) -> np.ndarray:
        _, inv_gain = self.gain_vectors(quality)
        q = symbols.astype(np.float32)
        y_hat = (q + mean if step is None else q * step + mean)[None]
        return self._run("residual_synthesis", y_hat=y_hat, inv_gain=inv_gain, pred=pred[None])["x_hat"][0]
