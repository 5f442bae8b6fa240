"""The TensorRT optimisation profiles (engines/profiles.py) admit every shape the codec
really feeds each graph of the shipped bundle: an engine built for a profile refuses any
input outside [min, max], so a wrong stride breaks encoding on the GPU only (until session
20 the residual graphs used the intra strides: z_hat at H/64 and y_hat at H/16 where the P
model has them at H/32 and H/8). Checked by recording a real encode and decode on the CPU:
I-, P- and B-frames, reduced sizes, both latent refinements (the shipped intra graphs, a
random P model's graphs: the same shapes as the shipped one's)."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("torch")  # the P model's residual gradient graph is exported for the test

from engines.profiles import Profile, _stride, input_shapes, onnx_inputs
from tests.clips import example_frames
from tests.fakes.inter import random_inter_bundle
from zvc69_rt.bitstream import StreamReader
from zvc69_rt.codec import latent_refine
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.decoder import Decoder
from zvc69_rt.codec.encoder import Encoder, encode_to_stream, encoder_graphs
from zvc69_rt.codec.inter import DECODER_GRAPHS
from zvc69_rt.codec.runtime import load_runners


class _Recording:
    """A runner that notes the shape of every input it is given."""

    def __init__(self, runner, name: str, fed: dict):
        self.runner, self.name, self.fed = runner, name, fed

    def run(self, feeds: dict) -> dict:
        self.fed[self.name].append({k: tuple(v.shape) for k, v in feeds.items()})
        return self.runner.run(feeds)


def test_profiles_admit_every_shape_the_codec_feeds(tmp_path):
    bundle = random_inter_bundle(tmp_path / "bundle", cond=4, gradient=True)
    frames = example_frames(4)
    w, h = frames[0].width, frames[0].height
    cfg = EncoderConfig(width=w, height=h, gop=4, bframes=1, quality=50, refine_steps=1, anneal_steps=1,
                        p_refine_steps=1)
    graphs = tuple(dict.fromkeys(encoder_graphs(cfg, bundle) + DECODER_GRAPHS))
    assert latent_refine.RESIDUAL_GRAPH in graphs and latent_refine.GRAPH in graphs
    runners, _ = load_runners(bundle, "onnxruntime", "fp32", graphs)
    fed: dict = defaultdict(list)
    recording = {g: _Recording(r, g, fed) for g, r in runners.items()}
    sink = io.BytesIO()
    enc = Encoder(cfg, bundle=bundle, runners=recording)
    enc.inter.skip = "never"  # the random P model's residuals would rather be skipped: code (and refine) them
    encode_to_stream(enc, frames, sink)
    reader = StreamReader(io.BytesIO(sink.getvalue()))
    dec = Decoder(reader.header, bundle=bundle, runners=recording)
    for fh, payload in reader.iter_frames():
        dec.decode_rgb(fh, payload)

    profile = Profile("clip", w, h)
    strides = bundle.manifest.get("input_strides")
    for graph in graphs:
        assert fed[graph], f"{graph} never ran: the clip no longer exercises it"
        shapes = input_shapes(graph, onnx_inputs(bundle.graph_path(graph, "fp32").read_bytes()), profile,
                              bundle.alignment, strides)
        for feeds in fed[graph]:
            assert set(feeds) == set(shapes), graph
            for name, shape in feeds.items():
                lo, _, hi = shapes[name]
                assert np.all(np.array(lo) <= shape) and np.all(np.array(shape) <= hi), (graph, name, shape, lo, hi)
            # and the strides agree with each other: every spatial input maps back to one picture size
            pictures = {(shape[2] * _stride(graph, name, strides), shape[3] * _stride(graph, name, strides))
                        for name, shape in feeds.items() if len(shape) == 4 and shape[2:] != (1, 1)}
            assert len(pictures) == 1, (graph, feeds)
