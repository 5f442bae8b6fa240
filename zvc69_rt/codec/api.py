"""The codec's public surface, shared by the CLI, the service and the pipeline.

    Encoder.send_frame(Frame) -> Encoder.receive_packet() -> Packet -> StreamWriter
    StreamReader -> Packet -> Decoder.send_packet() -> Decoder.receive_frame() -> Frame

Settings live in one frozen dataclass so that the CLI and the service build identical
encoders from identical settings (the service's bitstream must equal the CLI's).
"""

from __future__ import annotations

from dataclasses import dataclass

from zvc69_rt.codec.ratecontrol import validate_settings
from zvc69_rt.errors import InputError
from zvc69_rt.io.padding import PAD_MODES

MIN_DIMENSION = 64
MAX_DIMENSION = 8192
NUM_LEVELS = 8
MAX_PYRAMID_BFRAMES = 15  # B-frames a pyramid may span (7 of them BBi references)
MAX_AQ_STRENGTH = 4  # = codec.motion_aq.MAX_STRENGTH, not imported: that pulls numba into every CLI start
MAX_REFINE_STEPS = 200  # latent refinement steps per frame (codec/latent_refine.py)
MAX_ANNEAL_STEPS = 2000  # annealing steps per I-frame (latent_refine.anneal; Yang et al. ran 2000)


def level_to_quality(level: int) -> int:
    """User-facing Q1..Q8 onto the header's 0..100 (Q1 = 0, Q8 = 100)."""
    if not 1 <= level <= NUM_LEVELS:
        raise InputError(f"level must be 1..{NUM_LEVELS}, got {level}")
    return round((level - 1) * 100 / (NUM_LEVELS - 1))


