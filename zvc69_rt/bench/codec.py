# ruff: noqa: B023  (every lambda in the size loop is timed by _best at once, before the loop moves on)
"""`zvc69 bench codec`: I-frame encode/decode time per stage at 720p and 1080p.

Anchor in the same run: the same graphs' inference alone (the floor any pipeline can
reach on this backend) and, when importable, CompressAI's compress/decompress of a
MeanScaleHyperprior of the same N/M (an optional package, never a dependency).

``--inter`` adds a P-frame's decode per stage (entropy decode + residual hyper, motion
compensation, residual synthesis): the photo moved by a few pixels with a little noise,
coded with the realtime presets' single motion field and a full-size residual, so every
stage runs.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

HELP = "I-frame encode/decode speed per stage (720p, 1080p); --inter: a P-frame's decode"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def add_arguments(p) -> None:
    p.add_argument("--sizes", default="720p,1080p")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--backend", default="auto")
    p.add_argument("--model", default=None)
    p.add_argument("--anchor-python", default=None,
                   help="python of an environment with CompressAI: runs tools/anchors/compressai_speed.py "
                        "for the same N/M in this run and reports speed ratios")
    p.add_argument("--inter", action="store_true",
                   help="also time a P-frame's decode per stage (full-size residual)")
    p.add_argument("--json", action="store_true")


def _test_frame(width: int, height: int):
    """A real photo scaled to the size (content matters for entropy-coding speed)."""
    from zvc69_rt.frame import Frame

    try:
        import importlib.util

        from PIL import Image

        d = importlib.util.find_spec("skimage").submodule_search_locations[0]
        img = Image.open(os.path.join(d, "data", "motorcycle_right.png")).convert("YCbCr").resize((width, height))
        a = np.asarray(img)
        y = a[..., 0].copy()
        u = np.asarray(Image.fromarray(a[..., 1]).resize(((width + 1) // 2, (height + 1) // 2)))
        v = np.asarray(Image.fromarray(a[..., 2]).resize(((width + 1) // 2, (height + 1) // 2)))
        return Frame(y=y, u=u.copy(), v=v.copy())
    except (ImportError, OSError, ValueError, TypeError):  # no skimage photo: a synthetic frame
        rng = np.random.default_rng(0)
        base = np.add.outer(np.arange(height), np.arange(width)) % 256
        y = (base + rng.integers(0, 8, base.shape)).astype(np.uint8)
        ch, cw = Frame.chroma_shape(width, height)
        return Frame(y=y, u=np.full((ch, cw), 128, np.uint8), v=np.full((ch, cw), 128, np.uint8))


def _best(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def run(args) -> int:
    from zvc69_rt.bitstream import FrameHeader
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.decoder import Decoder
    from zvc69_rt.codec.encoder import Encoder

    results = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "sizes": {}}
    for name in args.sizes.split(","):
        w, h = SIZES[name]
        # the full-size path (what CompressAI's compress/decompress do); the reduced-resolution
        # and hyper-latent searches, latent refinement and residual layers are RD tools on top,
        # timed by `zvc69 eval` runs and docs/INTRA.md, not here
        cfg = EncoderConfig(width=w, height=h, gop=1, backend=args.backend, precision=args.precision,
                            model=args.model, reduced_res=False, z_search=False, refine_steps=0,
                            anneal_steps=0, intra_residual=False)
        enc = Encoder(cfg)
        dec = Decoder(enc.file_header(), bundle=enc.bundle, backend=args.backend, precision=args.precision)
        frame = _test_frame(w, h)
        warm = enc.entropy_code(enc.infer(enc.preprocess(frame)))  # warm-up: numba, ORT sessions
        dec.send_packet(FrameHeader(frame_type=0, quality_level=warm.quality, frame_size=len(warm.data),
                                    latent_height=warm.latent_height, latent_width=warm.latent_width, pts=0),
                        warm.data)
        dec.receive_frame()
        t_pre, work = _best(lambda: enc.preprocess(frame), args.repeat)
        x = work.x
        t_inf, work = _best(lambda: enc.infer(type(work)(pts=0, x=x)), args.repeat)
        lat = work.latents
        t_ent, pkt = _best(lambda: enc.entropy_code(type(work)(pts=0, latents=lat)), args.repeat)
        fh = FrameHeader(frame_type=0, quality_level=pkt.quality, frame_size=len(pkt.data),
                         latent_height=pkt.latent_height, latent_width=pkt.latent_width, pts=0)
        t_parse, parsed = _best(lambda: dec.intra.parse(pkt.data, (pkt.latent_height, pkt.latent_width)),
                                args.repeat)
        t_syn, _ = _best(lambda: dec.intra.synthesise(parsed[1], parsed[2], pkt.quality), args.repeat)
        t_dec, _ = _best(lambda: (dec.send_packet(fh, pkt.data), dec.receive_frame()), args.repeat)
        r = {
            "encode_s": t_pre + t_inf + t_ent, "preprocess_s": t_pre, "analysis+hyper_s": t_inf,
            "entropy_encode_s": t_ent, "decode_s": t_dec, "entropy_decode+hyper_s": t_parse,
            "synthesis_s": t_syn, "bytes": len(pkt.data), "bpp": len(pkt.data) * 8 / (w * h),
        }
        results["sizes"][name] = r
        if args.inter:
            r.update(_p_frame_decode(args, w, h, frame))
        print(f"{name}: encode {r['encode_s']:.3f} s (preprocess {t_pre:.3f}, analysis+hyper {t_inf:.3f}, "
              f"entropy {t_ent:.3f}); decode {t_dec:.3f} s (entropy+hyper {t_parse:.3f}, synthesis {t_syn:.3f}); "
              f"{r['bpp']:.3f} bpp on {enc.backend_name}/{args.precision}")
        if args.inter:
            print(f"{name} P-frame: decode {r['p_decode_s']:.3f} s (entropy {r['p_entropy_decode_s']:.3f}, "
                  f"motion compensation {r['p_prediction_s']:.3f}, mean + residual synthesis "
                  f"{r['p_hyper+residual_synthesis_s']:.3f}); {r['p_bytes']} bytes")
    if args.anchor_python:
        results["compressai"] = _anchor(args, enc.bundle, results)
    if args.json:
        print(json.dumps(results))
    return 0


def _p_frame_decode(args, w: int, h: int, frame) -> dict:
    """Time one P-frame's decode stages against its decoded I-frame reference."""
    from zvc69_rt.bitstream import FrameHeader
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.decoder import Decoder
    from zvc69_rt.codec.encoder import Encoder
    from zvc69_rt.errors import ZVC69Error
    from zvc69_rt.frame import Frame

    rng = np.random.default_rng(1)
    moved = np.roll(frame.y, (3, 6), axis=(0, 1)).astype(np.int16) + rng.integers(-6, 7, frame.y.shape)
    second = Frame(y=np.clip(moved, 0, 255).astype(np.uint8), u=np.roll(frame.u, (1, 3), axis=(0, 1)),
                   v=np.roll(frame.v, (1, 3), axis=(0, 1)), pts=1)
    cfg = EncoderConfig(width=w, height=h, gop=2, backend=args.backend, precision=args.precision, model=args.model,
                        preset="realtime_1080p", reduced_res=False, z_search=False)
    enc = Encoder(cfg)
    packets = enc.encode(Frame(y=frame.y, u=frame.u, v=frame.v, pts=0)) + enc.encode(second)
    enc.send_frame(None)
    packets += list(iter(enc.receive_packet, None))
    if [p.frame_type for p in packets] != [0, 1]:
        raise ZVC69Error(f"bench codec --inter: expected an I- and a P-frame, got types {[p.frame_type for p in packets]}")
    dec = Decoder(enc.file_header(), bundle=enc.bundle, backend=args.backend, precision=args.precision)
    ref = dec.decode_rgb(FrameHeader.for_packet(packets[0]), packets[0].data)
    data, hw, q = packets[1].data, (packets[1].latent_height, packets[1].latent_width), packets[1].quality
    pc = dec.inter
    pc.synthesise(pc.parse(data, hw), ref, q)  # warm-up
    t_parse, parsed = _best(lambda: pc.parse(data, hw), args.repeat)
    if not parsed.residual_coded or parsed.half_quality is not None:
        raise ZVC69Error("bench codec --inter: the test P-frame did not code a full-size residual")
    t_pred, pred = _best(lambda: pc.predict(ref, parsed.motion), args.repeat)
    t_res, _ = _best(lambda: pc.reconstruct(parsed, pred, q), args.repeat)
    t_dec, _ = _best(lambda: pc.decompress(data, ref, hw, q), args.repeat)
    return {"p_decode_s": t_dec, "p_entropy_decode_s": t_parse, "p_prediction_s": t_pred,
            "p_hyper+residual_synthesis_s": t_res, "p_bytes": len(data)}


