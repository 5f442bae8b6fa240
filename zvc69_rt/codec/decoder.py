"""Decoder: Packets in, Frames out (send_packet / receive_frame), in display order.

Streams with B-frames (HAS_B_FRAMES) arrive in coding order (I0 P3 B1 B2 P6 B4 B5, or
with a B pyramid I0 P4 BBi2 B1 B3): anchors (I/P) and reference B-frames (BBi) are held
back, a non-reference B-frame first releases the held frames displayed before it and then
goes out itself, and an anchor releases everything held (the stream end,
``send_packet(None)``, too), so frames come out in display order. Low-delay streams go out
frame by frame with no holding back.

References: a P-frame predicts from the last anchor; a B or BBi frame from the nearest
references on either side of its pts among the last anchor, the one before it and the
BBi frames decoded since (the rule the encoder's pyramid follows). GOPs are closed: an
I-frame drops every reference before it. At most MAX_REFERENCES are kept, so a hostile
stream cannot make the decoder hold frames without bound.

Checks every frame against the stream header before any entropy decoding: the model
hash, frame type, and the latent size implied by width/height, so a hostile header can
never make the numba kernels read or allocate out of bounds.
"""

from __future__ import annotations

import collections

import numpy as np

from zvc69_rt.bitstream.frame_header import (
    B_TYPES,
    FRAME_TYPE_NAMES,
    I_ONLY_FRAME_FLAGS,
    KNOWN_FRAME_FLAGS,
    FrameFlags,
    FrameType,
)
from zvc69_rt.bitstream.header import HeaderFlags
from zvc69_rt.codec import residual_layer
from zvc69_rt.codec.api import MAX_PYRAMID_BFRAMES
from zvc69_rt.codec.bidir import BFrameCodec
from zvc69_rt.codec.colorspace import coding_colorspace
from zvc69_rt.codec.inter import DECODER_GRAPHS as P_DECODER_GRAPHS
from zvc69_rt.codec.inter import PFrameCodec
from zvc69_rt.codec.intra import IntraCodec
from zvc69_rt.codec.reduced_res import reduced_latent_size, upsample_to
from zvc69_rt.codec.runtime import GRAPHS, load_runners
from zvc69_rt.errors import ZVC69FormatError
from zvc69_rt.frame import Frame
from zvc69_rt.io.color import rgb_to_yuv420
from zvc69_rt.io.padding import crop
from zvc69_rt.models.bundle import ModelBundle

#: Decoded frames kept for prediction: two anchors and up to MAX_PYRAMID_BFRAMES BBi frames
#: between them (the encoder's pyramid over that many B-frames holds half as many).
MAX_REFERENCES = 2 + MAX_PYRAMID_BFRAMES


