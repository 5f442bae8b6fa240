"""Encoder: Frames in, Packets out (send_frame / receive_packet, like libavcodec).

It is also the StagedEncoder the pipelined scheduler drives:

    preprocess (CPU: YUV420 -> RGB, pad)  ->  infer (backend graphs, in frame order)
        ->  entropy_code (CPU: integer scale head, numba rANS)  ->  Packet

so the sequential and pipelined paths run exactly the same code.

Rate control (zvc69_rt/codec/ratecontrol.py) picks each frame's quality in infer, from the
sizes of the frames before it. With a bitrate target (vbr/cbr) the I-frames are therefore
entropy coded in infer too (P-frames always are), so every frame's size is reported before
the next frame's quality is chosen, identically in the sequential and pipelined paths; the
price is that the entropy stage no longer runs in parallel with inference for those streams.
CQP (the default) keeps the parallel entropy stage and codes exactly as before.

B-frames (``bframes`` > 0, closed GOPs): in each GOP, anchors (I at position 0, P at every
(bframes+1)-th position and at the GOP's last frame) are coded as they arrive; the frames
between two anchors wait in infer and are coded as B-frames right after the later anchor,
from the two anchors' reconstructions. Packets come out in coding order (I0 P3 B1 B2 ...),
each with its display pts; infer/entropy_code then yield no packet for a waiting frame
and the anchor's packet followed by its B-frames' for an anchor. At the end of the stream
flush() codes the last waiting frame as a P anchor and the others as B-frames.

With ``b_pyramid`` the middle waiting frame is coded first, as a reference B-frame (BBi)
from the two anchors, and each half then predicts from it and the anchor on its side,
recursively (I0 P4 BBi2 B1 B3): every B-frame has a nearer reference on both sides. The
decoder finds the same references from the pts alone (nearest on either side).
"""

from __future__ import annotations

import collections
import warnings
from dataclasses import dataclass

import numpy as np

from zvc69_rt.bitstream.frame_header import SIZE as FRAME_RECORD_HEADER_BYTES
from zvc69_rt.bitstream.frame_header import FrameFlags, FrameType
from zvc69_rt.codec import latent_refine, propagation, residual_layer
from zvc69_rt.codec.api import EncoderConfig, Packet
from zvc69_rt.codec.bidir import BFrameCodec
from zvc69_rt.codec.colorspace import coding_colorspace
from zvc69_rt.codec.inter import ENCODER_GRAPHS as P_ENCODER_GRAPHS
from zvc69_rt.codec.inter import RD_CANDIDATES, PFrameCodec
from zvc69_rt.codec.intra import IntraCodec, IntraLatents
from zvc69_rt.codec.ratecontrol import FirstPass, make_rate_control
from zvc69_rt.codec.reduced_res import (
    REDUCED_RES_QUALITY_STEPS,
    downsample_2x,
    reduced_latent_size,
    upsample_to,
)
from zvc69_rt.codec.runtime import GRAPHS, load_runners
from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.color import yuv420_to_rgb
from zvc69_rt.io.padding import crop, pad_to_multiple
from zvc69_rt.models.bundle import ModelBundle
from zvc69_rt.pipeline.config import PipelineConfig


@dataclass
class _Work:
    pts: int
    frame_type: int = FrameType.I
    x: np.ndarray | None = None
    latents: IntraLatents | None = None
    data: bytes | None = None  # P-frames are entropy coded in infer (the next frame needs their recon)
    quality: int | None = None  # chosen by the rate control in infer (None: config.quality)
    index: int = 0  # display position in the stream
    waiting: bool = False  # a B-frame waiting for its future anchor: no packet of its own yet
    followers: list[Packet] | None = None  # B-frames coded right after this anchor
    flags: int = 0  # FrameFlags of the coded frame (REDUCED_RES)


def _effort(pipeline_config: PipelineConfig | None) -> int:
    """Motion fields coded in full per P-frame: RD_CANDIDATES at full effort, a preset's own."""
    return getattr(pipeline_config, "motion_candidates", None) or RD_CANDIDATES


