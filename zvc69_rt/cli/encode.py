"""`zvc69 encode INPUT -o OUTPUT`: video in (Y4M, raw YUV, anything PyAV opens), .zvc out."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

from zvc69_rt.codec.api import EncoderConfig, level_to_quality
from zvc69_rt.codec.multipass import best_of_passes, error_pct, validate_passes
from zvc69_rt.codec.ratecontrol import parse_bitrate
from zvc69_rt.errors import InputError
from zvc69_rt.pipeline.config import PRESETS


def register(sub) -> None:
    p = sub.add_parser(
        "encode", help="encode video to a .zvc stream",
        description="Encode INPUT (.y4m, '-' for Y4M on stdin, raw .yuv with --size/--fps, or any "
        "container PyAV opens) into a ZVC69 stream. OUTPUT may be '-' for stdout.",
    )
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    q = p.add_mutually_exclusive_group()
    q.add_argument("--quality", type=int, help="0..100 (default 57, i.e. level 5)")
    q.add_argument("--level", type=int, help="quality level 1..8 (Q1 smallest .. Q8 best)")
    p.add_argument("--bitrate", default=None,
                   help="target bitrate in bit/s, e.g. 500k or 2M (rate control instead of --quality/--level)")
    p.add_argument("--rate-control", default=None, choices=["cqp", "vbr", "cbr"],
                   help="cqp: constant quality (default without --bitrate); vbr: average bitrate "
                   "(default with --bitrate); cbr: vbr plus a leaky-bucket buffer of --vbv seconds")
    p.add_argument("--passes", type=int, default=1, metavar="1-3",
                   help="vbr only: encode the input this many times, each pass sized by the one before "
                   "(two-pass), keeping the stream closest to --bitrate; a file input, not stdin; with --server "
                   "a .y4m file (default 1: one pass, as for streams)")
    p.add_argument("--vbv", type=float, default=EncoderConfig.vbv_seconds,
                   help="cbr buffer size in seconds of --bitrate (default %(default)s)")
    p.add_argument("--gop", type=int, default=EncoderConfig.gop, help="keyframe interval (default %(default)s)")
    p.add_argument("--b-quality-offset", type=int, default=EncoderConfig.b_quality_offset,
                   help="quality points non-reference B-frames are coded below the P-frames (default %(default)s)")
    p.add_argument("--motion-aq", type=int, default=EncoderConfig.motion_aq, metavar="0-4",
                   help="P/B residuals: coarser quantisation where motion is large, strength 1..4, "
                   "kept per frame only where it costs less (default 0 = off)")
    p.add_argument("--p-quality-offset", type=int, default=EncoderConfig.p_quality_offset,
                   help="quality points P/B-frames are coded below the I-frame (default %(default)s; 0 = same quality)")
    p.add_argument("--bframes", type=int, default=EncoderConfig.bframes, help="B-frames between references")
    p.add_argument("--b-pyramid", action=argparse.BooleanOptionalAction, default=EncoderConfig.b_pyramid,
                   help="hierarchical B-frames: the middle one is coded first as a reference (BBi) for the "
                   "others (default on; --no-b-pyramid: every B-frame from the two anchors)")
    p.add_argument("--reduced-res", action=argparse.BooleanOptionalAction, default=EncoderConfig.reduced_res,
                   help="code an I-frame (constant quality only) or a P/B residual at half width and height, "
                   "upsampled by the decoder, when that costs less; full effort only (default on; "
                   "--no-reduced-res: always full size)")
    p.add_argument("--z-search", action=argparse.BooleanOptionalAction, default=EncoderConfig.z_search,
                   help="search each frame's hyper latent for one that costs fewer bits (same format; "
                   "full effort only; default on; --no-z-search: ~1.2x faster encode, ~4-5 %% more bits on held-out "
                   "clips and photos, docs/INTER.md)")
    p.add_argument("--refine-steps", type=int, default=EncoderConfig.refine_steps, metavar="N",
                   help="gradient steps on each I-frame's latent before it is coded (same format; full effort "
                   "only, bundles with a synthesis_gradient graph; default %(default)s, 0 = off; docs/INTRA.md)")
    p.add_argument("--anneal-steps", type=int, default=EncoderConfig.anneal_steps, metavar="N",
                   help="steps of annealed rounding on each I-frame's chosen latent after --refine-steps, kept "
                   "where cheaper (same format; full effort only; default %(default)s = off, 80 as measured; about doubles "
                   "the I-frame encode time; docs/INTRA.md)")
    p.add_argument("--intra-residual", action=argparse.BooleanOptionalAction, default=EncoderConfig.intra_residual,
                   help="let each I-frame carry a residual layer (the P model's residual coder on its reconstruction), "
                   "kept where it costs less (full effort, constant quality; default on; --no-intra-residual: "
                   "held-out photos +17 %% and clips +8 %% bits at equal PSNR, docs/INTRA.md)")
    p.add_argument("--p-refine-steps", type=int, default=EncoderConfig.p_refine_steps, metavar="N",
                   help="gradient steps on each P-frame's chosen residual latent, kept where cheaper (same format; "
                   "full effort only, bundles with a residual_synthesis_gradient graph; default %(default)s, "
                   "0 = off; docs/INTER.md)")
    p.add_argument("--preset", default=None, choices=PRESETS,
                   help="pipelined encoding with this preset (queue depth, workers; realtime ones code one motion field per P-frame)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--model", default=None, help="model bundle folder (default: the shipped one)")
    p.add_argument("--size", help="WxH, for raw .yuv input")
    p.add_argument("--fps", help="N or N/D, for raw .yuv input")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0 = all)")
    p.add_argument("--server", default=None, help="encode on a running `zvc69 serve` at this URL")
    p.add_argument("--psnr", action="store_true", help="also decode and report PSNR (slower)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def _rate_settings(args) -> dict:
    """--bitrate/--rate-control/--vbv -> EncoderConfig fields; --quality/--level stay CQP."""
    bitrate = getattr(args, "bitrate", None)
    mode = getattr(args, "rate_control", None)
    vbv = getattr(args, "vbv", EncoderConfig.vbv_seconds)
    if bitrate is None:
        if mode not in (None, "cqp"):
            raise InputError(f"--rate-control {mode} needs --bitrate (e.g. --bitrate 500k)")
        if vbv != EncoderConfig.vbv_seconds:
            raise InputError("--vbv needs --bitrate and --rate-control cbr")
        return {}
    if args.quality is not None or args.level is not None:
        raise InputError("--bitrate sets the quality per frame; give either --bitrate or --quality/--level, not both")
    if mode == "cqp":
        raise InputError("--rate-control cqp codes at a constant quality; use --quality/--level, not --bitrate")
    mode = mode or "vbr"
    if vbv != EncoderConfig.vbv_seconds and mode != "cbr":
        raise InputError("--vbv is the cbr buffer size; it needs --rate-control cbr")
    return {"rate_control": mode, "bitrate": parse_bitrate(bitrate), "vbv_seconds": vbv}


def _config(args, src) -> EncoderConfig:
    quality = level_to_quality(args.level) if args.level else (
        args.quality if args.quality is not None else EncoderConfig.quality
    )
    return EncoderConfig(
        width=src.width, height=src.height, fps_num=src.fps_num, fps_den=src.fps_den, quality=quality,
        gop=args.gop, bframes=args.bframes, b_pyramid=args.b_pyramid, preset=args.preset,
        reduced_res=args.reduced_res, z_search=args.z_search, refine_steps=args.refine_steps,
        anneal_steps=args.anneal_steps, p_refine_steps=args.p_refine_steps, intra_residual=args.intra_residual,
        p_quality_offset=args.p_quality_offset, b_quality_offset=args.b_quality_offset, motion_aq=args.motion_aq,
        backend=args.backend,
        precision=args.precision, model=args.model, **_rate_settings(args),
    )


@dataclass
class _Pass:
    """One encode of the input: where it went and what it measured."""

    enc: object
    path: str
    frames: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    sq_err: list = field(default_factory=list)

    def error_pct(self) -> float:
        return error_pct(self.enc)


def run(args) -> int:
    import tempfile

    from zvc69_rt.bitstream.atomic import atomic_output
    from zvc69_rt.io.open import open_source

    _rate_settings(args)  # argument errors before opening the input
    _check_passes(args)
    src = open_source(args.input, size=args.size, fps=args.fps)
    config = _config(args, src)
    if args.server:
        from zvc69_rt.client import encode_file_via_server

        return encode_file_via_server(args.server, src, config, args.output, limit=args.frames,
                                      passes=getattr(args, "passes", 1), y4m_path=args.input)
    passes_wanted = getattr(args, "passes", 1)
    if passes_wanted == 1:
        with atomic_output(args.output) as sink:
            best = _encode_pass(args, config, src, sink, None, "encode")
    else:
        # Every pass is a whole stream in a temp file; the one closest to the target becomes
        # OUTPUT (atomically), the others are deleted, on success or failure alike.
        with tempfile.TemporaryDirectory(prefix="zvc69-passes-") as tmp:
            def one_pass(plan, k: int) -> _Pass:
                source = open_source(args.input, size=args.size, fps=args.fps) if k else src
                path = os.path.join(tmp, f"pass{k + 1}.zvc")
                with open(path, "wb") as sink:
                    done = _encode_pass(args, config, source, sink, plan, f"pass {k + 1}/{passes_wanted}", path)
                if not args.quiet:
                    print(f"pass {k + 1}: {done.error_pct():+.1f} % from the target", file=sys.stderr)
                return done

            best, kept, ran = best_of_passes(passes_wanted, one_pass, lambda p: p.enc)
            with atomic_output(args.output) as sink, open(best.path, "rb") as f:
                shutil.copyfileobj(f, sink)
            if not args.quiet and ran > 1:
                print(f"kept pass {kept + 1} of {ran}", file=sys.stderr)
    if not args.quiet:
        _print_summary(best, config)
    return 0


def _check_passes(args) -> None:
    passes = getattr(args, "passes", 1)
    validate_passes(passes, args.rate_control, args.bitrate)
    if passes == 1:
        return
    if args.input == "-":
        raise InputError("--passes reads the input once per pass: give a file, not '-' (stdin cannot be re-read)")
    if args.server and (not args.input.lower().endswith(".y4m") or args.frames):
        raise InputError("--passes with --server sends the whole file to the service's POST /v1/encode: give a "
                         ".y4m file and no --frames (its streams, which take any input, are one pass)")
    if args.preset:
        raise InputError("--passes is not available with --preset (realtime presets encode in one pass)")


def _encode_pass(args, config, src, sink, plan, desc: str, path: str = "") -> _Pass:
    """Encode the input once into sink; plan: the previous pass's sizes (two-pass vbr)."""
    from tqdm import tqdm

    from zvc69_rt.bitstream import StreamWriter
    from zvc69_rt.codec.encoder import Encoder

    enc = Encoder(config, first_pass=plan)
    result = _Pass(enc=enc, path=path)
    dec = None
    if args.psnr:
        from zvc69_rt.codec.decoder import Decoder

        dec = Decoder(enc.file_header(), bundle=enc.bundle, backend=args.backend, precision=args.precision)
    total = src.frame_count or None
    if args.frames:
        total = min(total or args.frames, args.frames)
    bar = tqdm(total=total, unit="frame", disable=args.quiet or None, file=sys.stderr, desc=desc)
    t0 = time.perf_counter()
    writer = StreamWriter(sink, enc.file_header())
    pending = {}
    pipe = None
    if enc.pipeline_config is not None:  # a preset: overlap the stages (same bytes as sequential)
        from zvc69_rt.pipeline import PipelinedEncoder

        pipe = PipelinedEncoder(enc, enc.pipeline_config)

    def emit(packets) -> None:
        for pkt in packets:
            result.nbytes += _write(writer, pkt)
            if dec is not None:
                result.sq_err += _psnr_of(dec, pkt, pending)

    def ready():
        while (pkt := pipe.try_recv()) is not None:
            yield pkt

    try:
        for frame in src:
            if args.frames and result.frames >= args.frames:
                break
            if dec is not None:
                pending[frame.pts] = frame
            if pipe is None:
                emit(enc.encode(frame))
            else:
                pipe.submit(frame)
                emit(ready())
            result.frames += 1
            bar.update(1)
        if pipe is None:
            enc.send_frame(None)
            emit(iter(enc.receive_packet, None))
        else:
            emit(pipe.flush())
    finally:
        if pipe is not None:
            pipe.close()
    if dec is not None:
        result.sq_err += _psnr_of(dec, None, pending)
    writer.close()
    bar.close()
    result.seconds = time.perf_counter() - t0
    return result


