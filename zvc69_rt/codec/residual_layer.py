"""I-frame residual layer: the P-frame residual coder run on the I-frame's own reconstruction.

The intra transforms saturate at high rates (the N=64 synthesis' ceiling, docs/TRAINING.md):
on held-out photos the top quality levels add ~0.3 dB per 25 % more bits. The P model's
residual coder (latent at H/8, its synthesis conditioned on the prediction) refines a picture
far more cheaply there, so an I-frame may carry a second layer: the residual of the picture
against the intra reconstruction, coded as a zero-motion P-frame residual::

    x --intra (analysis, entropy, synthesis)--> x_I --------------------------+
    x, x_I --residual_analysis(cur=x, pred=x_I)--> y_r --entropy--> layer     |
    layer --entropy--> y_r_hat --residual_synthesis(pred=x_I)--> x_hat <------+

Frame data of an I-frame with FrameFlags.RESIDUAL_LAYER (docs/FORMAT.md)::

    u32 LE n | n bytes: the I-frame's data | u8: the layer's quality 0..100
             | residual flag 1 (coded), 3 (half size) or 4 (quarter size) + payloads, as a P-frame's

The layer is full size (the frame's padded size) also under REDUCED_RES, whose upsampled
picture is its prediction. The encoder adds a layer only where it lowers the frame's
lambda * MSE + bits at the frame's quality (Encoder.code_intra); decoding needs the bundle's
P-frame residual graphs.
"""

from __future__ import annotations

import struct

import numpy as np

from zvc69_rt.codec.inter import (
    RESIDUAL_CODED,
    RESIDUAL_CODED_HALF,
    RESIDUAL_CODED_QUARTER,
    PFrameAnalysis,
    PFrameCodec,
)
from zvc69_rt.codec.motion import CodedMotion, MotionPrecision
from zvc69_rt.errors import ZVC69FormatError

GRAPHS = ("residual_analysis", "residual_hyper_synthesis", "residual_synthesis")  # encoder side
DECODER_GRAPHS = ("residual_hyper_synthesis", "residual_synthesis")
LAYER_FLAGS = (RESIDUAL_CODED, RESIDUAL_CODED_HALF, RESIDUAL_CODED_QUARTER)
#: The layer's quality relative to the frame's, tried in this order (Encoder.code_intra):
#: measured on the held-out photos, the layer at the frame's own quality was the one chosen.
QUALITY_STEPS = (0,)
_LENGTH = struct.Struct("<I")


def zero_motion(padded_size: tuple[int, int]) -> CodedMotion:
    """The motion field of a layer: none (the prediction is the I-frame itself)."""
    h, w = padded_size
    return CodedMotion(np.zeros((2, h // 4, w // 4), np.int32), MotionPrecision.QUARTER_PEL)


def join(intra_data: bytes, quality: int, residual: bytes) -> bytes:
    """The frame data of an I-frame with a layer (residual: the flag and payloads)."""
    if not 0 <= quality <= 100 or not residual or residual[0] not in LAYER_FLAGS:
        raise ValueError("a residual layer needs a quality 0..100 and a coded residual")
    return _LENGTH.pack(len(intra_data)) + intra_data + bytes((quality,)) + residual


def split(data: bytes | memoryview, where: str) -> tuple[memoryview, int, memoryview]:
    """(the I-frame's data, the layer's quality, the residual flag and payloads), checked."""
    view = memoryview(data)
    if len(view) < _LENGTH.size:
        raise ZVC69FormatError(f"{where}: residual layer: {len(view)} bytes, too short for its length field")
    (n,) = _LENGTH.unpack_from(view, 0)
    end = _LENGTH.size + n
    if end + 2 > len(view):
        raise ZVC69FormatError(f"{where}: residual layer: the I-frame part claims {n} bytes, but only "
                               f"{len(view) - _LENGTH.size} follow (with the layer's quality and flag: truncated "
                               "or corrupt)")
    quality, flag = view[end], view[end + 1]
    if quality > 100:
        raise ZVC69FormatError(f"{where}: residual layer: quality {quality} is outside 0..100")
    if flag not in LAYER_FLAGS:
        raise ZVC69FormatError(f"{where}: residual layer: flag {flag} is not 1 (coded), 3 (half size) or "
                               "4 (quarter size)")
    return view[_LENGTH.size:end], quality, view[end + 1:]


def encode(codec: PFrameCodec, x: np.ndarray, recon: np.ndarray, quality: int) -> tuple[bytes, np.ndarray] | None:
    """The layer of picture x [3, Hp, Wp] over the I-frame's reconstruction, as the P-frame
    coder chooses it at this quality (plain, half or quarter size; with its hyper-latent
    search and refinement where configured): (residual flag + payloads, refined
    reconstruction), or None where the coder would skip it."""
    a = codec.analyse_residual(PFrameAnalysis(cur=x, motion=zero_motion(x.shape[1:]), pred=recon, quality=quality))
    data, out = codec.code_residual_improved(a)
    return (data, out) if data[0] in LAYER_FLAGS else None

def decode(codec: PFrameCodec, residual: memoryview, recon: np.ndarray, quality: int, where: str) -> np.ndarray:
    """The refined picture from the I-frame's reconstruction and the layer's residual bytes."""
    latent = (recon.shape[1] // 16, recon.shape[2] // 16)
    parsed = codec.parse_residual(residual, 0, latent, f"{where}: residual layer", zero_motion(recon.shape[1:]))
    return codec.reconstruct(parsed, recon, quality)