def encoder_graphs(config: EncoderConfig, bundle: ModelBundle) -> tuple[str, ...]:
    """The graphs an Encoder with this config runs (for callers that load and share runners,
    such as the service): intra, P/B with a GOP, the I-frame and P residual gradients at full
    effort where asked for and present."""
    preset = PipelineConfig.preset(config.preset) if config.preset else None
    inter = config.gop > 1 and "inter" in bundle.manifest
    full, present = _effort(preset) > 1, bundle.manifest.get("graphs", {})
    graphs = GRAPHS + (P_ENCODER_GRAPHS if inter else ())
    if config.intra_residual and full and "inter" in bundle.manifest:
        graphs += tuple(g for g in residual_layer.GRAPHS if g not in graphs)
    for steps, graph in ((config.refine_steps or config.anneal_steps, latent_refine.GRAPH),
                         (config.p_refine_steps if inter else 0, latent_refine.RESIDUAL_GRAPH)):
        graphs += (graph,) if steps and full and graph in present else ()
    return graphs


@dataclass
class IntraChoice:
    """One I-frame as coded: at full size, or at half size (REDUCED_RES) and a higher quality."""

    data: bytes
    recon: np.ndarray  # what the decoder reconstructs, padded [3, Hp, Wp]
    flags: int
    quality: int
    cost: float  # lambda*MSE + bits per pixel at the frame's quality (Encoder._intra_cost)