def _print_summary(result: _Pass, config) -> None:
    enc, n, nbytes, dt = result.enc, result.frames, result.nbytes, result.seconds
    secs = n * config.fps_den / config.fps_num if n else 0
    kbps = nbytes * 8 / secs / 1000 if secs else 0
    line = (f"encoded {n} frames {config.width}x{config.height} in {dt:.1f} s ({n / dt if dt else 0:.2f} fps) "
            f"on {enc.backend_name}/{config.precision}: {nbytes} bytes, {kbps:.1f} kbit/s, "
            f"{nbytes * 8 / max(n, 1) / (config.width * config.height):.4f} bpp")
    if result.sq_err:
        import numpy as np

        line += (f", PSNR-Y {np.mean([e[0] for e in result.sq_err]):.2f} dB, "
                 f"PSNR-YUV(6:1:1) {np.mean([e[1] for e in result.sq_err]):.2f} dB")
    print(line, file=sys.stderr)
    rc = enc.rate_control.summary()
    if rc["mode"] != "cqp":
        line = (f"rate control {rc['mode']}: target {rc['target_bps'] / 1000:.1f} kbit/s, frames "
                f"{rc['achieved_bps'] / 1000:.1f} kbit/s ({rc['error_pct']:+.1f} %), quality "
                f"{rc['quality_min']}..{rc['quality_max']} (mean {rc['quality_mean']:.1f})")
        if rc["mode"] == "cbr":
            line += (f", buffer {rc['buffer_bits'] / 1000:.0f} kbit: fullness {rc['buffer_min'] / 1000:.0f}.."
                     f"{rc['buffer_max'] / 1000:.0f} kbit (start {rc['buffer_start'] / 1000:.0f}, end "
                     f"{rc['buffer_end'] / 1000:.0f}), {rc['overflows']} overflows, "
                     f"{rc['underflows']} underflows")
        print(line, file=sys.stderr)


def _write(writer, pkt) -> int:
    writer.write_packet(pkt)
    return len(pkt.data) + 32


def _psnr_of(dec, pkt, pending: dict) -> list[tuple[float, float]]:
    """Decode one packet (None: end of stream); (PSNR-Y, PSNR-YUV) of each frame it releases
    (in display order: with B-frames an anchor comes out only after the frames before it)."""
    from zvc69_rt.bitstream import FrameHeader
    from zvc69_rt.eval.metrics import psnr_frame, psnr_yuv

    if pkt is None:
        dec.send_packet(None)
    else:
        dec.send_packet(FrameHeader.for_packet(pkt), pkt.data)
    out = []
    while (frame := dec.receive_frame()) is not None:
        original = pending.pop(frame.pts)
        out.append((psnr_frame(original, frame)[0], psnr_yuv(original, frame)))
    return out
