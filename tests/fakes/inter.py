"""A model bundle with a random (untrained) P-frame model beside the shipped intra model,
and a panning test clip: enough to exercise every inter code path bit-exactly (quality is
not the point), without a trained inter model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from zvc69_rt.frame import Frame
from zvc69_rt.models.bundle import DEFAULT_BUNDLE, ModelBundle


def random_inter_bundle(folder: Path, precisions: tuple[str, ...] = ("fp32",), cond: int = 0,
                        cond_mean: bool = False, gradient: bool = False) -> ModelBundle:
    """cond/cond_mean: the conditional synthesis and mean (InterConfig), their zero-initialised
    injections made random too, so the prediction really reaches the synthesis and the mean.
    gradient: with the model's residual_synthesis_gradient graph (P latent refinement)."""
    import torch

    from onnx_export.export_inter import export_inter_bundle
    from onnx_export.inter_model import InterConfig, InterModel

    shutil.copytree(DEFAULT_BUNDLE, folder)
    torch.manual_seed(0)
    model = InterModel(InterConfig(N=16, F=8, cond=cond, cond_mean=cond_mean)).eval()
    with torch.no_grad():
        for name in ("inj2", "inj4", "injm"):
            if hasattr(model, name):
                torch.nn.init.normal_(getattr(model, name).weight, std=0.1)
    export_inter_bundle(model, folder, precisions, into=True, calib=(torch.rand(1, 3, 128, 128),) * 2)
    if gradient:
        from onnx_export.synthesis_gradient import add_residual_graph

        add_residual_graph(model, folder)
    return ModelBundle.load(folder)


def pan(n: int, w: int = 128, h: int = 72) -> list[Frame]:
    """n frames of a texture sliding 2 px per frame to the left."""
    rng = np.random.default_rng(0)
    big = np.clip(rng.normal(128, 40, (h, w + 4 * n)).cumsum(1) / 8 % 256, 0, 255).astype(np.uint8)
    ch, cw = Frame.chroma_shape(w, h)
    return [Frame(y=np.ascontiguousarray(big[:, 2 * i : 2 * i + w]), u=np.full((ch, cw), 120, np.uint8),
                  v=np.full((ch, cw), 136, np.uint8), pts=i) for i in range(n)]


def encode_with_references(enc, frames: list[Frame]):
    """Encode frames into one stream; (a reader over it, the encoder's closed-loop reference
    after each frame: what the decoder must reproduce bit for bit)."""
    import io

    from zvc69_rt.bitstream import StreamReader, StreamWriter

    buf = io.BytesIO()
    writer = StreamWriter(buf, enc.file_header())
    refs = []
    for f in frames:
        for p in enc.encode(f):
            writer.write_packet(p)
        refs.append(enc._reference.copy())
    writer.close()
    return StreamReader(io.BytesIO(buf.getvalue())), refs


def assert_closed_loop(enc, frames: list[Frame], bundle: ModelBundle) -> list[int]:
    """Check every frame decodes to the encoder's reference after it
    (encode_with_references); the frame types in stream order."""
    from zvc69_rt.codec.decoder import Decoder

    reader, refs = encode_with_references(enc, frames)
    dec = Decoder(reader.header, bundle=bundle)
    types = []
    for (fh, data), want in zip(reader.iter_frames(), refs, strict=True):
        types.append(fh.frame_type)
        np.testing.assert_array_equal(dec.decode_rgb(fh, data), want)
    return types
