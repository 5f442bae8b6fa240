"""`zvc69 bench codec --inter`: the P-frame decode stages are timed on a real P-frame."""

import types

from zvc69_rt.bench import codec as bench_codec


def test_p_frame_decode_times_every_stage_of_a_full_size_residual():
    args = types.SimpleNamespace(backend="onnxruntime", precision="fp32", model=None, repeat=1)
    frame = bench_codec._test_frame(256, 144)
    r = bench_codec._p_frame_decode(args, 256, 144, frame)
    assert set(r) == {"p_decode_s", "p_entropy_decode_s", "p_prediction_s", "p_hyper+residual_synthesis_s",
                      "p_bytes"}
    assert r["p_bytes"] > 100  # a coded residual, not a skip
    for k in ("p_decode_s", "p_entropy_decode_s", "p_prediction_s", "p_hyper+residual_synthesis_s"):
        assert r[k] > 0