class Decoder:
    def __init__(self, file_header, bundle: ModelBundle | None = None, backend: str = "auto",
                 precision: str = "fp32", runners: dict | None = None, model: str | None = None):
        self.header = file_header
        self.bundle = bundle or ModelBundle.load(model)
        self.bundle.check_stream(bytes(file_header.model_hash))
        if file_header.latent_channels != self.bundle.latent_channels or (
            file_header.hyperprior_channels != self.bundle.hyperprior_channels
        ):
            raise ZVC69FormatError(
                f"file header: latent_channels/hyperprior_channels {file_header.latent_channels}/"
                f"{file_header.hyperprior_channels} do not match the model's "
                f"{self.bundle.latent_channels}/{self.bundle.hyperprior_channels}"
            )
        if not self.bundle.integerized and int(file_header.flags) & HeaderFlags.INTEGERIZED:
            raise ZVC69FormatError(
                "file header: INTEGERIZED is set but the model bundle computes scale indexes in float"
            )
        if int(file_header.flags) & HeaderFlags.GMM_ENTROPY:
            raise ZVC69FormatError("file header: GMM_ENTROPY is set; this decoder codes with Gaussian "
                                   "conditionals only and cannot decode Gaussian-mixture streams")
        has_inter = "inter" in self.bundle.manifest and file_header.gop_size > 1
        self._backend, self._precision = backend, precision
        if runners is None:
            graphs = GRAPHS + (P_DECODER_GRAPHS if has_inter else ())
            runners, self.backend_name = load_runners(self.bundle, backend, precision, graphs)
        else:
            self.backend_name = "injected"
        self._runners = runners
        self._layer_codec: PFrameCodec | None = None  # residual layers of all-intra streams, built on first use
        checker = bool(int(file_header.flags) & HeaderFlags.CHECKERBOARD)
        self.intra = IntraCodec(self.bundle, runners, checkerboard=checker)  # refused without context tables
        self.inter = PFrameCodec(self.bundle, runners) if has_inter else None
        self.bidir = BFrameCodec(self.inter) if self.inter is not None else None
        self.reorder = bool(int(file_header.flags) & HeaderFlags.HAS_B_FRAMES)
        self._reference: np.ndarray | None = None  # the last anchor (I/P) decoded: a P-frame's reference
        self._reference_pts = 0
        self._refs: list[tuple[int, np.ndarray]] = []  # (pts, recon) a B/BBi frame may predict from
        self._held: list[Frame] = []  # anchors and BBi frames waiting for frames displayed before them
        a = self.bundle.alignment
        self.width, self.height = file_header.width, file_header.height
        self.padded_size = (-(-self.height // a) * a, -(-self.width // a) * a)
        self.latent_size = (self.padded_size[0] // 16, self.padded_size[1] // 16)
        self.reduced_latent_size = reduced_latent_size(self.height, self.width, a)
        self.matrix, self.range = coding_colorspace(self.width, self.height)
        self._frames: collections.deque[Frame] = collections.deque()
        self.frames_out = 0

    def decode_rgb(self, frame_header, data: bytes | memoryview) -> np.ndarray:
        """One frame record -> padded float32 RGB [3, Hp, Wp]."""
        n = self.frames_out
        ftype = frame_header.frame_type
        if ftype not in FRAME_TYPE_NAMES:
            raise ZVC69FormatError(f"frame {n}: frame_type {ftype} is not one of 0..3")
        name = FRAME_TYPE_NAMES[ftype]
        if ftype != FrameType.I and (self.inter is None or self._reference is None):
            raise ZVC69FormatError(
                f"frame {n}: {name}-frame " + (
                    "before any I-frame" if self.inter is not None else
                    "in a stream whose header (gop_size) or model has no inter frames")
            )
        refs = None
        if ftype in B_TYPES:
            if not self.reorder:
                raise ZVC69FormatError(f"frame {n}: {name}-frame in a stream whose header has no HAS_B_FRAMES flag")
            refs = self._bidir_references(frame_header.pts)
            if refs is None:
                raise ZVC69FormatError(
                    f"frame {n}: {name}-frame at pts {frame_header.pts} without references decoded before it on "
                    "both sides of its pts (GOPs are closed)")
            if ftype == FrameType.BBI and len(self._refs) >= MAX_REFERENCES:
                raise ZVC69FormatError(f"frame {n}: more than {MAX_REFERENCES - 2} BBi frames between two anchors")
        flags = int(getattr(frame_header, "flags", 0))
        if flags & ~KNOWN_FRAME_FLAGS:
            raise ZVC69FormatError(f"frame {n}: frame_flags 0x{flags:04x} sets bits this decoder does not know")
        reduced = bool(flags & FrameFlags.REDUCED_RES)
        layered = bool(flags & FrameFlags.RESIDUAL_LAYER)
        for flag_name, bit in I_ONLY_FRAME_FLAGS.items():
            if flags & bit and ftype != FrameType.I:
                raise ZVC69FormatError(f"frame {n}: {flag_name} on a {name}-frame (only I-frames may carry it)")
        lh, lw = frame_header.latent_height, frame_header.latent_width
        expected = self.reduced_latent_size if reduced else self.latent_size
        if (lh, lw) != expected:
            raise ZVC69FormatError(
                f"frame {n}: latent {lh}x{lw} does not match the {expected[0]}x{expected[1]} implied by the "
                f"{self.width}x{self.height} stream" + (" at half size (REDUCED_RES)" if reduced else "")
            )
        if not 0 <= frame_header.quality_level <= 100:
            raise ZVC69FormatError(f"frame {n}: quality_level {frame_header.quality_level} is outside 0..100")
        try:
            if refs is not None:
                rgb = self.bidir.decompress(data, refs[0], refs[1], (lh, lw), frame_header.quality_level)
            elif ftype == FrameType.P:
                rgb = self.inter.decompress(data, self._reference, (lh, lw), frame_header.quality_level)
            else:
                layer = None
                if layered:
                    codec = self._residual_layer_codec()
                    data, layer_quality, layer = residual_layer.split(data, "I-frame")
                rgb = self.intra.decompress(data, (lh, lw), frame_header.quality_level)
                if reduced:  # the normative upsampler: the encoder's reference is the same picture
                    rgb = upsample_to(rgb, self.padded_size)
                if layer is not None:
                    rgb = residual_layer.decode(codec, layer, rgb, layer_quality, "I-frame")
        except ZVC69FormatError as exc:
            if ftype != FrameType.B:  # a broken reference must not feed later frames
                self._reference = None
                self._refs = []
            raise type(exc)(f"frame {n}: {exc}") from exc
        if self.inter is not None and ftype != FrameType.B:
            pts = frame_header.pts
            if ftype == FrameType.BBI:
                self._refs.append((pts, rgb))
            else:  # closed GOPs: an I-frame drops the previous GOP; a P-frame the frames before its reference
                self._refs = ([(self._reference_pts, self._reference)] if ftype == FrameType.P else []) + [(pts, rgb)]
                self._reference, self._reference_pts = rgb, pts
        return rgb

    def _residual_layer_codec(self) -> PFrameCodec:
        """The P-frame residual coder that decodes I-frame residual layers: the stream's own
        where it has P-frames, else loaded (or taken from the injected runners) on first use."""
        if self.inter is not None:
            return self.inter
        if self._layer_codec is None:
            if "inter" not in self.bundle.manifest:
                raise ZVC69FormatError("I-frame with a residual layer (RESIDUAL_LAYER), but the model bundle has "
                                       "no P-frame residual graphs to decode it")
            runners = self._runners
            missing = tuple(g for g in residual_layer.DECODER_GRAPHS if g not in runners)
            if missing:  # also where injected runners lack them
                runners = runners | load_runners(self.bundle, self._backend, self._precision, missing)[0]
            self._layer_codec = PFrameCodec(self.bundle, runners)
        return self._layer_codec

    def _bidir_references(self, pts: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The nearest references before and after pts, or None where one side has none."""
        before = [r for r in self._refs if r[0] < pts]
        after = [r for r in self._refs if r[0] > pts]
        if not before or not after or any(r[0] == pts for r in self._refs):
            return None
        return max(before, key=lambda r: r[0])[1], min(after, key=lambda r: r[0])[1]

    def send_packet(self, frame_header=None, data: bytes | memoryview | None = None) -> None:
        """Decode one frame record; ``send_packet(None)`` marks the end of the stream."""
        if frame_header is None:
            self._release(None)
            return
        rgb = self.decode_rgb(frame_header, data)
        frame = rgb_to_yuv420(crop(rgb, (self.height, self.width)), matrix=self.matrix, range=self.range)
        frame.pts = frame_header.pts
        self.frames_out += 1
        ftype = frame_header.frame_type
        if not self.reorder:
            self._frames.append(frame)
        elif ftype == FrameType.B:
            self._release(frame.pts)
            self._frames.append(frame)
        else:
            if ftype != FrameType.BBI:
                self._release(None)
            self._held.append(frame)

    def _release(self, before: int | None) -> None:
        """Held frames displayed before pts ``before`` (all of them for None) go out, in pts order."""
        self._held.sort(key=lambda f: f.pts)
        while self._held and (before is None or self._held[0].pts < before):
            self._frames.append(self._held.pop(0))

    def receive_frame(self) -> Frame | None:
        return self._frames.popleft() if self._frames else None
