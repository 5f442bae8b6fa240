"""Generic rate-distortion runner: sweep a codec callable over qualities, measure every output.

Codecs are plain callables, so the reference codecs and ZVC69 go through exactly the
same measurement code:

- image: ``codec(rgb_uint8[H, W, 3], quality) -> (num_bits, recon_rgb_uint8)``
- video: ``codec(frames: list[Frame], quality) -> (num_bits, recon_frames)``

Averaging: an image RD point is the mean over images of bpp, PSNR and MS-SSIM (the
CompressAI / Kodak convention). A video RD point is per clip: kbps from the total bits
and the clip duration, quality the mean over frames of the per-frame PSNR-Y / PSNR-YUV
(6:1:1) / luma MS-SSIM (the JVET convention). An infinite per-frame PSNR (lossless
frame) is capped at 100 dB before averaging so a mean stays finite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from zvc69_rt.errors import InputError
from zvc69_rt.eval import metrics
from zvc69_rt.eval.bdrate import bd_psnr, bd_rate
from zvc69_rt.eval.color import luma
from zvc69_rt.frame import Frame

PSNR_CAP = 100.0


def _cap(x: float) -> float:
    return min(x, PSNR_CAP)


@dataclass
class RDPoint:
    """One quality setting of one codec. Image points use bpp; video points also kbps."""

    codec: str
    quality: float
    bits: int
    bpp: float
    psnr_rgb: float | None = None
    psnr_y: float | None = None
    psnr_yuv: float | None = None
    ms_ssim: float | None = None
    kbps: float | None = None
    seconds: float = 0.0
    items: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RDPoint:
        return cls(**d)


def _check_recon_rgb(ref: np.ndarray, recon: np.ndarray, name: str, q: float, label: str) -> None:
    if not isinstance(recon, np.ndarray) or recon.dtype != np.uint8 or recon.shape != ref.shape:
        raise InputError(
            f"codec {name} at quality {q} on {label}: reconstruction is "
            f"{getattr(recon, 'dtype', type(recon))}{list(getattr(recon, 'shape', []))}, "
            f"expected uint8{list(ref.shape)}"
        )


def _check_bits(bits: object, name: str, q: float) -> int:
    if not isinstance(bits, (int, np.integer)) or int(bits) <= 0:
        raise InputError(f"codec {name} at quality {q}: num_bits must be a positive int, got {bits!r}")
    return int(bits)


def evaluate_image_codec(
    codec: Callable[[np.ndarray, int], tuple[int, np.ndarray]],
    images: Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]],
    qualities: Sequence[float],
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[RDPoint]:
    """One RDPoint per quality: mean bpp, PSNR-RGB, PSNR-Y (BT.601 luma), RGB MS-SSIM."""
    name = name or getattr(codec, "__name__", "codec")
    named = [(it if isinstance(it, tuple) else (f"image{i}", it)) for i, it in enumerate(images)]
    if not named:
        raise InputError("evaluate_image_codec: no images")
    if not qualities:
        raise InputError("evaluate_image_codec: no qualities")
    points = []
    for q in qualities:
        t0 = time.perf_counter()
        items = []
        for label, rgb in named:
            if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                raise InputError(f"evaluate_image_codec: image {label} must be uint8 [H, W, 3]")
            bits, recon = codec(rgb, q)
            bits = _check_bits(bits, name, q)
            _check_recon_rgb(rgb, recon, name, q, label)
            h, w = rgb.shape[:2]
            items.append(
                {
                    "image": label,
                    "bits": bits,
                    "bpp": bits / (h * w),
                    "psnr_rgb": _cap(metrics.psnr(rgb, recon)),
                    "psnr_y": _cap(metrics.mse_to_psnr(float(np.mean((luma(rgb) - luma(recon)) ** 2)))),
                    "ms_ssim": metrics.ms_ssim(rgb, recon),
                }
            )
        pt = RDPoint(
            codec=name,
            quality=q,
            bits=sum(it["bits"] for it in items),
            bpp=float(np.mean([it["bpp"] for it in items])),
            psnr_rgb=float(np.mean([it["psnr_rgb"] for it in items])),
            psnr_y=float(np.mean([it["psnr_y"] for it in items])),
            ms_ssim=float(np.mean([it["ms_ssim"] for it in items])),
            seconds=time.perf_counter() - t0,
            items=items,
        )
        if progress:
            progress(f"{name} q={q}: {pt.bpp:.3f} bpp, {pt.psnr_rgb:.2f} dB, MS-SSIM {pt.ms_ssim:.4f}")
        points.append(pt)
    return points


def evaluate_video_codec(
    codec: Callable[[list[Frame], int], tuple[int, list[Frame]]],
    frames: Sequence[Frame],
    qualities: Sequence[float],
    fps: float = 25.0,
    name: str | None = None,
    clip: str = "clip",
    progress: Callable[[str], None] | None = None,
) -> list[RDPoint]:
    """One RDPoint per quality on one clip: kbps, bpp, mean PSNR-Y / PSNR-YUV / luma MS-SSIM."""
    name = name or getattr(codec, "__name__", "codec")
    frames = list(frames)
    if not frames:
        raise InputError("evaluate_video_codec: no frames")
    if not qualities:
        raise InputError("evaluate_video_codec: no qualities")
    if fps <= 0:
        raise InputError(f"evaluate_video_codec: fps must be > 0, got {fps}")
    for f in frames:
        f.validate()
    w, h = frames[0].width, frames[0].height
    points = []
    for q in qualities:
        t0 = time.perf_counter()
        bits, recon = codec(list(frames), q)
        bits = _check_bits(bits, name, q)
        recon = list(recon)
        if len(recon) != len(frames):
            raise InputError(f"codec {name} at quality {q}: returned {len(recon)} frames for {len(frames)}")
        per = []
        for i, (ref, rec) in enumerate(zip(frames, recon)):
            py, pu, pv = metrics.psnr_frame(ref, rec)
            py, pu, pv = _cap(py), _cap(pu), _cap(pv)
            per.append(
                {
                    "frame": i,
                    "psnr_y": py,
                    "psnr_yuv": (6 * py + pu + pv) / 8,
                    "ms_ssim": metrics.ms_ssim(ref.y, rec.y),
                }
            )
        seconds = len(frames) / fps
        pt = RDPoint(
            codec=name,
            quality=q,
            bits=bits,
            bpp=bits / (w * h * len(frames)),
            kbps=bits / seconds / 1000.0,
            psnr_y=float(np.mean([p["psnr_y"] for p in per])),
            psnr_yuv=float(np.mean([p["psnr_yuv"] for p in per])),
            ms_ssim=float(np.mean([p["ms_ssim"] for p in per])),
            seconds=time.perf_counter() - t0,
            items=[{"clip": clip, "frames": per}],
        )
        if progress:
            progress(f"{name} {clip} q={q}: {pt.kbps:.1f} kbps, PSNR-YUV {pt.psnr_yuv:.2f} dB")
        points.append(pt)
    return points


def curve(points: Sequence[RDPoint], metric: str, rate: str = "bpp") -> tuple[list[float], list[float]]:
    """(rates, qualities) of a codec's points; ``metric`` ms_ssim is returned in dB."""
    rs, qs = [], []
    for p in points:
        v = getattr(p, metric)
        if v is None:
            raise InputError(f"curve: point {p.codec} q={p.quality} has no {metric}")
        rs.append(getattr(p, rate))
        qs.append(metrics.ms_ssim_db(v) if metric == "ms_ssim" else v)
    return rs, qs


def bd_summary(
    anchor: Sequence[RDPoint], test: Sequence[RDPoint], metric: str, rate: str = "bpp"
) -> dict[str, float | None]:
    """BD-rate (%) on ``metric`` and on MS-SSIM (dB), and BD-PSNR, of test vs anchor.

    A value that cannot be computed (curves that do not overlap) is None, with the
    reason under ``*_error``, so one bad pair never aborts a whole table.
    """
    out: dict[str, float | None] = {}
    for key, m, fn in (
        ("bd_rate", metric, bd_rate),
        ("bd_rate_msssim", "ms_ssim", bd_rate),
        ("bd_psnr", metric, bd_psnr),
    ):
        try:
            ra, qa = curve(anchor, m, rate)
            rt, qt = curve(test, m, rate)
            v = fn(ra, qa, rt, qt)
            out[key] = v if math.isfinite(v) else None
        except InputError as exc:
            out[key] = None
            out[f"{key}_error"] = str(exc)  # type: ignore[assignment]
    return out
