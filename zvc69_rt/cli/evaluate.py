"""`zvc69 eval images|video`: rate-distortion curves and BD-rates on held-out data.

Every codec (the PyAV/Pillow references and ZVC69) runs through the same
:mod:`zvc69_rt.eval.rd` measurement. ZVC69 is looked up lazily from
``zvc69_rt.eval.zvc69_adapter`` (``image_codec(model=None)``,
``video_codec(gop, bframes, model=None)``); if that is missing or not available, only
the reference codecs run and the report says ZVC69 is missing.

Writes into ``--out`` (default ``docs/rd/``): ``<kind>.json`` (every point, per image /
per frame, plus settings), ``<kind>.md`` (the BD-rate tables), and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

ZVC69 = "ZVC69"
IMAGE_ANCHOR = "JPEG"
VIDEO_ANCHOR = "x264-medium"


def register(sub) -> None:
    p = sub.add_parser("eval", help="rate-distortion evaluation on held-out images or video")
    kinds = p.add_subparsers(dest="eval_kind", metavar="KIND")

    pi = kinds.add_parser(
        "images", help="RD curves on held-out photos vs JPEG, WebP, x265 intra",
        description="RD curves (bpp vs PSNR-RGB and MS-SSIM) on held-out photos; BD-rates vs JPEG.",
    )
    _common(pi)
    pi.add_argument("--max-size", type=int, default=512, help="long side of each image in px (default 512)")
    pi.add_argument("--images", nargs="+", default=None, help="subset of held-out image names")
    pi.add_argument("--anneal-steps", type=int, default=0, metavar="N",
                    help="ZVC69 with `zvc69 encode --anneal-steps N` (default 0, as the encoder's default)")
    pi.add_argument("--intra-residual", action=argparse.BooleanOptionalAction, default=True,
                    help="ZVC69 with I-frame residual layers (default on, as the encoder's; --no-intra-residual: "
                    "without, as `zvc69 encode --no-intra-residual`)")
    pi.set_defaults(func=run_images)

    pv = kinds.add_parser(
        "video", help="RD curves on held-out clips vs x264, x265, SVT-AV1",
        description="RD curves (kbps vs PSNR-Y/YUV and MS-SSIM) on held-out clips; BD-rates vs x264 medium.",
    )
    _common(pv)
    pv.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    pv.add_argument("--gop", type=int, default=32, help="keyframe interval for every codec (default 32)")
    pv.add_argument("--bframes", type=int, default=0, help="B-frames, 0 = low delay IPPP (default 0)")
    pv.add_argument("--max-size", type=int, default=640, help="long side of each clip in px (default 640)")
    pv.add_argument("--fps", type=int, default=25, help="frame rate used for kbps (default 25)")
    pv.add_argument("--no-synthetic", action="store_true", help="only bikes.mp4, no synthetic camera clips")
    pv.add_argument("--extended", action="store_true",
                    help="seven held-out clips instead of three (two later stretches of bikes.mp4, motion over the "
                    "other two held-out photographs): for ship checks between models; docs/rd keeps the three")
    pv.add_argument("--variants", nargs="+", default=None, metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                    help="extra ZVC69 encoder settings on the same clips, each also compared with the default "
                    "ZVC69, e.g. p0:p_quality_offset=0 pyramid:bframes=3,b_pyramid=true")
    pv.add_argument("--training-clips", action="store_true",
                    help="tune on training clips (Big Buck Bunny, a pan and a zoom over training photos) instead of the "
                    "held-out ones: for choosing defaults, never for reporting results")
    pv.set_defaults(func=run_video)

    pd = kinds.add_parser(
        "drift", help="per-frame drift of a P-frame GOP decoded at another precision",
        description="Encode a held-out clip (bikes.mp4) low-delay with one precision's graphs, decode it "
                    "with another's; per frame: PSNR between the two decodes, PSNR vs the source, "
                    "whether every entropy-decoded symbol is identical.",
    )
    pd.add_argument("--out", default="docs/rd", help="output folder (default docs/rd): drift.json, drift.md")
    pd.add_argument("--model", default=None, help="model bundle with P-frame graphs (default: the shipped one)")
    pd.add_argument("--frames", type=int, default=32, help="frames (default 32)")
    pd.add_argument("--gop", type=int, default=32, help="keyframe interval (default 32: one GOP)")
    pd.add_argument("--level", type=int, default=5, help="quality level 1..8 (default 5)")
    pd.add_argument("--encode-precision", default="fp32", choices=("fp32", "fp16", "int8"))
    pd.add_argument("--decode-precision", default="fp16", choices=("fp32", "fp16", "int8"))
    pd.add_argument("--max-size", type=int, default=640, help="long side of the clip in px (default 640)")
    pd.add_argument("--quiet", action="store_true", help="no per-frame progress lines")
    pd.set_defaults(func=run_drift)
    pc = kinds.add_parser(
        "compare", help="BD-rate of one eval run against another (ship checks)",
        description="Compare the ZVC69 curves of two video.json or images.json files written by zvc69 eval with the "
                    "same settings (e.g. the shipped model's run and a candidate's, --model CAND): BD-rate per clip "
                    "or image and the mean; negative = the candidate needs fewer bits.",
    )
    pc.add_argument("base", help="anchor run: video.json or images.json")
    pc.add_argument("cand", help="candidate run, same kind and settings")
    pc.add_argument("--codec", default=ZVC69, help="curve taken from the anchor run (default ZVC69)")
    pc.add_argument("--cand-codec", default=None,
                    help="curve taken from the candidate run (default: --codec), e.g. a variant such as ZVC69-nozs")
    pc.add_argument("--out", default=None, help="also write the table to this Markdown file")
    pc.set_defaults(func=run_compare)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _common(p) -> None:
    p.add_argument("--out", default="docs/rd", help="output folder (default docs/rd)")
    p.add_argument("--levels", type=int, nargs="+", default=list(range(1, 9)), help="ZVC69 levels (1..8)")
    p.add_argument("--codecs", nargs="+", default=None, help="run only these codecs (names as in the table)")
    p.add_argument("--no-zvc69", action="store_true", help="reference codecs only")
    p.add_argument("--model", default=None, help="ZVC69 model bundle (default: the shipped one)")
    p.add_argument("--quiet", action="store_true", help="no per-point progress lines")


# ----------------------------------------------------------------------------- helpers


def _log(args):
    if args.quiet:
        return None
    return lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)


def _zvc69(kind: str, args):
    """The ZVC69 codec callable, or (None, reason) when it is not built/installed."""
    from zvc69_rt.errors import InputError, NotAvailableError, ZVC69Error

    if args.no_zvc69:
        return None, "disabled with --no-zvc69"
    for lvl in args.levels:
        if not 1 <= lvl <= 8:
            raise InputError(f"--levels: {lvl} is outside 1..8")
    try:
        from zvc69_rt.eval import zvc69_adapter
    except ImportError as exc:
        return None, f"zvc69_rt.eval.zvc69_adapter cannot be imported ({exc})"
    try:
        if kind == "images":
            return zvc69_adapter.image_codec(model=args.model, anneal_steps=args.anneal_steps,
                                             intra_residual=args.intra_residual), ""
        return zvc69_adapter.video_codec(args.gop, args.bframes, model=args.model), ""
    except NotAvailableError as exc:
        return None, str(exc)
    except ZVC69Error as exc:
        if args.model:  # the user named a bundle: a broken one is an error, not "missing"
            raise
        return None, f"the default model bundle cannot be used ({exc})"


def _check_codecs(args, known: list[str]) -> None:
    from zvc69_rt.errors import InputError

    unknown = sorted(set(args.codecs or []) - set(known))
    if unknown:
        raise InputError(f"--codecs: unknown {unknown}; choose from {known}")


def _wanted(args, name: str) -> bool:
    return args.codecs is None or name in args.codecs


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:+.1f}"


def _bd_rows(results: dict, anchor: str, metric: str, rate: str, variants: tuple[str, ...] = ()) -> list[dict]:
    """Rows: every codec vs the anchor, then ZVC69 vs every other codec, then each ZVC69
    variant vs the default ZVC69."""
    from zvc69_rt.eval.rd import bd_summary

    rows = []
    if anchor in results:
        for name, pts in results.items():
            if name != anchor:
                rows.append({"test": name, "anchor": anchor, **bd_summary(results[anchor], pts, metric, rate)})
    if ZVC69 in results:
        for name, pts in results.items():
            if name not in (ZVC69, anchor, *variants):
                rows.append({"test": ZVC69, "anchor": name, **bd_summary(pts, results[ZVC69], metric, rate)})
        for name in variants:
            if name in results:
                rows.append({"test": name, "anchor": ZVC69, **bd_summary(results[ZVC69], results[name], metric, rate)})
    return rows


#: EncoderConfig fields a --variants entry may set (the clip decides size and rate).
VARIANT_KEYS = ("gop", "bframes", "b_pyramid", "p_quality_offset", "b_quality_offset", "motion_aq", "precision",
                "preset", "padding", "reduced_res", "z_search", "refine_steps", "anneal_steps", "p_refine_steps",
                "intra_residual")


def parse_variants(specs: list[str] | None) -> dict[str, dict]:
    """"name:key=value,key=value" -> {"ZVC69-name": {key: value}} (values typed as EncoderConfig's)."""
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.errors import InputError

    out: dict[str, dict] = {}
    for spec in specs or []:
        name, sep, body = spec.partition(":")
        if not sep or not name or not body or not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(f"--variants {spec!r}: expected NAME:KEY=VALUE[,KEY=VALUE] (e.g. p0:p_quality_offset=0)")
        overrides = {}
        for item in body.split(","):
            key, eq, value = item.partition("=")
            if not eq or key not in VARIANT_KEYS:
                raise InputError(f"--variants {spec!r}: {item!r} is not KEY=VALUE with KEY one of {list(VARIANT_KEYS)}")
            default = getattr(EncoderConfig, key)
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise InputError(f"--variants {spec!r}: {key} must be true or false, got {value!r}")
                overrides[key] = value.lower() in ("true", "1")
            elif isinstance(default, int):
                try:
                    overrides[key] = int(value)
                except ValueError:
                    raise InputError(f"--variants {spec!r}: {key} must be an integer, got {value!r}") from None
            else:
                overrides[key] = value
        label = f"{ZVC69}-{name}"
        if label in out:
            raise InputError(f"--variants: {name!r} given twice")
        out[label] = overrides
    return out


def _md_table(rows: list[dict], metric_label: str) -> str:
    if not rows:
        return "(no BD-rates: one codec only; `zvc69 eval compare BASE.json THIS.json` compares two runs)\n"
    head = (
        f"| test | anchor | BD-rate {metric_label} | BD-rate MS-SSIM | BD-PSNR (dB) |\n"
        "|---|---|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r['test']} | {r['anchor']} | {_fmt(r['bd_rate'])} % | {_fmt(r['bd_rate_msssim'])} % "
        f"| {_fmt(r['bd_psnr'])} |\n"
        for r in rows
    )
    notes = "".join(
        f"\n- {r['test']} vs {r['anchor']}: {r[k]}" for r in rows for k in r if k.endswith("_error")
    )
    return head + body + (("\nNot computed:" + notes + "\n") if notes else "")


def _points_table(results: dict, rate: str, cols: list[str]) -> str:
    head = f"| codec | quality | {rate} | " + " | ".join(cols) + " |\n|---|---:|---:|" + "---:|" * len(cols) + "\n"
    lines = []
    for name, pts in results.items():
        for p in pts:
            vals = " | ".join(
                (f"{getattr(p, c):.4f}" if c == "ms_ssim" else f"{getattr(p, c):.2f}") for c in cols
            )
            lines.append(f"| {name} | {p.quality:g} | {getattr(p, rate):.3f} | {vals} |")
    return head + "\n".join(lines) + "\n"


def _command(args, kind: str, keys: list[str]) -> str:
    """The equivalent command line, for the report (defaults spelled out)."""
    parts = [f"zvc69 eval {kind}"]
    for k in keys:
        v = getattr(args, k, None)
        flag = "--" + k.replace("_", "-")
        if v is None or v is False:
            continue
        if v is True:
            parts.append(flag)
        elif isinstance(v, list):
            parts.append(flag + " " + " ".join(str(x) for x in v))
        else:
            parts.append(f"{flag} {v}")
    return " ".join(parts)


def _versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for mod in ("av", "PIL", "numpy", "scipy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


def _clean(o):
    """inf/nan are not JSON: write them as null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_clean(v) for v in o]
    return o


# ----------------------------------------------------------------------------- images


def _per_image_bd(results: dict, names: list[str]) -> dict[str, list[dict]]:
    """BD rows computed on each image's own curves (the mean curve can hide a bad image)."""
    from zvc69_rt.eval.compare import image_points

    return {name: _bd_rows({codec: image_points(pts, name) for codec, pts in results.items()}, IMAGE_ANCHOR,
                           "psnr_rgb", "bpp") for name in names}


def _per_image_md(per_image: dict[str, list[dict]], names: list[str]) -> str:
    if not names or not per_image[names[0]]:
        return "(no pairs)\n"
    head = "| test | anchor | " + " | ".join(names) + " |\n|---|---|" + "---:|" * len(names) + "\n"
    lines = []
    for i, r in enumerate(per_image[names[0]]):
        vals = " | ".join(f"{_fmt(per_image[n][i]['bd_rate'])} %" for n in names)
        lines.append(f"| {r['test']} | {r['anchor']} | {vals} |")
    return head + "\n".join(lines) + "\n"



def run_images(args) -> int:
    from zvc69_rt.errors import InputError
    from zvc69_rt.eval import datasets, plots, rd
    from zvc69_rt.eval import reference_codecs as rc

    t_start = time.perf_counter()
    _check_codecs(args, [*rc.IMAGE_CODECS, ZVC69])
    if args.max_size < 16:
        raise InputError(f"--max-size {args.max_size} is too small (>= 16)")
    images = datasets.eval_images(args.max_size, args.images)
    missing_wp = [n for n in datasets.EVAL_WALLPAPERS if n not in {name for name, _ in images}]
    print(
        f"eval images: {len(images)} held-out images "
        + ", ".join(f"{n} {a.shape[1]}x{a.shape[0]}" for n, a in images),
        file=sys.stderr,
    )
    if missing_wp and not args.images:
        print(f"  (not installed, skipped: {', '.join(missing_wp)})", file=sys.stderr)
    log = _log(args)
    results: dict[str, list] = {}
    for name, (codec, qs) in rc.IMAGE_CODECS.items():
        if _wanted(args, name):
            results[name] = rd.evaluate_image_codec(codec, images, qs, name=name, progress=log)
    zmsg = ""
    if _wanted(args, ZVC69):
        zcodec, zmsg = _zvc69("images", args)
        if zcodec is not None:
            results[ZVC69] = rd.evaluate_image_codec(zcodec, images, args.levels, name=ZVC69, progress=log)
        else:
            print(f"eval images: ZVC69 is missing: {zmsg}; evaluating reference codecs only", file=sys.stderr)
    rows = _bd_rows(results, IMAGE_ANCHOR, "psnr_rgb", "bpp")
    per_image = _per_image_bd(results, [n for n, _ in images])

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plots.plot_rd(results, out / "images_psnr.png", "bpp", "psnr_rgb", "Held-out photos: PSNR-RGB")
    plots.plot_rd(results, out / "images_msssim.png", "bpp", "ms_ssim", "Held-out photos: MS-SSIM (RGB)")
    elapsed = time.perf_counter() - t_start
    args.no_intra_residual = not args.intra_residual  # the command spells out what differs from the default
    cmd = _command(args, "images", ["out", "max_size", "images", "levels", "codecs", "no_zvc69", "model",
                                    "anneal_steps", "no_intra_residual"])
    md = (
        "# RD evaluation: held-out images\n\n"
        f"Command: `{cmd}` ({elapsed:.0f} s)\n\n"
        "Images: " + ", ".join(f"{n} ({a.shape[1]}x{a.shape[0]})" for n, a in images) + "\n\n"
        + (f"ZVC69 missing: {zmsg}\n\n" if ZVC69 not in results and _wanted(args, ZVC69) else "")
        + "BD-rates (negative = fewer bits than the anchor at equal quality) on the mean curve over images:\n\n"
        + _md_table(rows, "PSNR-RGB")
        + "\nBD-rate PSNR-RGB per image (same pairs):\n\n"
        + _per_image_md(per_image, [n for n, _ in images])
        + "\nPoints (means over images):\n\n"
        + _points_table(results, "bpp", ["psnr_rgb", "psnr_y", "ms_ssim"])
    )
    (out / "images.md").write_text(md)
    _write_json(
        out / "images.json",
        _clean({
            "kind": "images", "command": cmd, "seconds": elapsed, "versions": _versions(),
            "images": [{"name": n, "width": a.shape[1], "height": a.shape[0]} for n, a in images],
            "zvc69_missing": zmsg if ZVC69 not in results else None,
            "bd": rows, "bd_per_image": per_image, "results": {k: [p.to_dict() for p in v] for k, v in results.items()},
        }),
    )
    print(_md_table(rows, "PSNR-RGB"))
    print(f"wrote {out}/images.json, images.md, images_psnr.png, images_msssim.png ({elapsed:.0f} s)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- video


def run_video(args) -> int:
    from zvc69_rt.errors import InputError, NotAvailableError
    from zvc69_rt.eval import datasets, plots, rd
    from zvc69_rt.eval import reference_codecs as rc
    from zvc69_rt.eval.compare import mean_bd

    t_start = time.perf_counter()
    _check_codecs(args, [*rc.VIDEO_SETTINGS, ZVC69, *parse_variants(args.variants)])
    if not 1 <= args.frames <= 10000:
        raise InputError(f"--frames {args.frames} outside 1..10000")
    if args.gop < 1:
        raise InputError(f"--gop {args.gop} must be >= 1")
    if not 0 <= args.bframes <= 15:
        raise InputError(f"--bframes {args.bframes} outside 0..15 (ZVC69's B pyramid spans at most 15)")
    if args.max_size < 16:
        raise InputError(f"--max-size {args.max_size} is too small (>= 16)")
    variants = parse_variants(args.variants)
    if args.training_clips:
        clips = datasets.training_clips(args.frames, args.max_size)
    else:
        clips = datasets.eval_clips(args.frames, args.max_size, synthetic=not args.no_synthetic,
                                     extended=args.extended)
    print(
        "eval video: " + ", ".join(f"{n} {f[0].width}x{f[0].height}x{len(f)}" for n, f in clips)
        + f"; GOP {args.gop}, B-frames {args.bframes}" + (" (TRAINING clips: for tuning only)"
                                                             if args.training_clips else ""),
        file=sys.stderr,
    )
    log = _log(args)
    codecs = {}
    skipped = {}
    for name, (settings, qs) in rc.VIDEO_SETTINGS.items():
        if not _wanted(args, name):
            continue
        if settings.tune == "zerolatency" and args.bframes:
            skipped[name] = "zerolatency implies no B-frames; run with --bframes 0"
            continue
        try:
            codecs[name] = (rc.video_codec(settings, args.gop, args.bframes, args.fps), qs)
        except NotAvailableError as exc:
            skipped[name] = str(exc)
    zmsg = ""
    wanted_variants = {label: o for label, o in variants.items() if _wanted(args, label)}
    if _wanted(args, ZVC69) or wanted_variants:  # a variant alone runs without the default
        zcodec, zmsg = _zvc69("video", args)
        if zcodec is not None:
            if _wanted(args, ZVC69):
                codecs[ZVC69] = (zcodec, args.levels)
            from zvc69_rt.eval import zvc69_adapter

            for label, overrides in wanted_variants.items():
                settings = {"gop": args.gop, "bframes": args.bframes, **overrides}
                codecs[label] = (zvc69_adapter.video_codec(model=args.model, **settings), args.levels)
        else:
            print(f"eval video: ZVC69 is missing: {zmsg}; evaluating reference codecs only", file=sys.stderr)
    for name, why in skipped.items():
        print(f"eval video: skipping {name}: {why}", file=sys.stderr)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_clip: dict[str, dict] = {}
    all_rows: dict[str, list] = {}
    for clip, frames in clips:
        results = {
            name: rd.evaluate_video_codec(c, frames, qs, fps=args.fps, name=name, clip=clip, progress=log)
            for name, (c, qs) in codecs.items()
        }
        per_clip[clip] = results
        all_rows[clip] = _bd_rows(results, VIDEO_ANCHOR, "psnr_yuv", "kbps", tuple(variants))
        plots.plot_rd(results, out / f"video_{clip}_psnr.png", "kbps", "psnr_yuv", f"{clip}: PSNR-YUV 6:1:1")
        plots.plot_rd(results, out / f"video_{clip}_msssim.png", "kbps", "ms_ssim", f"{clip}: MS-SSIM (Y)")

    # Mean over clips of each (test, anchor) BD value that every clip could compute.
    mean_rows = []
    if all_rows:
        first = next(iter(all_rows.values()))
        for i, r in enumerate(first):
            mean_rows.append({"test": r["test"], "anchor": r["anchor"],
                              **mean_bd([rows[i] for rows in all_rows.values()])})

    elapsed = time.perf_counter() - t_start
    cmd = _command(
        args, "video",
        ["out", "frames", "gop", "bframes", "max_size", "fps", "no_synthetic", "extended", "training_clips", "levels",
         "codecs",
         "no_zvc69", "model", "variants"],
    )
    md = [
        "# RD evaluation: " + ("TRAINING clips (for tuning, not results)\n" if args.training_clips
                               else "held-out video\n"),
        f"Command: `{cmd}` ({elapsed:.0f} s)\n",
        "Clips: " + ", ".join(f"{n} ({f[0].width}x{f[0].height}, {len(f)} frames)" for n, f in clips)
        + f"; GOP {args.gop}, B-frames {args.bframes}, {args.fps} fps.\n",
    ]
    if ZVC69 not in codecs and _wanted(args, ZVC69):
        md.append(f"ZVC69 missing: {zmsg}\n")
    for name, why in skipped.items():
        md.append(f"Skipped {name}: {why}\n")
    md.append("## Mean BD-rate over clips (PSNR-YUV 6:1:1; negative = fewer bits than the anchor)\n")
    md.append(_md_table(mean_rows, "PSNR-YUV"))
    for clip, rows in all_rows.items():
        md.append(f"## {clip}\n")
        md.append(_md_table(rows, "PSNR-YUV"))
        md.append(_points_table(per_clip[clip], "kbps", ["psnr_y", "psnr_yuv", "ms_ssim"]))
    (out / "video.md").write_text("\n".join(md))
    _write_json(
        out / "video.json",
        _clean({
            "kind": "video", "command": cmd, "seconds": elapsed, "versions": _versions(),
            "gop": args.gop, "bframes": args.bframes, "fps": args.fps,
            "clips": [{"name": n, "width": f[0].width, "height": f[0].height, "frames": len(f)} for n, f in clips],
            "zvc69_missing": zmsg if ZVC69 not in codecs else None, "skipped": skipped,
            "bd_mean": mean_rows, "bd": all_rows,
            "results": {c: {k: [p.to_dict() for p in v] for k, v in r.items()} for c, r in per_clip.items()},
        }),
    )
    print(_md_table(mean_rows, "PSNR-YUV"))
    print(f"wrote {out}/video.json, video.md and per-clip PNG plots ({elapsed:.0f} s)", file=sys.stderr)
    return 0


def run_compare(args) -> int:
    from zvc69_rt.eval.compare import compare_runs, load_run, markdown

    res = compare_runs(load_run(args.base), load_run(args.cand), args.codec, args.cand_codec)
    cand_label = f"{args.cand_codec or args.codec} in {args.cand}"
    md = markdown(res, f"{args.codec} in {args.base}", cand_label)
    print(md, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
    return 0


def run_drift(args) -> int:
    from zvc69_rt.codec.api import level_to_quality
    from zvc69_rt.errors import InputError
    from zvc69_rt.eval import datasets
    from zvc69_rt.eval.drift import precision_drift
    from zvc69_rt.models.bundle import ModelBundle

    if not 2 <= args.frames <= 1000:
        raise InputError(f"--frames {args.frames} outside 2..1000")
    bundle = ModelBundle.load(args.model)
    if "inter" not in bundle.manifest:
        raise InputError(f"model bundle {bundle.folder} has no P-frame graphs: drift needs inter frames "
                         "(give --model a bundle with an inter section)")
    frames = datasets.load_video(datasets.video_path("bikes.mp4"), max_frames=args.frames, max_size=args.max_size)
    res = precision_drift(frames, bundle, args.gop, level_to_quality(args.level), args.encode_precision,
                          args.decode_precision, log=_log(args))
    res.update({"clip": f"bikes.mp4 {frames[0].width}x{frames[0].height}", "model_hash": bundle.hash,
                "machine": platform.platform()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(res, indent=1))
    e, d = args.encode_precision, args.decode_precision
    lines = [f"# Drift: encoded {e}, decoded {d}\n",
             (f"`zvc69 eval drift --frames {args.frames} --gop {args.gop} --level {args.level} --encode-precision {e} "
             f"--decode-precision {d}`; {res['clip']}, model {bundle.hash[:16]}; every symbol identical: "
             f"{res['all_symbols_identical']}.\n"),
             f"| frame | type | bytes | PSNR {e} vs {d} decode (dB) | PSNR-YUV {e} (dB) | PSNR-YUV {d} (dB) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['frame']} | {r['type']} | {r['bytes']} | {r['psnr_drift']:.2f} | {r[f'psnr_{e}']:.2f} "
                     f"| {r[f'psnr_{d}']:.2f} |")
    (out / "drift.md").write_text("\n".join(lines) + "\n")
    print(f"drift: every symbol identical: {res['all_symbols_identical']}; worst {e}-vs-{d} PSNR "
          f"{res['min_psnr_drift']:.2f} dB; quality lost vs source up to {res['max_psnr_loss_db']:.3f} dB "
          f"(mean {res['mean_psnr_loss_db']:.3f}); {out / 'drift.md'}")
    return 0 if res["all_symbols_identical"] else 1
