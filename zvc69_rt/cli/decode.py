"""`zvc69 decode INPUT -o OUTPUT.y4m`: .zvc in (file or '-'), Y4M out (file or '-')."""

from __future__ import annotations

import itertools
import sys
import time


def register(sub) -> None:
    p = sub.add_parser(
        "decode", help="decode a .zvc stream to Y4M",
        description="Decode a ZVC69 stream to Y4M. INPUT and OUTPUT may be '-' (stdin/stdout). Any "
        "conformant stream decodes whatever precision it was encoded with.",
    )
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--model", default=None, help="model bundle folder (default: the shipped one)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from zvc69_rt.bitstream import StreamReader, atomic_output
    from zvc69_rt.codec.decoder import Decoder
    from zvc69_rt.io.y4m import Y4MWriter

    reader = StreamReader(sys.stdin.buffer if args.input == "-" else args.input)
    hdr = reader.header
    dec = Decoder(hdr, backend=args.backend, precision=args.precision, model=args.model)
    bar = tqdm(total=hdr.total_frames or None, unit="frame", disable=args.quiet or None, file=sys.stderr,
               desc="decode")
    t0 = time.perf_counter()
    n = 0
    with atomic_output(args.output) as sink:
        writer = Y4MWriter(sink, hdr.width, hdr.height, hdr.framerate_num, hdr.framerate_den)
        for fh, data in itertools.chain(reader.iter_frames(), [(None, None)]):  # (None, None): end of stream
            dec.send_packet(fh, data)
            while (frame := dec.receive_frame()) is not None:
                frame.range = "limited"  # pass-through: the codec does not reinterpret YUV range
                writer.write(frame)
                n += 1
                bar.update(1)
    bar.close()
    if not args.quiet:
        dt = time.perf_counter() - t0
        print(f"decoded {n} frames {hdr.width}x{hdr.height} in {dt:.1f} s ({n / dt if dt else 0:.2f} fps) "
              f"on {dec.backend_name}/{args.precision}", file=sys.stderr)
    return 0
