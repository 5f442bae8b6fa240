"""B-frame coding: a blend of forward and backward motion-compensated predictions, plus a
coded (or skipped) residual. Reuses the P-frame graphs; layout in docs/INTER.md.

    past anchor recon  --motion (fwd)--> pred0 --+
                                                 +--> blend by 16x16 block mode --> pred
    future anchor recon --motion (bwd)--> pred1 -+     (-1 forward, 0 average, +1 backward)
    [cur - pred, pred] --P residual coder--> residual, or skipped

    frame data = fwd motion data || bwd motion data || blend map || residual flag [+ payloads]
    blend map  = 1 byte: Gaussian table row of the block modes, or 255 = every block averages
                 [ZVCP Gaussian payload, shape [1, H/16, W/16], symbols in {-1, 0, +1}]

Each direction's motion data carries its own bicubic flag (as a P-frame's); the encoder
tries the bicubic warp once for the chosen pair at full effort (BFrameCodec.encode).

Plain B-frames (frame type 2) are not references: nothing predicts from them, so they
cannot cause drift; BBi frames (type 3) are, and are closed-loop like P-frames. The blend
is plain float32 arithmetic ((p0 + p1) * 0.5, exact IEEE operations in numpy), identical
in encoder and decoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from zvc69_rt import entropy
from zvc69_rt.codec.inter import CUBIC_GRAPH, ParsedPFrame, PFrameAnalysis, PFrameCodec
from zvc69_rt.codec.motion import CodedMotion, choose_row, decode_motion, encode_motion
from zvc69_rt.errors import EntropyDecodeError, InputError, ZVC69FormatError

BLOCK = 16  # blend-mode block size in pixels: one mode per latent cell
ALL_AVERAGE = 255  # blend byte: no payload, every block averages
FORWARD, AVERAGE, BACKWARD = -1, 0, 1
#: A one-sided prediction must beat the average by this factor (the average is the cheap,
#: noise-reducing default).
ONE_SIDED_GAIN = 0.9


@dataclass
class BFrameAnalysis:
    p: PFrameAnalysis  # cur, blended pred and residual latents (motion unused)
    forward: CodedMotion
    backward: CodedMotion
    modes: np.ndarray  # int32 [1, H/16, W/16]


@dataclass
class ParsedBFrame:
    residual: ParsedPFrame  # its motion is the forward one
    backward: CodedMotion
    modes: np.ndarray


def block_modes(cur: np.ndarray, pred0: np.ndarray, pred1: np.ndarray,
                visible_size: tuple[int, int] | None = None) -> np.ndarray:
    """Per 16x16 block: the prediction (forward, average, backward) with least squared error
    over the visible pixels (blocks wholly in the padding average: the cheapest mode to code)."""
    _, h, w = cur.shape
    avg = blend(pred0, pred1, np.zeros((1, h // BLOCK, w // BLOCK), np.int32))
    vh, vw = visible_size or (h, w)

    def sse(p: np.ndarray) -> np.ndarray:
        e = np.square(cur - p, dtype=np.float64).sum(0)
        e[vh:, :] = 0
        e[:, vw:] = 0
        return e.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum(axis=(1, 3))

    e0, e1, ea = sse(pred0), sse(pred1), sse(avg)
    modes = np.zeros((h // BLOCK, w // BLOCK), np.int32)
    modes[(e0 < ONE_SIDED_GAIN * ea) & (e0 <= e1)] = FORWARD
    modes[(e1 < ONE_SIDED_GAIN * ea) & (e1 < e0)] = BACKWARD
    return modes[None]


def blend(pred0: np.ndarray, pred1: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Blended prediction float32 [3, H, W] from block modes [1, H/16, W/16]."""
    m = np.repeat(np.repeat(modes[0], BLOCK, axis=0), BLOCK, axis=1)[None]
    avg = (pred0.astype(np.float32) + pred1.astype(np.float32)) * np.float32(0.5)
    return np.where(m == FORWARD, pred0, np.where(m == BACKWARD, pred1, avg)).astype(np.float32)


def encode_modes(modes: np.ndarray, num_slices: int | None = None) -> bytes:
    if not modes.any():
        return bytes((ALL_AVERAGE,))
    row, _ = choose_row(modes)
    index = np.full(modes.shape, row, dtype=np.uint8)
    return bytes((row,)) + entropy.encode_gaussian(modes.astype(np.int32), index, num_slices=num_slices or 1)


def decode_modes(view: memoryview, pos: int, shape: tuple[int, int, int], where: str) -> tuple[np.ndarray, int]:
    if pos >= len(view):
        raise ZVC69FormatError(f"{where}: blend byte missing after {pos} bytes of motion data")
    row = view[pos]
    pos += 1
    if row == ALL_AVERAGE:
        return np.zeros(shape, np.int32), pos
    if row >= entropy.NUM_SCALES:
        raise ZVC69FormatError(f"{where}: blend row {row} is not a scale row (0..63) nor 255")
    try:
        size = entropy.payload_size(view, pos)
        modes = entropy.decode_gaussian(view[pos : pos + size], np.full(shape, row, dtype=np.uint8))
    except EntropyDecodeError as exc:
        raise EntropyDecodeError(f"{where}: blend payload: {exc}") from exc
    if modes.min() < FORWARD or modes.max() > BACKWARD:
        raise ZVC69FormatError(f"{where}: a blend mode is outside -1..1 (corrupt blend map)")
    return modes, pos + size


