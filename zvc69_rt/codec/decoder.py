"""Decoder: Packets in, Frames out (send_packet / receive_frame), in display order.

Streams with B-frames (HAS_B_FRAMES) arrive in coding order (I0 P3 B1 B2 P6 B4 B5): an
anchor (I/P) is held back until the next anchor arrives or the stream ends
(``send_packet(None)``), B-frames go out as they are decoded, so frames come out as
I0 B1 B2 P3 B4 B5 P6. Low-delay streams go out frame by frame with no holding back.

Checks every frame against the stream header before any entropy decoding: the model
hash, frame type, and the latent size implied by width/height, so a hostile header can
never make the numba kernels read or allocate out of bounds.
"""

from __future__ import annotations

import collections

import numpy as np

from zvc69_rt.bitstream.header import HeaderFlags
from zvc69_rt.codec.bidir import BFrameCodec
from zvc69_rt.codec.colorspace import coding_colorspace
from zvc69_rt.codec.inter import DECODER_GRAPHS as P_DECODER_GRAPHS
from zvc69_rt.codec.inter import PFrameCodec
from zvc69_rt.codec.intra import IntraCodec
from zvc69_rt.codec.runtime import GRAPHS, load_runners
from zvc69_rt.errors import NotAvailableError, ZVC69FormatError
from zvc69_rt.frame import Frame
from zvc69_rt.io.color import rgb_to_yuv420
from zvc69_rt.io.padding import crop
from zvc69_rt.models.bundle import ModelBundle

FRAME_TYPE_NAMES = {0: "I", 1: "P", 2: "B", 3: "BBi"}


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
        has_inter = "inter" in self.bundle.manifest and file_header.gop_size > 1
        if runners is None:
            graphs = GRAPHS + (P_DECODER_GRAPHS if has_inter else ())
            runners, self.backend_name = load_runners(self.bundle, backend, precision, graphs)
        else:
            self.backend_name = "injected"
        self.intra = IntraCodec(self.bundle, runners)
        self.inter = PFrameCodec(self.bundle, runners) if has_inter else None
        self.bidir = BFrameCodec(self.inter) if self.inter is not None else None
        self.reorder = bool(int(file_header.flags) & HeaderFlags.HAS_B_FRAMES)
        self._reference: np.ndarray | None = None  # the last anchor (I/P) decoded
        self._past: np.ndarray | None = None  # the anchor before it: a B-frame's forward reference
        self._held: Frame | None = None  # last anchor, waiting for the B-frames displayed before it
        a = self.bundle.alignment
        self.width, self.height = file_header.width, file_header.height
        self.latent_size = (-(-self.height // a) * a // 16, -(-self.width // a) * a // 16)
        self.matrix, self.range = coding_colorspace(self.width, self.height)
        self._frames: collections.deque[Frame] = collections.deque()
        self.frames_out = 0

    def decode_rgb(self, frame_header, data: bytes | memoryview) -> np.ndarray:
        """One frame record -> padded float32 RGB [3, Hp, Wp]."""
        n = self.frames_out
        ftype = frame_header.frame_type
        if ftype not in (0, 1, 2):
            name = FRAME_TYPE_NAMES.get(ftype)
            if name is None:
                raise ZVC69FormatError(f"frame {n}: frame_type {ftype} is not one of 0..3")
            raise NotAvailableError(f"frame {n}: {name}-frames are not supported by this decoder build yet")
        if ftype in (1, 2) and (self.inter is None or self._reference is None):
            raise ZVC69FormatError(
                f"frame {n}: {FRAME_TYPE_NAMES[ftype]}-frame " + (
                    "before any I-frame" if self.inter is not None else
                    "in a stream whose header (gop_size) or model has no inter frames")
            )
        if ftype == 2 and (not self.reorder or self._past is None):
            raise ZVC69FormatError(
                f"frame {n}: B-frame " + ("in a stream whose header has no HAS_B_FRAMES flag" if not self.reorder
                                          else "without two anchors decoded before it (GOPs are closed)")
            )
        lh, lw = frame_header.latent_height, frame_header.latent_width
        if (lh, lw) != self.latent_size:
            raise ZVC69FormatError(
                f"frame {n}: latent {lh}x{lw} does not match the {self.latent_size[0]}x{self.latent_size[1]} "
                f"implied by the {self.width}x{self.height} stream"
            )
        if not 0 <= frame_header.quality_level <= 100:
            raise ZVC69FormatError(f"frame {n}: quality_level {frame_header.quality_level} is outside 0..100")
        try:
            if ftype == 2:
                return self.bidir.decompress(data, self._past, self._reference, (lh, lw),
                                             frame_header.quality_level)
            if ftype == 1:
                rgb = self.inter.decompress(data, self._reference, (lh, lw), frame_header.quality_level)
            else:
                rgb = self.intra.decompress(data, (lh, lw), frame_header.quality_level)
        except ZVC69FormatError as exc:
            if ftype != 2:  # a broken reference must not feed later P/B-frames
                self._reference = self._past = None
            raise type(exc)(f"frame {n}: {exc}") from exc
        if self.inter is not None:
            # closed GOPs: B-frames after an I-frame never reach back into the previous GOP
            self._past = self._reference if ftype == 1 else None
            self._reference = rgb
        return rgb

    def send_packet(self, frame_header=None, data: bytes | memoryview | None = None) -> None:
        """Decode one frame record; ``send_packet(None)`` marks the end of the stream."""
        if frame_header is None:
            if self._held is not None:
                self._frames.append(self._held)
                self._held = None
            return
        rgb = self.decode_rgb(frame_header, data)
        frame = rgb_to_yuv420(crop(rgb, (self.height, self.width)), matrix=self.matrix, range=self.range)
        frame.pts = frame_header.pts
        self.frames_out += 1
        if not self.reorder or frame_header.frame_type == 2:
            self._frames.append(frame)
            return
        if self._held is not None:
            self._frames.append(self._held)
        self._held = frame

    def receive_frame(self) -> Frame | None:
        return self._frames.popleft() if self._frames else None
