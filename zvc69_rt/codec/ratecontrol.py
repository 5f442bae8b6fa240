"""Rate control: which quality (0..100) each frame is coded at.

One concept, the ``RateControl`` protocol::

    q = rc.quality_for(frame_index, frame_type)   # before the frame's inference
    q = rc.revise(frame_index, frame_type, bits)  # keyframes: code again at q, or None: keep it
    rc.update(frame_index, frame_type, bits)      # once its coded size is final

Modes (``EncoderConfig.rate_control``):

``cqp``  constant quality (the default): every frame at ``config.quality``; ``update`` is a
         no-op, so streams are byte-identical to encoders without rate control.
``vbr``  target average bitrate: the per-frame budget is the target plus a share of the
         running surplus/deficit (spread over ~1 s of frames), and the quality meeting it is
         read off a bits-vs-quality model fitted online per frame type.
``cbr``  ``vbr`` plus a leaky-bucket buffer (VBV) of ``vbv_seconds`` of target bits: the
         budget steers the buffer back to half full and every frame's quality is capped so its
         predicted size cannot overflow the buffer (and floored against underflow where the
         buffer allows). Overflows (a frame that would stall a decoder reading at the target
         rate) and underflows (channel idle: a true CBR link would need stuffing) are counted.

P/B quality offset (``EncoderConfig.p_quality_offset``, default 16): every mode codes
P- and B-frames that many quality points below their GOP's I-frame (``q`` below is the
I-frame's quality). A reference's quality is inherited by every frame predicted from it, so
the I-frame is worth more bits than a P-frame at the same lambda. Chosen on training clips
(`zvc69 eval video --training-clips --variants p0:p_quality_offset=0`): offset 0 costs
+2.6 % BD-rate (PSNR-YUV) against 8 (session 3); with the session-6 encoder, whose motion
costs little, 12 and 16 beat 8 by 0.8 % and 2.9 %; docs/INTER.md "Tuning" has the tables.

There is no CRF mode: a "constant rate factor" would need a complexity measure the
decoder-free encoder does not have before inference, so constant quality is CQP only.

Model: ``log2(bits / pixel) = a_t + b_t * q`` per frame type ``t`` (I, P). The slope prior
``b0`` and intercept prior come from the shipped model (bits per pixel roughly double every
~45 quality points: -2.35 at q=0 to -0.15 at q=100 on bikes). Each observation enters an
exponentially forgotten least-squares fit with a ridge prior on the slope, so the intercept
follows the content within a frame or two while the slope stays sane with little quality
variation. P-frames without their own observations borrow the I-frame fit plus a fixed
log2 ratio. The fit predicts the geometric mean of the sizes while budgets add bits, so each
prediction is scaled by the forgotten ratio of actual to predicted bits (``_MeanRatio``);
scattered sizes (a clip whose every other frame repeats the last) were under-priced by up to
1.4x, and bikes.mp4 at 300k landed +15.7 % instead of +6.8 % (docs/INTER.md "Rate control").

Quality falls as fast as the budget needs (``max_step`` once the fit has three frames) but
rises at most ``MAX_RISE`` points per frame: one cheap frame is not a cheap clip. The one
exception is frame 1, which may go wherever the size of frame 0, the keyframe the priors
alone priced, says (session 14: the priors are 0.5-1.2 in log2 bits too high on bikes).
Frame 0 itself may be coded twice (``revise``, session 15): its trial size enters the fit
and, where the re-solved quality differs, the encoder codes it again at that quality.

Two passes (``TwoPassControl``, ``zvc69 encode --passes 2|3``): where the whole clip can be
read twice, a first encode's per-frame sizes plan the second, which is what short clips
need (a 16-frame GOP-16 clip is mostly its keyframe, priced before anything is known).

The quality chosen for the next frame makes the *GOP-average* predicted size (one I-frame
at that quality and gop-1 P-frames at it minus the offset) match the budget, so I- and
P-frames of a GOP keep the CQP relation instead of P-frames paying for the I-frame.

Determinism: decisions use only previously reported sizes, in frame order, with plain float
arithmetic, so the same frames and settings give the same qualities (and bytes) in the
sequential encoder, the pipelined scheduler, the CLI and the service. The encoder reports
every frame's size from its inference stage (see ``Encoder.infer``) so both paths see
exactly the same history.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from zvc69_rt.errors import InputError

MODES = ("cqp", "vbr", "cbr")
FRAME_I = 0
FRAME_P = 1

MIN_BITRATE = 1_000  # bit/s
MAX_BITRATE = 2_000_000_000
MIN_VBV_SECONDS = 0.05
MAX_VBV_SECONDS = 60.0

# Priors measured on the shipped intra model (examples/bikes_320x136.y4m, Q1..Q8).
PRIOR_INTERCEPT = -2.35  # log2(bits per pixel) at q = 0
PRIOR_SLOPE = 0.022  # log2(bits per pixel) per quality point
PRIOR_P_OFFSET = -1.5  # log2(P bits / I bits) until P-frames have been measured
SLOPE_PRIOR_WEIGHT = 2000.0  # ridge weight on (b - b0), in units of q^2 * observations
FORGET = 0.85  # per-observation forgetting factor of the fit
MAX_RISE = 4  # quality points the GOP quality may rise per frame


class RateControl(Protocol):
    mode: str
    needs_bits: bool  # False: update() is a no-op and the encoder need not report sizes early

    def quality_for(self, frame_index: int, frame_type: int) -> int: ...

    def update(self, frame_index: int, frame_type: int, bits: int) -> None: ...

    def revise(self, frame_index: int, frame_type: int, bits: int) -> int | None: ...

    def summary(self) -> dict: ...


def frame_quality(quality: float, frame_type: int, p_offset: int) -> int:
    """The quality a frame of this type is coded at when its GOP's I-frame gets ``quality``."""
    q = quality if frame_type == FRAME_I else quality - p_offset
    return min(max(round(q), 0), 100)


