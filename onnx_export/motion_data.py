"""Training pairs for the P-frame model: synthetic camera motion with known flow over the
training photos, and real consecutive frames of Big Buck Bunny (no ground-truth flow).

Only training data (onnx_export.data.training_images / bbb_frames) is used; the held-out
photos and bikes.mp4 are never read here.

Flow convention everywhere: backward flow, cur(p) = ref(p + flow(p)), in pixels (dx, dy).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def _sample(src: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Bilinear sample src [3,Hs,Ws] at pixel coordinates px/py [S,S] (pixel centres at integers)."""
    hs, ws = src.shape[1:]
    grid = torch.stack(((2 * px + 1) / ws - 1, (2 * py + 1) / hs - 1), -1)[None]
    return F.grid_sample(src[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


class SyntheticMotion:
    """Random pan / zoom / rotation of a photo crop: (ref, cur, flow) with exact flow."""

    def __init__(self, images: list[np.ndarray], size: int = 128, seed: int = 0,
                 max_shift: float = 12.0, max_zoom: float = 0.06, max_rot_deg: float = 3.0):
        self.images = [i for i in images if min(i.shape[:2]) >= size + 2 * int(max_shift) + 8]
        if not self.images:
            raise ValueError(f"no training picture is large enough for {size} px crops")
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.max_shift, self.max_zoom, self.max_rot = max_shift, max_zoom, math.radians(max_rot_deg)
        w = np.array([math.sqrt(i.shape[0] * i.shape[1]) for i in self.images])
        self.p = w / w.sum()

    def sample_one(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng, s = self.rng, self.size
        img = self.images[rng.choice(len(self.images), p=self.p)]
        h, w = img.shape[:2]
        # magnitude mix: static, slow and fast motion
        kind = rng.random()
        amp = 0.0 if kind < 0.1 else (0.25 if kind < 0.45 else 1.0)
        tx, ty = rng.uniform(-1, 1, 2) * self.max_shift * amp
        zoom = 1 + rng.uniform(-1, 1) * self.max_zoom * amp
        rot = rng.uniform(-1, 1) * self.max_rot * amp
        a = zoom * np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
        margin = int(s * 0.6 + self.max_shift) + 2
        cy = rng.uniform(margin, h - margin) if h > 2 * margin else h / 2
        cx = rng.uniform(margin, w - margin) if w > 2 * margin else w / 2
        y0, x0 = int(max(cy - margin, 0)), int(max(cx - margin, 0))
        crop = _to_tensor(img[y0 : y0 + 2 * margin, x0 : x0 + 2 * margin])
        cy, cx = cy - y0, cx - x0
        yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32) - s / 2 + 0.5,
                                torch.arange(s, dtype=torch.float32) - s / 2 + 0.5, indexing="ij")
        ref = _sample(crop, xx + cx, yy + cy)
        ux = float(a[0, 0]) * xx + float(a[0, 1]) * yy + tx
        uy = float(a[1, 0]) * xx + float(a[1, 1]) * yy + ty
        cur = _sample(crop, ux + cx, uy + cy)
        flow = torch.stack((ux - xx, uy - yy))
        if rng.random() < 0.5:  # brightness drift, as real footage has
            cur = (cur * rng.uniform(0.95, 1.05)).clamp(0, 1)
        return ref, cur, flow


class VideoPairs:
    """Consecutive (or one-apart) real frames, random co-located crops, random flips."""

    def __init__(self, frames: list[np.ndarray], size: int = 128, seed: int = 0):
        self.frames = [f for f in frames if min(f.shape[:2]) >= size]
        if len(self.frames) < 3:
            raise ValueError("need at least 3 video frames")
        self.size = size
        self.rng = np.random.default_rng(seed + 1)

    def sample_one(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng, s = self.rng, self.size
        i = int(rng.integers(0, len(self.frames) - 2))
        j = i + int(rng.integers(1, 3))
        a, b = self.frames[i], self.frames[j]
        if rng.random() < 0.5:
            a, b = b, a
        h, w = a.shape[:2]
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        ref, cur = _to_tensor(a[y : y + s, x : x + s]), _to_tensor(b[y : y + s, x : x + s])
        if rng.random() < 0.5:
            ref, cur = ref.flip(2), cur.flip(2)
        return ref, cur


def video_frames(scale: int = 2) -> list[np.ndarray]:
    """All Big Buck Bunny frames (training clip), downscaled by `scale`."""
    from onnx_export.data import _downscale, bbb_frames

    frames = bbb_frames(step=1)
    return [_downscale(f, scale) if scale > 1 else f for f in frames]


class MotionBatchSampler:
    """Batches mixing synthetic (known flow) and real pairs.

    sample(batch) -> dict(ref, cur [B,3,S,S], flow [B,2,S,S] (zeros where unknown),
    has_flow [B] bool). The reference is lightly noised to stand in for a decoded frame.
    """

    def __init__(self, photos: list[np.ndarray], frames: list[np.ndarray], size: int = 128,
                 seed: int = 0, real_fraction: float = 0.4, ref_noise: float = 2.0 / 255,
                 max_shift: float = 12.0):
        self.synthetic = SyntheticMotion(photos, size, seed, max_shift=max_shift)
        self.video = VideoPairs(frames, size, seed) if len(frames) >= 3 else None
        self.rng = np.random.default_rng(seed + 2)
        self.real_fraction = real_fraction if self.video else 0.0
        self.ref_noise = ref_noise
        self.size = size

    def state(self) -> list:
        return [self.synthetic.rng.bit_generator.state, self.rng.bit_generator.state,
                self.video.rng.bit_generator.state if self.video else None]

    def set_state(self, st: list) -> None:
        self.synthetic.rng.bit_generator.state = st[0]
        self.rng.bit_generator.state = st[1]
        if self.video and st[2] is not None:
            self.video.rng.bit_generator.state = st[2]

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        s = self.size
        ref = torch.empty(batch, 3, s, s)
        cur = torch.empty(batch, 3, s, s)
        flow = torch.zeros(batch, 2, s, s)
        has = torch.zeros(batch, dtype=torch.bool)
        for b in range(batch):
            if self.rng.random() < self.real_fraction:
                ref[b], cur[b] = self.video.sample_one()
            else:
                ref[b], cur[b], flow[b] = self.synthetic.sample_one()
                has[b] = True
        sigma = torch.from_numpy(self.rng.uniform(0, self.ref_noise, batch)).float()[:, None, None, None]
        noise = torch.from_numpy(self.rng.standard_normal(ref.shape, dtype=np.float32))  # own RNG: reproducible
        ref = (ref + noise * sigma).clamp(0, 1)
        return {"ref": ref, "cur": cur, "flow": flow, "has_flow": has}
