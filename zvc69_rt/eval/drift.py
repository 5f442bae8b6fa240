"""Drift across precisions: encode with one precision's graphs, decode with another's.

Entropy decoding is exact whatever the precision (INTEGERIZED scale indexes, explicit
motion scale bytes), so every symbol decodes identically; the reconstruction is not, and
in a GOP of P-frames each frame predicts from a reconstruction that already differs, so
the difference can grow along the GOP. This measures it per frame:

    source --Encoder(fp32)--> stream --Decoder(fp32)--> a   (what the encoder meant)
                                     --Decoder(fp16)--> b   (what an FP16 host shows)
    per frame: PSNR(a, b) (the drift), PSNR(source, a), PSNR(source, b), symbols equal
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np

from zvc69_rt.bitstream import StreamReader
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.eval.metrics import psnr_yuv
from zvc69_rt.frame import Frame
from zvc69_rt.models.bundle import ModelBundle


def _symbols(dec: Decoder, fh, data) -> list[np.ndarray]:
    """Every entropy-decoded integer array of one frame (before any synthesis graph)."""
    lat = (fh.latent_height, fh.latent_width)
    if fh.frame_type == 0:
        z_hat, y, _ = dec.intra.parse(data, lat)
        return [z_hat, y]
    parsed = dec.inter.parse(data, lat)
    out = [parsed.motion.vectors]
    if parsed.residual_coded:
        out.append(parsed.symbols)
    return out


def precision_drift(frames: Sequence[Frame], bundle: ModelBundle, gop: int, quality: int,
                    encode_precision: str = "fp32", decode_precision: str = "fp16",
                    log: Callable[[str], None] | None = None) -> dict:
    """Per-frame drift of a low-delay stream decoded at another precision (one ORT backend)."""
    f0 = frames[0]
    cfg = EncoderConfig(width=f0.width, height=f0.height, gop=gop, quality=quality,
                        precision=encode_precision, backend="onnxruntime")
    enc = Encoder(cfg, bundle=bundle, adaptive_intra=False)  # a GOP of P-frames is what drifts
    buf = io.BytesIO()
    encode_to_stream(enc, frames, buf)
    stream = buf.getvalue()
    reader = StreamReader(io.BytesIO(stream))
    ref_dec = Decoder(reader.header, bundle=bundle, backend="onnxruntime", precision=encode_precision)
    test_dec = Decoder(reader.header, bundle=bundle, backend="onnxruntime", precision=decode_precision)
    rows = []
    for i, (fh, data) in enumerate(reader.iter_frames()):
        same = all(np.array_equal(a, b) for a, b in
                   zip(_symbols(ref_dec, fh, data), _symbols(test_dec, fh, data), strict=True))
        out = []
        for dec in (ref_dec, test_dec):
            dec.send_packet(fh, data)
            out.append(dec.receive_frame())
        src = frames[fh.pts]
        row = {"frame": i, "pts": fh.pts, "type": "IPB"[fh.frame_type], "bytes": len(data),
               "symbols_identical": same, "psnr_drift": psnr_yuv(out[0], out[1]),
               f"psnr_{encode_precision}": psnr_yuv(src, out[0]), f"psnr_{decode_precision}": psnr_yuv(src, out[1])}
        rows.append(row)
        if log:
            log(f"frame {i} {row['type']}: {encode_precision} vs {decode_precision} {row['psnr_drift']:.2f} dB, "
                f"vs source {row[f'psnr_{encode_precision}']:.2f} / {row[f'psnr_{decode_precision}']:.2f} dB")
    drift = [r["psnr_drift"] for r in rows]
    loss = [r[f"psnr_{encode_precision}"] - r[f"psnr_{decode_precision}"] for r in rows]
    return {
        "encode_precision": encode_precision, "decode_precision": decode_precision, "gop": gop,
        "quality": quality, "frames": len(rows), "stream_bytes": len(stream),
        "all_symbols_identical": all(r["symbols_identical"] for r in rows),
        "min_psnr_drift": float(min(drift)), "max_psnr_loss_db": float(max(loss)),
        "mean_psnr_loss_db": float(np.mean(loss)), "rows": rows,
    }