class ConstantQuality:
    """CQP: the configured quality for I-frames, ``p_offset`` points less for P/B-frames."""

    mode = "cqp"
    needs_bits = False

    def __init__(self, quality: int, p_offset: int = 0):
        self.quality = quality
        self.p_offset = p_offset

    def quality_for(self, frame_index: int, frame_type: int) -> int:
        return frame_quality(self.quality, frame_type, self.p_offset)

    def update(self, frame_index: int, frame_type: int, bits: int) -> None:
        pass

    def revise(self, frame_index: int, frame_type: int, bits: int) -> int | None:
        return None

    def summary(self) -> dict:
        return {"mode": self.mode, "quality": self.quality, "p_quality_offset": self.p_offset}


@dataclass
class _Fit:
    """Exponentially forgotten least squares of y = a + b q with a ridge prior on b."""

    b0: float = PRIOR_SLOPE
    a0: float = PRIOR_INTERCEPT
    k: float = SLOPE_PRIOR_WEIGHT
    s: float = 0.0
    sq: float = 0.0
    sy: float = 0.0
    sqq: float = 0.0
    sqy: float = 0.0
    n: int = 0

    def add(self, q: float, y: float) -> None:
        for name in ("s", "sq", "sy", "sqq", "sqy"):
            setattr(self, name, getattr(self, name) * FORGET)
        self.s += 1.0
        self.sq += q
        self.sy += y
        self.sqq += q * q
        self.sqy += q * y
        self.n += 1

    def params(self) -> tuple[float, float]:
        if self.n == 0:
            return self.a0, self.b0
        k = self.k
        # [s, sq; sq, sqq + k] [a; b] = [sy; sqy + k b0]
        det = self.s * (self.sqq + k) - self.sq * self.sq
        a = (self.sy * (self.sqq + k) - self.sq * (self.sqy + k * self.b0)) / det
        b = (self.s * (self.sqy + k * self.b0) - self.sq * self.sy) / det
        b_lo, b_hi = 0.25 * self.b0, 4.0 * self.b0
        if not b_lo <= b <= b_hi:  # keep the model monotone and sane; refit the intercept
            b = min(max(b, b_lo), b_hi)
            a = (self.sy - b * self.sq) / self.s
        return a, b


