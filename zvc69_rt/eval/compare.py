"""Ship checks: BD-rate of one eval run's curves against another's, per clip or image.

``zvc69 eval video|images`` writes every point to ``video.json`` / ``images.json``. To
decide whether a new model (or encoder setting) ships, run the same command with
``--model CAND`` and compare the two files here, rather than re-running the anchor:
ONNX Runtime on the CPU is deterministic for one machine type, so a committed anchor
run is as good as a fresh one and saves half the time.

    base.json ──┐                       per clip / image: bd_summary(base pts, cand pts)
                ├─ check same settings ─> mean over clips (video) or mean curve (images)
    cand.json ──┘

Runs with different settings (GOP, frame count, clip sizes, image sizes) are refused:
their BD-rates would measure the settings, not the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from zvc69_rt.errors import InputError
from zvc69_rt.eval.rd import RDPoint, bd_summary

#: Settings that must agree between the two video runs.
VIDEO_SETTINGS = ("gop", "bframes", "fps")


def load_run(path: str | Path) -> dict:
    """An eval ``video.json`` / ``images.json``, checked enough to compare."""
    p = Path(path)
    try:
        run = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file (give a video.json or images.json written by zvc69 eval)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a readable eval JSON file ({exc})") from None
    if not isinstance(run, dict) or run.get("kind") not in ("video", "images") or not isinstance(
            run.get("results"), dict):
        raise InputError(f"{p}: not a zvc69 eval video.json / images.json (no 'kind' and 'results')")
    return run


def _points(raw: list[dict], where: str) -> list[RDPoint]:
    try:
        return [RDPoint.from_dict(d) for d in raw]
    except (TypeError, AttributeError) as exc:
        raise InputError(f"{where}: malformed RD point ({exc})") from None


def _sizes(items: list[dict], key: str) -> dict[str, tuple]:
    try:
        return {d["name"]: tuple(d.get(k) for k in key.split(",")) for d in items}
    except (KeyError, TypeError, AttributeError):
        raise InputError("malformed eval JSON: its clip/image list lacks names") from None


def compare_runs(base: dict, cand: dict, codec: str = "ZVC69", cand_codec: str | None = None) -> dict:
    """BD rows of ``cand_codec`` in ``cand`` against ``codec`` in ``base``.

    Returns ``{"kind", "rows": [{"name", "bd_rate", "bd_rate_msssim", "bd_psnr"}...],
    "mean": {...}, "only_base": [...], "only_cand": [...]}``; ``mean`` for video is the
    mean of the per-clip values (the convention of ``zvc69 eval video``), for images the
    BD-rate of the mean curves (that of ``zvc69 eval images``).
    """
    cand_codec = cand_codec or codec
    kind = base["kind"]
    if cand["kind"] != kind:
        raise InputError(f"cannot compare a {kind} run with a {cand['kind']} run")
    if kind == "video":
        for key in VIDEO_SETTINGS:
            if base.get(key) != cand.get(key):
                raise InputError(f"the runs differ in {key} ({base.get(key)} vs {cand.get(key)}): "
                                 "rerun the candidate with the anchor's command and --model")
        sb, sc = _sizes(base.get("clips", []), "width,height,frames"), _sizes(cand.get("clips", []),
                                                                              "width,height,frames")
        metric, rate = "psnr_yuv", "kbps"
    else:
        sb, sc = _sizes(base.get("images", []), "width,height"), _sizes(cand.get("images", []), "width,height")
        metric, rate = "psnr_rgb", "bpp"
    common = [n for n in sb if n in sc]
    for n in common:
        if sb[n] != sc[n]:
            raise InputError(f"{n} differs between the runs ({sb[n]} vs {sc[n]}): same --max-size/--frames needed")
    if not common:
        raise InputError("the runs share no clip or image")

    def series(run: dict, name: str, which: str) -> list[RDPoint]:
        if kind == "video":
            raw = (run["results"].get(name) or {}).get(which)
        else:
            raw = run["results"].get(which)
        if not raw:
            raise InputError(f"{name}: no {which} points in one of the runs (see --codec / --cand-codec)")
        pts = _points(raw, f"{name}/{which}")
        return pts if kind == "video" else image_points(pts, name)

    rows = []
    for n in common:
        rows.append({"name": n, **bd_summary(series(base, n, codec), series(cand, n, cand_codec), metric, rate)})
    if kind == "video":
        mean = {"name": "mean over clips", **mean_bd(rows)}
    else:
        if set(common) != set(sb) or set(common) != set(sc):
            raise InputError("the image runs cover different images: their mean curves cannot be compared")
        if codec not in base["results"] or cand_codec not in cand["results"]:
            raise InputError(f"no {codec} / {cand_codec} points in the runs (see --codec / --cand-codec)")
        mean = {"name": "mean curve", **bd_summary(_points(base["results"][codec], codec),
                                                   _points(cand["results"][cand_codec], cand_codec), metric, rate)}
    return {"kind": kind, "metric": metric, "rows": rows, "mean": mean,
            "only_base": [n for n in sb if n not in sc], "only_cand": [n for n in sc if n not in sb]}


def image_points(points: list[RDPoint], image: str) -> list[RDPoint]:
    """Mean-curve image points narrowed to one image's own bits and quality."""
    out = []
    for p in points:
        it = next((it for it in p.items if it.get("image") == image), None)
        if it is None:
            raise InputError(f"{image}: missing from a point of {p.codec} q={p.quality}")
        out.append(RDPoint(codec=p.codec, quality=p.quality, bits=it["bits"], bpp=it["bpp"],
                           psnr_rgb=it["psnr_rgb"], psnr_y=it.get("psnr_y"), ms_ssim=it["ms_ssim"]))
    return out


def mean_bd(rows: list[dict]) -> dict:
    """Mean of each BD value over rows (clips); None where any row could not compute it."""
    out = {}
    for k in ("bd_rate", "bd_rate_msssim", "bd_psnr"):
        vals = [r[k] for r in rows]
        out[k] = None if any(v is None for v in vals) else sum(vals) / len(vals)
    return out


def markdown(result: dict, base_label: str, cand_label: str) -> str:
    """The comparison as a Markdown table (negative = the candidate needs fewer bits)."""

    def fmt(v, unit=" %"):
        return "n/a" if v is None else f"{v:+.2f}{unit}"

    label = "PSNR-YUV 6:1:1" if result["metric"] == "psnr_yuv" else "PSNR-RGB"
    lines = [f"BD-rate of {cand_label} against {base_label} (negative = fewer bits at equal quality):", "",
             (f"| {'clip' if result['kind'] == 'video' else 'image'} | BD-rate {label} | BD-rate MS-SSIM "
              "| BD-PSNR (dB) |"), "|---|---:|---:|---:|"]
    for r in [*result["rows"], result["mean"]]:
        lines.append(f"| {r['name']} | {fmt(r['bd_rate'])} | {fmt(r['bd_rate_msssim'])} | {fmt(r['bd_psnr'], '')} |")
    for key, what in (("only_base", base_label), ("only_cand", cand_label)):
        if result[key]:
            lines.append(f"\nOnly in {what} (not compared): {', '.join(result[key])}")
    return "\n".join(lines) + "\n"
