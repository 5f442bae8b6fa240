"""ZVC69 as codec callables for the RD runner; bits always from a real .zvc stream.

Images are coded as RGB (file header color_space=2) straight through the intra codec,
so the comparison with JPEG/WebP is not handicapped by 4:2:0; video goes through the
same Encoder/StreamWriter/StreamReader/Decoder path as `zvc69 encode`/`decode`.
"""

from __future__ import annotations

import io
import itertools

import numpy as np

from zvc69_rt.bitstream import FrameFlags, StreamReader, StreamWriter
from zvc69_rt.codec.api import EncoderConfig, level_to_quality
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.frame import Frame
from zvc69_rt.io.padding import crop, pad_to_multiple
from zvc69_rt.models.bundle import ModelBundle

COLOR_SPACE_RGB = 2


def image_codec(model: str | None = None, precision: str = "fp32", **settings):
    """settings: further EncoderConfig fields (anneal_steps, intra_residual)."""
    bundle = ModelBundle.load(model)
    cache: dict[tuple[int, int], Encoder] = {}
    EncoderConfig(width=64, height=64, gop=1, precision=precision, **settings).validate()

    def codec(rgb: np.ndarray, level: int) -> tuple[int, np.ndarray]:
        h, w = rgb.shape[:2]
        quality = level_to_quality(int(level))
        key = (w, h)
        if key not in cache:
            cache[key] = Encoder(EncoderConfig(width=w, height=h, gop=1, precision=precision, **settings),
                                 bundle=bundle)
        enc = cache[key]
        x, _ = pad_to_multiple(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0, bundle.alignment)
        choice = enc.code_intra(x, quality)  # the encoder's I-frame: its padding, full or reduced size
        lh, lw = enc.reduced_latent_size if choice.flags & FrameFlags.REDUCED_RES else enc.latent_size
        buf = io.BytesIO()
        header = enc.file_header().copy(color_space=COLOR_SPACE_RGB, quality_level=quality)
        writer = StreamWriter(buf, header)
        writer.write_frame(0, choice.quality, lh, lw, 0, choice.data, choice.flags)
        writer.close()
        stream = buf.getvalue()
        reader = StreamReader(io.BytesIO(stream))
        fh, payload = next(iter(reader.iter_frames()))
        dec = Decoder(reader.header, bundle=bundle, runners=_shared_runners(enc))
        out = crop(dec.decode_rgb(fh, payload), (h, w))
        recon = np.clip(np.rint(out.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
        return len(stream) * 8, recon

    return codec


def _shared_runners(enc: Encoder) -> dict:
    """The encoder's loaded graphs (sessions take shapes dynamically): reused by the decoder
    and by later encoders instead of loading every graph again."""
    i = enc.intra
    runners = {"analysis": i.analysis, "hyper_synthesis": i.hyper_synthesis, "synthesis": i.synthesis}
    if i.gradient is not None:
        runners["synthesis_gradient"] = i.gradient
    for codec in (enc.inter, enc.layer_codec):
        if codec is not None:
            runners.update(codec.runners)
    return runners


def video_codec(gop: int, bframes: int, model: str | None = None, precision: str = "fp32", **settings):
    """settings: further EncoderConfig fields (b_pyramid, p_quality_offset, preset)."""
    bundle = ModelBundle.load(model)
    shared: dict = {}
    EncoderConfig(width=64, height=64, gop=gop, bframes=bframes, precision=precision, **settings).validate()

    def codec(frames: list[Frame], level: int) -> tuple[int, list[Frame]]:
        f0 = frames[0]
        cfg = EncoderConfig(width=f0.width, height=f0.height, quality=level_to_quality(int(level)),
                            gop=gop, bframes=bframes, precision=precision, **settings)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            enc = Encoder(cfg, bundle=bundle, runners=shared or None)
        if not shared:
            shared.update(_shared_runners(enc))
        buf = io.BytesIO()
        encode_to_stream(enc, frames, buf)
        stream = buf.getvalue()
        reader = StreamReader(io.BytesIO(stream))
        dec = Decoder(reader.header, bundle=bundle, runners=_shared_runners(enc))
        out = []
        for fh, payload in itertools.chain(reader.iter_frames(), [(None, None)]):  # end of stream last
            dec.send_packet(fh, payload)
            while (fr := dec.receive_frame()) is not None:
                out.append(fr)
        return len(stream) * 8, out

    return codec
