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


def test_compressai_anchor_runs_at_the_transforms_width(tmp_path):
    """A bundle with NT=96 transforms over an N=64 hyperprior is timed against
    MeanScaleHyperprior(96, M): the transforms are the work, so that is its architecture."""
    import json
    import sys

    from zvc69_rt.models.bundle import ModelBundle

    log = tmp_path / "argv.json"
    fake = tmp_path / "anchor_python"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "sizes = sys.argv[sys.argv.index('--sizes') + 1].split(',')\n"
        "print(json.dumps({'model': 'fake', 'sizes': {s: {'compress_s': 2.0, 'decompress_s': 3.0} for s in sizes}}))\n"
    )
    fake.chmod(0o755)
    manifest = {"alignment": 64, "transform_channels": 96, "hyperprior_channels": 64, "latent_channels": 192}
    bundle = ModelBundle(tmp_path, manifest, {})
    results = {"sizes": {"720p": {"encode_s": 0.5, "decode_s": 1.0}}}
    args = types.SimpleNamespace(anchor_python=str(fake))
    bench_codec._anchor(args, bundle, results)
    argv = json.loads(log.read_text())
    assert argv[argv.index("--N") + 1] == "96" and argv[argv.index("--M") + 1] == "192"
    assert argv[argv.index("--sizes") + 1] == "1280x768"  # 720 padded to the bundle's 64
    assert results["sizes"]["720p"]["speedup_encode_vs_compressai"] == 4.0
    assert results["sizes"]["720p"]["speedup_decode_vs_compressai"] == 3.0
    # bundles from before the widening option have no transform_channels: the hyperprior's N
    del manifest["transform_channels"]
    assert bundle.transform_channels == 64


def test_i_frame_bench_times_the_plain_full_size_path(monkeypatch, capsys):
    """The anchor comparison times what CompressAI's compress/decompress do: a full-size
    I-frame without the RD tools (a residual layer would route the encoder around infer's latents)."""
    import json

    monkeypatch.setitem(bench_codec.SIZES, "tiny", (192, 128))
    args = types.SimpleNamespace(sizes="tiny", repeat=1, precision="fp32", backend="onnxruntime", model=None,
                                 anchor_python=None, inter=False, json=True)
    assert bench_codec.run(args) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sizes"]["tiny"]
    assert r["bytes"] > 100 and r["decode_s"] > 0 and r["synthesis_s"] > 0
