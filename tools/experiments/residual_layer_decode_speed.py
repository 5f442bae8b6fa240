"""Decode time of a 1080p I-frame with and without a residual layer (same process, best of 3).

    python tools/experiments/residual_layer_decode_speed.py   # docs/BENCHMARKS.md, session 22

The plain I-frame is the bench's full-size path (no refinement, no hyper search); the layer
is forced to be coded (skip="never") over it at the same quality, so the worst case is timed:
a full-size base plus a full-size layer.
"""

import dataclasses
import io
import time

from zvc69_rt.bench import codec as bench_codec
from zvc69_rt.bitstream import StreamReader, StreamWriter
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder

W, H, QUALITY = 1920, 1080, 57


def main() -> None:
    frame = bench_codec._test_frame(W, H)
    enc = Encoder(EncoderConfig(width=W, height=H, gop=1, refine_steps=0, z_search=False, reduced_res=False))
    x = enc.preprocess(frame).x
    layer_codec, enc.layer_codec = enc.layer_codec, None
    plain = enc.code_intra(x, QUALITY)
    enc.layer_codec = layer_codec
    enc.layer_codec.skip = "never"  # time a coded layer whatever it costs
    layered = enc._with_residual_layer(x, dataclasses.replace(plain, cost=float("inf")), [plain], QUALITY)
    streams = {}
    for name, choice in (("plain", plain), ("layered", layered)):
        buf = io.BytesIO()
        writer = StreamWriter(buf, enc.file_header())
        writer.write_frame(0, choice.quality, *enc.latent_size, 0, choice.data, choice.flags)
        writer.close()
        streams[name] = buf.getvalue()
    for run in range(2):
        for name, stream in streams.items():
            reader = StreamReader(io.BytesIO(stream))
            ((fh, payload),) = list(reader.iter_frames())
            dec = Decoder(reader.header)
            dec.decode_rgb(fh, payload)  # warm-up (loads the layer's graphs)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                dec.decode_rgb(fh, payload)
                times.append(time.perf_counter() - t0)
            print(f"run {run}: {name} {len(stream)} bytes, decode {min(times):.3f} s", flush=True)


if __name__ == "__main__":
    main()