class BFrameCodec:
    """B-frames on top of a PFrameCodec's graphs and residual coder."""

    def __init__(self, pcodec: PFrameCodec):
        self.p = pcodec

    # -- encoder -------------------------------------------------------------------
    def analyse(self, cur: np.ndarray, ref0: np.ndarray, ref1: np.ndarray, quality: int) -> BFrameAnalysis:
        """cur, ref0 (past anchor, decoded), ref1 (future anchor, decoded): float32 [3, H, W]."""
        if not (cur.shape == ref0.shape == ref1.shape) or cur.ndim != 3 or cur.shape[0] != 3:
            raise InputError(f"B-frame: cur {cur.shape}, refs {ref0.shape}/{ref1.shape} must all be [3, H, W]")
        if cur.shape[1] % 64 or cur.shape[2] % 64:
            raise InputError(f"B-frame: {cur.shape[2]}x{cur.shape[1]} is not padded to a multiple of 64")
        cur = cur.astype(np.float32, copy=False)
        fwd, pred0 = self.p.choose_motion(cur, ref0, quality)
        bwd, pred1 = self.p.choose_motion(cur, ref1, quality)
        return self._analyse_with(cur, fwd, pred0, bwd, pred1, quality)

    def _analyse_with(self, cur: np.ndarray, fwd: CodedMotion, pred0: np.ndarray, bwd: CodedMotion,
                      pred1: np.ndarray, quality: int) -> BFrameAnalysis:
        modes = block_modes(cur, pred0, pred1, self.p.visible_size)
        a = PFrameAnalysis(cur=cur, motion=fwd, pred=blend(pred0, pred1, modes), quality=quality)
        return BFrameAnalysis(self.p.analyse_residual(a), fwd, bwd, modes)

    def encode(self, cur: np.ndarray, ref0: np.ndarray, ref1: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        """analyse + code; at full effort (several RD candidates) with a bundle that has the
        bicubic warp, the chosen fields are coded again with it in both directions and the
        cheaper lambda * MSE + bits/pixel is kept, as PFrameCodec.encode does for P-frames
        (the motion data already carries the flag per direction). (frame data, reconstruction)."""
        a = self.analyse(cur, ref0, ref1, quality)
        data, recon = self.code(a)
        fwd, bwd = a.forward, a.backward
        if self.p.rd_candidates <= 1 or CUBIC_GRAPH not in self.p.runners or (fwd.is_zero and bwd.is_zero):
            return data, recon
        cur = a.p.cur
        sharp = [m if m.is_zero else dataclasses.replace(m, cubic=True) for m in (fwd, bwd)]
        b = self._analyse_with(cur, sharp[0], self.p.predict(ref0, sharp[0]), sharp[1],
                               self.p.predict(ref1, sharp[1]), quality)
        data2, recon2 = self.code(b)
        if self.p.rd_cost(cur, data2, recon2, quality) < self.p.rd_cost(cur, data, recon, quality):
            return data2, recon2
        return data, recon

    def code(self, a: BFrameAnalysis) -> tuple[bytes, np.ndarray]:
        """(frame data, reconstruction)."""
        n = self.p.num_slices
        head = encode_motion(a.forward, n) + encode_motion(a.backward, n) + encode_modes(a.modes, n)
        data, recon = self.p.code_residual(a.p)
        return head + data, recon

    # -- decoder -------------------------------------------------------------------
    def parse(self, data: bytes | memoryview, latent_hw: tuple[int, int], where: str = "B-frame") -> ParsedBFrame:
        lh, lw = latent_hw
        if lh <= 0 or lw <= 0 or lh % 2 or lw % 2:
            raise ZVC69FormatError(f"{where}: latent {lh}x{lw} is not a positive multiple of 2")
        view = memoryview(data)
        fwd, pos = decode_motion(view, 0, (lh * 4, lw * 4), f"{where} forward")
        bwd, used = decode_motion(view, pos, (lh * 4, lw * 4), f"{where} backward")
        modes, pos = decode_modes(view, pos + used, (1, lh, lw), where)
        return ParsedBFrame(self.p.parse_residual(view, pos, latent_hw, where, fwd), bwd, modes)

    def synthesise(self, parsed: ParsedBFrame, ref0: np.ndarray, ref1: np.ndarray, quality: int) -> np.ndarray:
        lh, lw = parsed.modes.shape[1:]
        if not ref0.shape == ref1.shape == (3, lh * BLOCK, lw * BLOCK):
            raise InputError(f"B-frame: references {list(ref0.shape)}/{list(ref1.shape)}, the frame is "
                             f"[3, {lh * BLOCK}, {lw * BLOCK}]")
        pred = blend(self.p.predict(ref0, parsed.residual.motion), self.p.predict(ref1, parsed.backward),
                     parsed.modes)
        return self.p.reconstruct(parsed.residual, pred, quality)

    def decompress(self, data: bytes | memoryview, ref0: np.ndarray, ref1: np.ndarray,
                   latent_hw: tuple[int, int], quality: int) -> np.ndarray:
        return self.synthesise(self.parse(data, latent_hw), ref0, ref1, quality)