@dataclass
class _MeanRatio:
    """Forgotten sum(actual bits) / sum(predicted bits) of one frame type.

    The fit is in log2(bits), so it predicts the geometric mean; budgets add bits, i.e.
    arithmetic means, which are larger whenever sizes scatter (bikes.mp4 alternates P-frames
    of ~150 and ~1,000 bytes: the geometric mean is 0.7x the arithmetic one, and the
    controller spent accordingly). This factor scales predictions back to the mean."""

    actual: float = 0.0
    predicted: float = 0.0

    def add(self, actual: float, predicted: float) -> None:
        self.actual = self.actual * FORGET + actual
        self.predicted = self.predicted * FORGET + predicted

    def ratio(self) -> float:
        if self.predicted <= 0.0:
            return 1.0
        return min(max(self.actual / self.predicted, 0.5), 4.0)


@dataclass
class _Stats:
    frames: int = 0
    bits: int = 0
    qualities: list[int] = field(default_factory=list)
    buffer_min: float = math.inf
    buffer_max: float = -math.inf
    overflows: int = 0
    underflows: int = 0


class BitrateControl:
    """VBR (average rate) or CBR (average rate + leaky-bucket buffer), see the module doc."""

    needs_bits = True

    def __init__(self, mode: str, bitrate: int, fps: float, width: int, height: int, gop: int = 1,
                 vbv_seconds: float = 1.0, initial_quality: int | None = None, max_step: int | None = None,
                 p_offset: int = 0):
        if mode not in ("vbr", "cbr"):
            raise InputError(f"rate control mode must be vbr or cbr here, got {mode!r}")
        self.mode = mode
        self.bitrate = bitrate
        self.fps = fps
        self.pixels = width * height
        self.gop = max(1, gop)
        self.p_offset = p_offset
        self.frame_bits = bitrate / fps  # channel bits per frame interval
        self.horizon = max(8.0, fps)  # frames over which a surplus/deficit is paid back (VBR)
        self.max_step = max_step if max_step is not None else (12 if mode == "vbr" else 25)
        self.fits = {FRAME_I: _Fit(), FRAME_P: _Fit()}
        self._spread = {FRAME_I: _MeanRatio(), FRAME_P: _MeanRatio()}
        self.initial_quality = initial_quality
        self.spent = 0.0  # bits reported so far
        self.count = 0  # frames reported so far
        self.last_quality: int | None = None  # the last GOP (I-frame) quality decided
        self._decided: dict[int, int] = {}
        # CBR buffer (encoder side): bits produced but not yet sent at the target rate.
        self.buffer_size = bitrate * vbv_seconds
        self.buffer_target = 0.5 * self.buffer_size
        self.buffer = self.buffer_target  # starts half full (the decoder waits vbv/2 before playback)
        self.buffer_horizon = max(2.0, fps * vbv_seconds / 4)
        self.stats = _Stats()
        self._asked: dict[int, int] = {}  # index -> the kind quality_for priced it as
        self._revised = False  # the first keyframe was re-coded (revise)
        self._record: dict[int, tuple[int, int, int]] = {}  # index -> (kind, quality, bits): first_pass()

    # -- model ---------------------------------------------------------------------
    def _log2_bpp(self, frame_type: int, q: float) -> float:
        if frame_type == FRAME_P and self.fits[FRAME_P].n == 0:
            a, b = self.fits[FRAME_I].params()
            return a + PRIOR_P_OFFSET + b * q
        a, b = self.fits[self._kind(frame_type)].params()
        return a + b * q

    def predict_bits(self, frame_type: int, q: float) -> float:
        return self.pixels * 2.0 ** self._log2_bpp(frame_type, q) * self._spread[self._kind(frame_type)].ratio()

    @staticmethod
    def _kind(frame_type: int) -> int:
        return FRAME_P if frame_type == FRAME_P else FRAME_I

    def _gop_average_bits(self, q: float) -> float:
        """P-frames at the offset quality, clamped at 0 as frame_quality codes them (below
        the offset the extrapolated model promised P-frames cheaper than quality 0)."""
        g = self.gop
        return (self.predict_bits(FRAME_I, q) + (g - 1) * self.predict_bits(FRAME_P, max(q - self.p_offset, 0.0))) / g

    @staticmethod
    def _solve(f, target: float) -> float:
        """The q in [0, 100] where the increasing f(q) meets target (bisection; clamps)."""
        if f(0.0) >= target:
            return 0.0
        if f(100.0) <= target:
            return 100.0
        lo, hi = 0.0, 100.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if f(mid) < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    # -- protocol ------------------------------------------------------------------
    def quality_for(self, frame_index: int, frame_type: int) -> int:
        if frame_index in self._decided:  # idempotent: asking twice gives the same answer
            return self._decided[frame_index]
        if self.mode == "vbr":
            target = self.frame_bits + (self.frame_bits * self.count - self.spent) / self.horizon
        else:
            target = self.frame_bits + (self.buffer_target - self.buffer) / self.buffer_horizon
        target = min(max(target, 0.25 * self.frame_bits), 4.0 * self.frame_bits)
        if self.count == 0 and self.initial_quality is not None:
            q = float(self.initial_quality)
        else:
            q = self._solve(self._gop_average_bits, target)
        qi = round(q)
        if self.last_quality is not None:
            # The priors may be far off for this content: no smoothing down until the fit has
            # data; up, never faster than MAX_RISE (one cheap frame is not a cheap clip), except
            # right after frame 0: it was priced by the priors alone, and it is a keyframe, whose
            # size samples the content (a P-frame's depends on its motion too).
            step = self.max_step if self.count >= 3 else 100
            rise = 100 if self.count == 1 else min(step, MAX_RISE)
            qi = min(max(qi, self.last_quality - step), self.last_quality + rise)
        qi = min(max(qi, 0), 100)
        self.last_quality = qi
        q_frame = frame_quality(qi, frame_type, self.p_offset)
        if self.mode == "cbr":
            # Hard limits of this frame's own predicted size against the buffer.
            room = self.buffer_size - self.buffer + self.frame_bits  # bits that keep buffer <= size
            floor = self.frame_bits - self.buffer  # bits that keep buffer >= 0
            q_cap = self._solve(lambda v: self.predict_bits(frame_type, v), 0.85 * room)
            q_floor = self._solve(lambda v: self.predict_bits(frame_type, v), 1.15 * floor) if floor > 0 else 0.0
            q_frame = min(q_frame, math.floor(q_cap))
            if math.ceil(q_floor) <= math.floor(q_cap):
                q_frame = max(q_frame, math.ceil(q_floor))
            q_frame = min(max(q_frame, 0), 100)
        self._decided[frame_index] = q_frame
        self._asked[frame_index] = self._kind(frame_type)
        return q_frame

    def revise(self, frame_index: int, frame_type: int, bits: int) -> int | None:
        """A trial size of a keyframe before it is final: a new quality to code it at, or
        None to keep it. One pass revises only the stream's first keyframe, once: the priors
        alone priced it (0.5-1.2 log2 bits off on the clips measured, docs/INTER.md "Rate
        control"), and its own size is the first evidence there is."""
        q = self._decided.get(frame_index)
        if q is None or self.count or frame_type != FRAME_I or self._revised or self.initial_quality is not None:
            return None
        self._revised = True
        fit = self.fits[FRAME_I]
        before = dataclasses.replace(fit)
        fit.add(float(q), math.log2(max(bits, 1) / self.pixels))
        del self._decided[frame_index]
        self.last_quality = None
        q_new = self.quality_for(frame_index, frame_type)
        if q_new == q:
            self.fits[FRAME_I] = before  # update() adds this size once, as the frame's own
            return None
        return q_new  # the trial stays in the fit: a second quality of the same picture

    def update(self, frame_index: int, frame_type: int, bits: int) -> None:
        q = self._decided.pop(frame_index, self.last_quality if self.last_quality is not None else 50)
        kind = self._kind(frame_type)
        if self.fits[kind].n:  # one-step-ahead prediction of the fit alone
            self._spread[kind].add(bits, self.pixels * 2.0 ** self._log2_bpp(frame_type, q))
        self.fits[kind].add(float(q), math.log2(max(bits, 1) / self.pixels))
        self._record[frame_index] = (self._asked.pop(frame_index, kind), q, bits)
        self._account(bits, q)

    def _account(self, bits: int, q: int) -> None:
        self.spent += bits
        self.count += 1
        st = self.stats
        st.frames += 1
        st.bits += bits
        st.qualities.append(q)
        self.buffer += bits - self.frame_bits
        if self.buffer > self.buffer_size:
            st.overflows += 1
        if self.buffer < 0:
            st.underflows += 1
            self.buffer = 0.0  # the channel idles (CBR would stuff); nothing is owed
        st.buffer_max = max(st.buffer_max, self.buffer)
        st.buffer_min = min(st.buffer_min, self.buffer)

    def first_pass(self) -> FirstPass:
        """What this encode measured, for a second pass over the same frames."""
        return FirstPass(frames=dict(self._record),
                         slopes=(self.fits[FRAME_I].params()[1], self.fits[FRAME_P].params()[1]))

    def summary(self) -> dict:
        st = self.stats
        secs = st.frames / self.fps if st.frames else 0.0
        achieved = st.bits / secs if secs else 0.0
        out = {
            "mode": self.mode, "target_bps": self.bitrate, "frames": st.frames, "bits": st.bits,
            "achieved_bps": achieved, "error_pct": 100.0 * (achieved / self.bitrate - 1.0) if secs else 0.0,
            "quality_min": min(st.qualities, default=0), "quality_max": max(st.qualities, default=0),
            "quality_mean": sum(st.qualities) / len(st.qualities) if st.qualities else 0.0,
        }
        if self.mode == "cbr":
            # start and end: a short clip may end with bits still buffered (achieved above target
            # by up to buffer_end - buffer_start over the clip's duration) without any overflow
            out.update(buffer_bits=self.buffer_size, buffer_min=st.buffer_min, buffer_max=st.buffer_max,
                       buffer_start=self.buffer_target, buffer_end=self.buffer,
                       overflows=st.overflows, underflows=st.underflows)
        return out