@dataclass(frozen=True)
class EncoderConfig:
    width: int
    height: int
    fps_num: int = 30
    fps_den: int = 1
    quality: int = 57  # Q5
    gop: int = 32
    bframes: int = 0
    b_pyramid: bool = True  # with bframes >= 2: the middle B-frame first, as a reference (BBi) for the others
    preset: str | None = None
    backend: str = "auto"
    precision: str = "fp32"
    model: str | None = None  # bundle folder; None = the shipped default
    rate_control: str = "cqp"  # cqp (constant quality), vbr or cbr: see zvc69_rt/codec/ratecontrol.py
    bitrate: int | None = None  # target bits/s, vbr/cbr only
    vbv_seconds: float = 1.0  # cbr buffer size in seconds of target bitrate
    # P/B-frames are coded this many quality points below their GOP's I-frame (see ratecontrol.py;
    # 16 since session 6: docs/INTER.md "Tuning")
    p_quality_offset: int = 16
    # non-reference B-frames (type 2) are coded this many quality points below the P-frames (tuned:
    # docs/INTER.md "Tuning")
    b_quality_offset: int = 18
    # block-adaptive quantisation of P/B residuals by motion magnitude, strength 0 (off)..MAX_AQ_STRENGTH
    motion_aq: int = 0
    # how I-frames are padded to the model's alignment (zvc69_rt/io/padding.py; encoder only,
    # the decoder crops it): "smooth" costs fewer bits than "edge" replication. P/B-frames are
    # always edge-padded (motion estimation needs the padding to move with the picture).
    padding: str = "smooth"
    # I-frames (with constant quality, cqp) and P/B residuals (every mode) may be coded at half
    # width and height and upsampled (codec/reduced_res.py) when that costs less (lambda*MSE +
    # bits); only at full motion-search effort (not the realtime presets)
    reduced_res: bool = True
    # at full effort, the hyper latent each frame sends is searched for one that costs fewer bits
    # (codec/hyper_search.py; same format, slower encode: docs/INTER.md "Hyper latent search")
    z_search: bool = True
    # at full effort, each I-frame's latent takes this many gradient steps toward lower
    # rate-distortion cost before it is coded (codec/latent_refine.py; bundles with a
    # synthesis_gradient graph; same format, slower encode: docs/INTRA.md "Latent refinement")
    refine_steps: int = 20
    # then the chosen candidate's latent takes this many steps of annealed stochastic rounding,
    # kept where cheaper (latent_refine.anneal, e.g. 80; the same graph; opt-in: the I-frames
    # get cheaper at their lambda on training photos, not on held-out ones, docs/INTRA.md
    # "Annealed rounding")
    anneal_steps: int = 0
    # the same for the residual latent of each P-frame's chosen coding, refined once the
    # motion field and residual size are chosen (codec/latent_refine.refine_residual; bundles
    # with a residual_synthesis_gradient graph: docs/INTER.md "Residual refinement")
    p_refine_steps: int = 0
    # at full effort with constant quality, each I-frame may carry a residual layer: the P
    # model's residual coder on the I-frame's reconstruction, kept where it costs less
    # (codec/residual_layer.py; bundles with P-frame graphs; held-out photos -14.8 %, clips
    # -7.5 % BD-rate: docs/INTRA.md "Residual layer")
    intra_residual: bool = True

    def validate(self) -> None:
        for name, v in (("width", self.width), ("height", self.height)):
            if not MIN_DIMENSION <= v <= MAX_DIMENSION:
                raise InputError(f"{name} {v} is outside {MIN_DIMENSION}..{MAX_DIMENSION}")
        if not (1 <= self.fps_num <= 65535 and 1 <= self.fps_den <= 65535):
            raise InputError(f"frame rate {self.fps_num}/{self.fps_den}: both terms must be 1..65535")
        if not 0 <= self.quality <= 100:
            raise InputError(f"quality must be 0..100, got {self.quality}")
        if not 1 <= self.gop <= 255:
            raise InputError(f"gop must be 1..255 (it is a u8 in the file header), got {self.gop}")
        if not 0 <= self.bframes < max(self.gop, 1):
            raise InputError(f"bframes must be 0..gop-1, got {self.bframes} with gop {self.gop}")
        for name in ("b_pyramid", "reduced_res", "intra_residual"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.b_pyramid and self.bframes > MAX_PYRAMID_BFRAMES:
            raise InputError(f"a B pyramid spans at most {MAX_PYRAMID_BFRAMES} B-frames (the decoder bounds the "
                             f"references it keeps), got bframes {self.bframes}; use fewer B-frames or b_pyramid false")
        if self.precision not in ("fp32", "fp16", "int8"):
            raise InputError(f"precision must be fp32, fp16 or int8, got {self.precision!r}")
        if self.backend not in ("auto", "onnxruntime", "tensorrt"):
            raise InputError(f"backend must be auto, onnxruntime or tensorrt, got {self.backend!r}")
        validate_settings(self.rate_control, self.bitrate, self.vbv_seconds)
        if not (isinstance(self.motion_aq, int) and not isinstance(self.motion_aq, bool)
                and 0 <= self.motion_aq <= MAX_AQ_STRENGTH):
            raise InputError(f"motion_aq must be 0 (off)..{MAX_AQ_STRENGTH}, got {self.motion_aq!r}")
        if self.padding not in PAD_MODES:
            raise InputError(f"padding must be one of {', '.join(PAD_MODES)}, got {self.padding!r}")
        for name, most in (("refine_steps", MAX_REFINE_STEPS), ("p_refine_steps", MAX_REFINE_STEPS),
                           ("anneal_steps", MAX_ANNEAL_STEPS)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= most):
                raise InputError(f"{name} must be 0 (off)..{most}, got {v!r}")
        for name in ("b_quality_offset", "p_quality_offset"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 0 <= v <= 100):
                raise InputError(f"{name} must be 0..100, got {v!r}")


@dataclass
class Packet:
    """One coded frame as it goes into the container (header fields + frame data)."""

    frame_type: int  # 0=I, 1=P, 2=B, 3=BBi
    pts: int
    quality: int
    latent_height: int
    latent_width: int
    data: bytes
    flags: int = 0  # bitstream.FrameFlags: REDUCED_RES for an I-frame coded at half size