def _anchor(args, bundle, results) -> dict:
    """CompressAI MeanScaleHyperprior on padded sizes, in a subprocess: N = our transforms'
    width (its N sets both; the transforms are nearly all the work), M = our latent."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "tools" / "anchors" / "compressai_speed.py"
    a = bundle.alignment
    sizes = {n: f"{-(-SIZES[n][0] // a) * a}x{-(-SIZES[n][1] // a) * a}" for n in results["sizes"]}
    r = subprocess.run([args.anchor_python, str(script), "--N", str(bundle.transform_channels), "--M",
                        str(bundle.latent_channels), "--sizes", ",".join(sizes.values())],
                       check=False, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        print(f"CompressAI anchor failed: {r.stderr.strip().splitlines()[-1:]}")
        return {"error": r.stderr[-500:]}
    anchor = json.loads(r.stdout.strip().splitlines()[-1])
    for name, size in sizes.items():
        ours, theirs = results["sizes"][name], anchor["sizes"][size]
        ours["speedup_encode_vs_compressai"] = theirs["compress_s"] / ours["encode_s"]
        ours["speedup_decode_vs_compressai"] = theirs["decompress_s"] / ours["decode_s"]
        print(f"{name} vs {anchor['model']} at {size}: compress {theirs['compress_s']:.3f} s, decompress "
              f"{theirs['decompress_s']:.3f} s -> ZVC69 x{ours['speedup_encode_vs_compressai']:.2f} encode, "
              f"x{ours['speedup_decode_vs_compressai']:.2f} decode")
    return anchor