@dataclass(frozen=True)
class FirstPass:
    """What a first encode of a clip measured (``BitrateControl.first_pass``): every frame's
    size at the quality it was coded at, and the fitted log2-bits-per-quality-point slopes."""

    frames: dict[int, tuple[int, int, int]]  # frame index -> (FRAME_I/FRAME_P as priced, quality, bits)
    slopes: tuple[float, float] = (PRIOR_SLOPE, PRIOR_SLOPE)  # I, P


MAX_TRIALS = 2  # extra codings of one keyframe that TwoPassControl.revise may ask for
REVISE_TOLERANCE = 0.06  # |log2(actual / predicted)| a keyframe trial may miss by (~4 %)
TWO_PASS_SLOPE_WEIGHT = 300.0  # weaker than one pass's: sizes relative to pass 1 scatter less
TWO_PASS_MAX_STEP = 6  # GOP quality points per frame (one pass: 12); chosen on training clips


class TwoPassControl(BitrateControl):
    """VBR over frames a first pass has sized: the clip's budget is known to the frame.

    Frame i costs ``bits1_i * 2^(a_t + b_t * (q_i - q1_i))`` at quality ``q_i`` (pass 1 coded
    it at ``q1_i`` for ``bits1_i``); ``a_t, b_t`` per frame type are fitted on this pass's
    own sizes (same forgotten ridge fit as one-pass; priors: a = 0, b = pass 1's slope). Before
    each frame the GOP quality is solved so that the frames not yet coded fill what is left
    of ``frames * bitrate / fps``. Keyframes may be coded up to MAX_TRIALS more times
    (``revise``): in a short clip the I-frame is most of the bits and pass 1 rarely coded it
    near the quality pass 2 needs, so its slope is an extrapolation (0.018..0.029 log2 bits per
    point on clips measured so far: +-30 % over 60 points); two sizes of the frame itself
    replace that guess. Why two passes at all: one-pass control decides a clip's first
    keyframe from priors and cannot know whether the P-frames after it will be 5 % or 40 %
    of it (a static shot vs a pan), so it lands 6-66 % off on 16-frame clips
    (docs/INTER.md "Two passes")."""

    def __init__(self, first_pass: FirstPass, bitrate: int, fps: float, width: int, height: int, gop: int = 1,
                 p_offset: int = 0):
        super().__init__("vbr", bitrate, fps, width, height, gop=gop, p_offset=p_offset,
                         max_step=TWO_PASS_MAX_STEP)
        if not first_pass.frames:
            raise InputError("two-pass rate control: the first pass coded no frames")
        self.plan = first_pass
        self.fits = {kind: _Fit(b0=first_pass.slopes[kind], a0=0.0, k=TWO_PASS_SLOPE_WEIGHT) for kind in (FRAME_I, FRAME_P)}
        order = sorted(first_pass.frames)
        self._position = {index: k for k, index in enumerate(order)}
        table = np.array([first_pass.frames[i] for i in order], dtype=np.float64).reshape(-1, 3)
        self._kinds, self._q1, self._bits1 = table[:, 0].astype(np.int64), table[:, 1], table[:, 2]
        self._pending = np.ones(len(order), dtype=bool)
        self.total = len(order) * self.frame_bits
        self._trials: dict[int, int] = {}

    def _predicted_total(self, gop_quality: float) -> float:
        """Bits of every frame not yet coded, all at this GOP quality."""
        kinds, q1, bits1 = self._kinds[self._pending], self._q1[self._pending], self._bits1[self._pending]
        out = 0.0
        for kind in (FRAME_I, FRAME_P):
            sel = kinds == kind
            if not sel.any():
                continue
            a, b = self.fits[kind].params()
            q = gop_quality if kind == FRAME_I else max(gop_quality - self.p_offset, 0.0)
            q = min(max(q, 0.0), 100.0)
            out += float(np.sum(bits1[sel] * np.exp2(a + b * (q - q1[sel]))))
        return out

    def _solve_gop_quality(self) -> float:
        return self._solve(self._predicted_total, max(self.total - self.spent, 0.0))

    def quality_for(self, frame_index: int, frame_type: int) -> int:
        if frame_index in self._decided:
            return self._decided[frame_index]
        if frame_index in self._position and self._pending.any():
            qi = round(self._solve_gop_quality())
            if self.last_quality is not None:
                qi = min(max(qi, self.last_quality - self.max_step), self.last_quality + self.max_step)
        else:  # a frame pass 1 did not see (the input changed): keep the quality
            qi = self.last_quality if self.last_quality is not None else 50
        self.last_quality = qi = min(max(qi, 0), 100)
        q_frame = frame_quality(qi, frame_type, self.p_offset)
        self._decided[frame_index] = q_frame
        self._asked[frame_index] = self._kind(frame_type)
        return q_frame

    def _observe(self, frame_index: int, q: int, bits: int) -> None:
        """A measured size of a planned frame refines its type's fit (trials count too: two
        sizes of one frame at two qualities are the best slope evidence there is)."""
        if frame_index not in self._position:
            return
        kind, q1, bits1 = self.plan.frames[frame_index]
        self.fits[kind].add(float(q - q1), math.log2(max(bits, 1) / max(bits1, 1)))

    def revise(self, frame_index: int, frame_type: int, bits: int) -> int | None:
        q = self._decided.get(frame_index)
        if (q is None or frame_type != FRAME_I or frame_index not in self._position
                or self._trials.get(frame_index, 0) >= MAX_TRIALS):
            return None
        kind, q1, bits1 = self.plan.frames[frame_index]
        a, b = self.fits[kind].params()
        predicted = bits1 * 2.0 ** (a + b * (q - q1))
        before = dataclasses.replace(self.fits[kind])
        self._observe(frame_index, q, bits)
        qi = round(self._solve_gop_quality())
        q_new = frame_quality(qi, frame_type, self.p_offset)
        if abs(math.log2(max(bits, 1) / predicted)) <= REVISE_TOLERANCE or q_new == q:
            self.fits[kind] = before  # this trial is the frame: update() adds it, once
            return None
        self._trials[frame_index] = self._trials.get(frame_index, 0) + 1
        self.last_quality = qi
        self._decided[frame_index] = q_new
        return q_new

    def update(self, frame_index: int, frame_type: int, bits: int) -> None:
        q = self._decided.pop(frame_index, self.last_quality if self.last_quality is not None else 50)
        self._observe(frame_index, q, bits)
        self._record[frame_index] = (self._asked.pop(frame_index, self._kind(frame_type)), q, bits)
        if frame_index in self._position:
            self._pending[self._position[frame_index]] = False
        self._account(bits, q)

    def summary(self) -> dict:
        return {**super().summary(), "planned": True, "keyframe_trials": sum(self._trials.values())}