class Encoder:
    def __init__(self, config: EncoderConfig, bundle: ModelBundle | None = None, runners: dict | None = None,
                 adaptive_intra: bool | None = None, first_pass: FirstPass | None = None):
        """adaptive_intra: code a P-frame as an I-frame when that is cheaper; None = on for
        low-delay GOPs at full motion-search effort (not in the realtime presets).
        first_pass: the sizes a first encode of the same frames measured
        (``rate_control.first_pass()`` of that encoder), for two-pass vbr."""
        config.validate()
        self.config = config
        self.bundle = bundle or ModelBundle.load(config.model)
        self.has_inter = "inter" in self.bundle.manifest
        self.gop = config.gop
        if self.bundle.single_rate and config.quality != EncoderConfig.quality:
            warnings.warn(
                f"model bundle {self.bundle.folder} is single-rate: quality {config.quality} does not change the "
                "rate or the reconstruction", stacklevel=2,
            )
        if config.gop > 1 and not self.has_inter:
            warnings.warn(
                "this model bundle has no inter-frame (P) graphs; coding every frame as an I-frame (gop 1)",
                stacklevel=2,
            )
            self.gop = 1
        self.pipeline_config = PipelineConfig.preset(config.preset) if config.preset else None
        effort = _effort(self.pipeline_config)
        refine_steps = config.refine_steps if effort > 1 else 0
        if runners is None:
            runners, self.backend_name = load_runners(self.bundle, config.backend, config.precision,
                                                      encoder_graphs(config, self.bundle))
        else:
            self.backend_name = "injected"
        self.intra = IntraCodec(self.bundle, runners)
        search = self.pipeline_config.block_search if self.pipeline_config else True
        self.rate_control = make_rate_control(config, gop=self.gop, first_pass=first_pass)
        # reduced resolution, tried at full effort: I-frames at half size with a lambda to choose
        # by, in CQP only (the vbr/cbr controllers model an I-frame's bits from its quality: with
        # half-size I-frames in the mix they converged too slowly, -27 % on a 12-frame all-intra
        # clip); P/B residuals at half size in every mode (the P model's fit absorbs them)
        self.reduced_res = (config.reduced_res and effort > 1 and not self.rate_control.needs_bits
                            and self.intra.lagrangian(0) is not None)

        def p_codec() -> PFrameCodec:
            return PFrameCodec(self.bundle, runners, rd_candidates=effort, aq_strength=config.motion_aq,
                               block_search=search, visible_size=(config.height, config.width),
                               half_residual=config.reduced_res and effort > 1,
                               z_search=config.z_search and effort > 1,
                               refine_steps=config.p_refine_steps if effort > 1 else 0)

        self.inter = p_codec() if self.gop > 1 else None
        # I-frame residual layers (codec/residual_layer.py): a CQP tool at full effort, like
        # reduced_res (the vbr/cbr controllers model an I-frame's bits from its quality)
        self.layer_codec = None  # bundles without P graphs, or injected runners without them: none
        if (config.intra_residual and effort > 1 and not self.rate_control.needs_bits and self.has_inter
                and all(g in runners for g in residual_layer.GRAPHS)):
            self.layer_codec = self.inter or p_codec()
        if self.inter is not None and config.p_refine_steps and effort > 1 and self.inter.gradient is None:
            warnings.warn(
                f"model bundle {self.bundle.folder} has no {latent_refine.RESIDUAL_GRAPH} graph: p_refine_steps "
                f"does nothing; add it with python -m onnx_export.synthesis_gradient P_CHECKPOINT --into BUNDLE --inter "
                "(docs/INTER.md \"Residual refinement\")", stacklevel=2,
            )
        self.z_search = config.z_search and effort > 1  # I-frames: code_intra searches its choice
        # I-frames: code_intra refines its choice's latent (bundles with the gradient graph)
        self.refine_steps = refine_steps if self.intra.gradient is not None else 0
        self.anneal_steps = config.anneal_steps if effort > 1 and self.intra.gradient is not None else 0
        self.bframes = config.bframes if self.gop > 1 else 0
        # P-frames that would cost more than an I-frame become I-frames (low delay, full effort)
        auto = self.inter is not None and not self.bframes and self.inter.rd_candidates > 1
        self.adaptive_intra = auto if adaptive_intra is None else bool(adaptive_intra) and self.inter is not None
        self.bidir = BFrameCodec(self.inter) if self.bframes else None
        # P-frame qualities weighted by what they pass on (codec.propagation): measured for
        # low-delay CQP at full effort; needs the I-frame's size, known where it is coded in infer
        self.propagation = auto and not self.rate_control.needs_bits
        self._anchor_bytes: dict[FrameType, int | None] = {FrameType.I: None, FrameType.P: None}
        self._waiting: list[_Work] = []  # frames between two anchors, in display order
        self._reference: np.ndarray | None = None  # decoder-side reconstruction (closed loop)
        self._position = 0  # frames sent to infer, for the GOP structure
        self._last_pts: int | None = None
        self.matrix, self.range = coding_colorspace(config.width, config.height)
        self._queue: collections.deque[Packet] = collections.deque()
        self.frames_in = 0

    @property
    def padded_size(self) -> tuple[int, int]:
        a = self.bundle.alignment
        return (-(-self.config.height // a) * a, -(-self.config.width // a) * a)

    @property
    def latent_size(self) -> tuple[int, int]:
        h, w = self.padded_size
        return h // 16, w // 16

    @property
    def reduced_latent_size(self) -> tuple[int, int]:
        """Latent size of a REDUCED_RES I-frame (the half picture, padded to the alignment)."""
        return reduced_latent_size(self.config.height, self.config.width, self.bundle.alignment)

    def file_header(self, total_frames: int = 0):
        from zvc69_rt.codec.headers import make_file_header

        return make_file_header(self.config, self.bundle, gop=self.gop, total_frames=total_frames)

    # -- staged protocol -------------------------------------------------------------
    def preprocess(self, frame: Frame) -> _Work:
        frame.validate()
        if (frame.width, frame.height) != (self.config.width, self.config.height):
            raise InputError(
                f"frame pts={frame.pts} is {frame.width}x{frame.height}, the stream is "
                f"{self.config.width}x{self.config.height}; scale it first (e.g. ffmpeg -vf scale=W:H)"
            )
        rgb = yuv420_to_rgb(frame, matrix=self.matrix, range=self.range)
        x, _ = pad_to_multiple(rgb, self.bundle.alignment)  # edge: what motion estimation expects
        return _Work(pts=frame.pts, x=x)

    def is_anchor(self, index: int) -> bool:
        """I/P (coded on arrival) rather than B (waits for the next anchor)."""
        pos = index % self.gop
        return not self.bframes or pos % (self.bframes + 1) == 0 or pos == self.gop - 1

    def infer(self, work: _Work) -> _Work:
        """Called strictly in frame order: P-frames predict from the previous anchor's
        reconstruction, B-frames from the anchors on either side."""
        index = work.index = self._position
        if self.bframes and self._last_pts is not None and work.pts <= self._last_pts:
            # the decoder finds a B-frame's references and the display order by pts
            raise InputError(f"frame {index}: pts {work.pts} after pts {self._last_pts}; streams with B-frames "
                             "need strictly increasing pts (renumber the frames or use --bframes 0)")
        self._last_pts = work.pts
        self._position += 1
        if not self.is_anchor(index):
            work.waiting = True
            self._waiting.append(work)
            return work
        past = self._reference
        self._code_anchor(work, index)
        if self._waiting:
            work.followers = self._code_between(self._waiting, past, self._reference)
            self._waiting = []
        return work

    def _code_between(self, waiting: list[_Work], ref0: np.ndarray, ref1: np.ndarray) -> list[Packet]:
        """The frames between two references as B-frames, in coding order; with b_pyramid the
        middle one first, as a BBi reference for the halves on either side of it."""
        if not waiting:
            return []
        if not self.config.b_pyramid or len(waiting) == 1:
            return [self._code_b(w, ref0, ref1)[0] for w in waiting]
        mid = len(waiting) // 2
        packet, recon = self._code_b(waiting[mid], ref0, ref1, reference=True)
        return [packet, *self._code_between(waiting[:mid], ref0, recon),
                *self._code_between(waiting[mid + 1 :], recon, ref1)]

    def _code_b(self, work: _Work, ref0: np.ndarray, ref1: np.ndarray,
                reference: bool = False) -> tuple[Packet, np.ndarray]:
        rc = self.rate_control
        q = rc.quality_for(work.index, FrameType.P)  # the controller models B-frames as P-frames
        if not reference:  # nothing predicts from it: its quality is worth less
            q = max(0, q - self.config.b_quality_offset)
        data, recon = self.bidir.encode(work.x, ref0, ref1, q)
        if rc.needs_bits:
            rc.update(work.index, FrameType.P, self._record_bits(data))
        work.x = None
        h, w = self.latent_size
        ftype = FrameType.BBI if reference else FrameType.B
        return Packet(frame_type=ftype, pts=work.pts, quality=q, latent_height=h, latent_width=w, data=data), recon

    def _code_anchor(self, work: _Work, index: int) -> None:
        keyframe = index % self.gop == 0
        work.frame_type = FrameType.I if keyframe else FrameType.P
        rc = self.rate_control
        q = work.quality = rc.quality_for(index, work.frame_type)
        if keyframe and (self.reduced_res or self.layer_codec):  # the choice needs the bits: entropy coded here
            choice = self.code_intra(work.x, q)
            work.data, work.flags, work.quality = choice.data, choice.flags, choice.quality
            self._reference = choice.recon
        elif keyframe and rc.needs_bits:  # the next frame's quality depends on this frame's size
            picture = self._intra_picture(work.x)
            work.data, symbols, mean = self.intra.code(self.intra.analyse(picture, q))
            # a two-pass controller may ask for the keyframe again at a better-sized quality
            while (revised := rc.revise(index, work.frame_type, self._record_bits(work.data))) is not None:
                q = work.quality = revised
                work.data, symbols, mean = self.intra.code(self.intra.analyse(picture, q))
            if self.inter is not None:  # the next P-frame predicts from what the decoder will see
                self._reference = self.intra.synthesise(symbols, mean, q)
        elif keyframe:
            work.latents = self.intra.analyse(self._intra_picture(work.x), q)
            if self.inter is not None:
                self._reference = self.intra.synthesise(*self.intra.quantise(work.latents), q)
        else:
            if self.propagation:
                q = work.quality = propagation.weighted_quality(q, self._propagation_weight(index),
                                                                self.inter.lagrangian)
            work.data, self._reference = self.inter.encode(work.x, self._reference, q)
            if self.adaptive_intra:
                self._intra_if_cheaper(work, q)
        if work.frame_type == FrameType.I:
            self._anchor_bytes = {FrameType.I: None if work.data is None else len(work.data), FrameType.P: None}
        else:
            self._anchor_bytes[FrameType.P] = len(work.data)
        if rc.needs_bits:
            rc.update(index, work.frame_type, self._record_bits(work.data))
        work.x = None

    @staticmethod
    def _record_bits(data: bytes) -> int:
        """A frame's size as rate control counts it: its data and its frame record header."""
        return (len(data) + FRAME_RECORD_HEADER_BYTES) * 8

    def _propagation_weight(self, index: int) -> float:
        i_bytes = self._anchor_bytes[FrameType.I]
        if not i_bytes:  # before the I-frame's size is known (or where it is coded later)
            return 1.0
        fraction = propagation.inherited_fraction(i_bytes, self._anchor_bytes[FrameType.P])
        return propagation.distortion_weight(self.gop - index % self.gop, self.gop, fraction)

    def _intra_picture(self, x: np.ndarray) -> np.ndarray:
        """The edge-padded picture re-padded as EncoderConfig.padding says, for intra coding.
        P/B-frames keep edge padding: replicated rows are invariant to vertical motion, so
        motion estimation and compensation see the padding move with the picture (smooth
        padding for every frame: IPPP held-out +1.4 %, docs/INTER.md "Results (session 8)")."""
        if self.config.padding == "edge":
            return x
        return pad_to_multiple(crop(x, (self.config.height, self.config.width)), self.bundle.alignment,
                               self.config.padding)[0]

    def _intra_cost(self, x: np.ndarray, data: bytes, recon: np.ndarray, q: int) -> float:
        """lambda*MSE + bits per pixel over the visible picture (the decoder crops the padding)."""
        h, w = self.config.height, self.config.width
        mse = float(np.mean(np.square(x[:, :h, :w] - recon[:, :h, :w], dtype=np.float64)))
        return self.intra.lagrangian(q) * mse + 8 * len(data) / (h * w)

    def code_intra(self, x: np.ndarray, q: int, beat: float | None = None, search: bool = True) -> IntraChoice:
        """An I-frame from the edge-padded picture ``x`` [3, Hp, Wp]: at full size, or (with
        reduced_res) at half size and quality q+14/29/43 when that costs less at q's lambda.
        ``beat``: the cost the I-frame must undercut to be used; the half-size search is skipped
        when the full-size one costs over 2.5x that (the half-size cost has been >= 48 % of the
        full-size one on the clips' first frames). With refine_steps (and ``search``) each
        candidate's latent is refined before the choice (codec/latent_refine.py), with
        anneal_steps the choice's latent is then annealed (kept where that costs less); with
        z_search (and ``search``) the choice is coded again with a searched hyper latent
        (IntraCodec.search) where that costs less."""
        h, w = self.config.height, self.config.width
        refine = self.refine_steps and search
        picture = self._intra_picture(x)
        best, best_lat = self._intra_candidate(x, picture, (h, w), q, q, False, refine)
        source = picture, (h, w)
        full, reduced = best, None  # the best of each size, for the residual layer
        if self.reduced_res and not (beat is not None and best.cost > 2.5 * beat):
            small = downsample_2x(x[:, :h, :w])
            small_visible = small.shape[1:]
            small, _ = pad_to_multiple(small, self.bundle.alignment, self.config.padding)
            for q2 in sorted({min(100, q + step) for step in REDUCED_RES_QUALITY_STEPS}):
                choice, lat = self._intra_candidate(x, small, small_visible, q, q2, True, refine)
                reduced = choice if reduced is None or choice.cost < reduced.cost else reduced
                if choice.cost < best.cost:
                    best, best_lat, source = choice, lat, (small, small_visible)
        if self.anneal_steps and search:
            weight = latent_refine.visible_weight(source[0].shape[1:], source[1])
            annealed = latent_refine.anneal(self.intra, source[0], best_lat, best.quality, weight, self.anneal_steps)
            choice = self._intra_choice(x, annealed, q, best.quality, reduced=bool(best.flags))
            if choice.cost < best.cost:
                best, best_lat = choice, annealed
        if self.z_search and search:
            searched = self.intra.search(best_lat)
            if searched is not best_lat:
                choice = self._intra_choice(x, searched, q, best.quality, reduced=bool(best.flags))
                best = choice if choice.cost < best.cost else best
        if self.layer_codec is not None and search:
            # the layer pays most over a half-size picture (it adds the detail the half size
            # lacks), so the best base of the other size is tried under a layer too
            other = full if best.flags & FrameFlags.REDUCED_RES else reduced
            best = self._with_residual_layer(x, best, [b for b in (best, other) if b is not None], q)
        return best

    def _with_residual_layer(self, x: np.ndarray, best: IntraChoice, bases: list[IntraChoice],
                             q: int) -> IntraChoice:
        """The cheapest at q's lambda of best and each base with a residual layer at q
        (+ residual_layer.QUALITY_STEPS) over it (codec/residual_layer.py)."""
        for base in bases:
            for step in residual_layer.QUALITY_STEPS:
                layer_q = min(100, max(0, q + step))
                coded = residual_layer.encode(self.layer_codec, x, base.recon, layer_q)
                if coded is None:
                    continue
                data = residual_layer.join(base.data, layer_q, coded[0])
                cost = self._intra_cost(x, data, coded[1], q)
                if cost < best.cost:
                    best = IntraChoice(data, coded[1], base.flags | int(FrameFlags.RESIDUAL_LAYER), base.quality,
                                       cost)
        return best

    def _intra_candidate(self, x: np.ndarray, picture: np.ndarray, visible: tuple[int, int], q: int, coded_q: int,
                         reduced: bool, refine: bool) -> tuple[IntraChoice, IntraLatents]:
        """``picture`` (x re-padded, or with reduced its half-size version; ``visible`` rows and
        columns of it are picture) analysed and coded at coded_q, priced at q's lambda; with
        refine, its latent also refined (codec/latent_refine.py) and the cheaper coding kept:
        (choice, its latents)."""
        lat = self.intra.analyse(picture, coded_q)
        choice = self._intra_choice(x, lat, q, coded_q, reduced)
        if refine:
            weight = latent_refine.visible_weight(picture.shape[1:], visible)
            refined = latent_refine.refine(self.intra, picture, lat, coded_q, weight, self.refine_steps)
            other = self._intra_choice(x, refined, q, coded_q, reduced)
            if other.cost < choice.cost:
                return other, refined
        return choice, lat

    def _intra_choice(self, x: np.ndarray, lat, q: int, coded_q: int, reduced: bool) -> IntraChoice:
        """lat (full size, or half size with reduced) coded at coded_q, priced at q's lambda."""
        data, symbols, mean = self.intra.code(lat)
        recon = self.intra.synthesise(symbols, mean, coded_q)
        if reduced:
            recon = upsample_to(recon, self.padded_size)
        flags = int(FrameFlags.REDUCED_RES) if reduced else 0
        return IntraChoice(data, recon, flags, coded_q, self._intra_cost(x, data, recon, q))

    def _intra_if_cheaper(self, work: _Work, q: int) -> None:
        """Code a P-frame as an I-frame when that costs less (lambda*MSE + bits): scene cuts,
        and whatever the P model does badly. Low-delay GOPs only: the I-frame is a new
        random-access point and P-frames go on predicting from it."""
        p_cost = self._intra_cost(work.x, work.data, self._reference, q)
        # no hyper-latent search: it would run for every P-frame, and the I-frame rarely wins
        choice = self.code_intra(work.x, q, beat=p_cost, search=False)
        if choice.cost < p_cost:
            work.frame_type, work.data, self._reference = FrameType.I, choice.data, choice.recon
            work.flags, work.quality = choice.flags, choice.quality

    def entropy_code(self, work: _Work) -> Packet | list[Packet]:
        """The frame's packet; with B-frames a list: [] while it waits, or the anchor's
        packet followed by its B-frames'."""
        if work.waiting:
            return []
        data = work.data if work.data is not None else self.intra.code(work.latents)[0]
        h, w = self.reduced_latent_size if work.flags & FrameFlags.REDUCED_RES else self.latent_size
        q = self.config.quality if work.quality is None else work.quality
        pkt = Packet(frame_type=work.frame_type, pts=work.pts, quality=q,
                     latent_height=h, latent_width=w, data=data, flags=work.flags)
        return pkt if work.followers is None else [pkt, *work.followers]

    def flush(self) -> list[Packet]:
        """End of stream: the last waiting frame becomes a P anchor, the others B-frames."""
        if not self._waiting:
            return []
        *between, last = self._waiting
        self._waiting = between
        past = self._reference
        last.waiting = False
        self._code_anchor(last, last.index)
        last.followers = self._code_between(between, past, self._reference)
        self._waiting = []
        return self.entropy_code(last)

    # -- libavcodec-style API --------------------------------------------------------
    def send_frame(self, frame: Frame | None) -> None:
        """Queue one frame (None = end of stream); packets become available in order."""
        if frame is None:
            self._queue.extend(self.flush())
            return
        out = self.entropy_code(self.infer(self.preprocess(frame)))
        self._queue.extend(out if isinstance(out, list) else (out,))
        self.frames_in += 1

    def receive_packet(self) -> Packet | None:
        return self._queue.popleft() if self._queue else None

    def encode(self, frame: Frame) -> list[Packet]:
        self.send_frame(frame)
        out = []
        while (p := self.receive_packet()) is not None:
            out.append(p)
        return out


def encode_to_stream(encoder: Encoder, frames, sink) -> list[Packet]:
    """Every frame through ``encoder`` and the end of stream, written to ``sink`` (a binary
    file object) as one complete .zvc file; returns the packets in file (coding) order."""
    from zvc69_rt.bitstream import StreamWriter

    writer = StreamWriter(sink, encoder.file_header())
    packets: list[Packet] = []
    for frame in frames:
        packets += encoder.encode(frame)
    encoder.send_frame(None)
    while (p := encoder.receive_packet()) is not None:
        packets.append(p)
    for p in packets:
        writer.write_packet(p)
    writer.close()
    return packets