def parse_bitrate(text: str) -> int:
    """'500k', '2M', '1.5m', '800000' -> bits per second (k = 1000, M = 10^6)."""
    s = str(text).strip()
    mult = 1
    if s[-1:].lower() == "k":
        mult, s = 1_000, s[:-1]
    elif s[-1:].lower() == "m":
        mult, s = 1_000_000, s[:-1]
    try:
        v = float(s)
    except ValueError:
        raise InputError(f"bitrate {text!r}: expected a number with an optional k or M suffix, e.g. 500k or 2M")
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"bitrate {text!r} must be positive")
    return round(v * mult)


def validate_settings(mode: str, bitrate: int | None, vbv_seconds: float) -> None:
    if mode not in MODES:
        raise InputError(f"rate_control must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "cqp":
        if bitrate is not None:
            raise InputError("a bitrate needs rate_control vbr or cbr (cqp codes at a constant quality)")
        return
    if bitrate is None:
        raise InputError(f"rate_control {mode} needs a target bitrate (bits/s)")
    if isinstance(bitrate, bool) or not isinstance(bitrate, int):
        raise InputError(f"bitrate must be an integer number of bits/s, got {bitrate!r}")
    if not MIN_BITRATE <= bitrate <= MAX_BITRATE:
        raise InputError(f"bitrate must be {MIN_BITRATE}..{MAX_BITRATE} bit/s, got {bitrate}")
    if not (isinstance(vbv_seconds, int | float) and math.isfinite(vbv_seconds)
            and MIN_VBV_SECONDS <= vbv_seconds <= MAX_VBV_SECONDS):
        raise InputError(f"vbv_seconds must be {MIN_VBV_SECONDS}..{MAX_VBV_SECONDS}, got {vbv_seconds!r}")


def make_rate_control(config, gop: int, first_pass: FirstPass | None = None) -> ConstantQuality | BitrateControl:
    """The controller for an EncoderConfig (``gop``: the encoder's effective GOP; ``first_pass``:
    a first encode's sizes of the same frames, vbr only)."""
    offset = config.p_quality_offset if gop > 1 else 0
    if first_pass is not None:
        if config.rate_control != "vbr":
            raise InputError(f"two-pass encoding needs rate_control vbr (a bitrate target), got {config.rate_control}")
        return TwoPassControl(first_pass, config.bitrate, config.fps_num / config.fps_den, config.width,
                              config.height, gop=gop, p_offset=offset)
    if config.rate_control == "cqp":
        return ConstantQuality(config.quality, offset)
    return BitrateControl(config.rate_control, config.bitrate, config.fps_num / config.fps_den,
                          config.width, config.height, gop=gop, vbv_seconds=config.vbv_seconds, p_offset=offset)
