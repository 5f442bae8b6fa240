"""`zvc69 import-compressai`: CompressAI hyperprior checkpoints as model bundles.

CompressAI is not needed: the converter is tested on random state dicts with
CompressAI's key names and shapes, and on a small fixture made with real CompressAI
1.2.8 (tests/data/compressai_mbt2018-mean_N8_M12*, tools/anchors/compressai_reference.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zvc69_rt.bitstream import HeaderFlags, StreamReader
from zvc69_rt.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "bikes_320x136.y4m"
DATA = REPO / "tests" / "data"
FIXTURE_PTH = DATA / "compressai_mbt2018-mean_N8_M12.pth"
FIXTURE_REF = DATA / "compressai_mbt2018-mean_N8_M12_ref.npz"
ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean")


def zvc69(*args):
    return subprocess.run([sys.executable, "-m", "zvc69_rt", *args], check=False, capture_output=True, cwd=REPO,
                          timeout=300)


def test_without_torch_exits_2_with_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec("torch") -> None
    rc = cli_main(["import-compressai", str(tmp_path / "x.pth"), "--out", str(tmp_path / "b")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "torch" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both architectures, random weights, imported through the CLI (old and new key names)."""
    torch = pytest.importorskip("torch")
    from onnx_export.compressai_import import random_state_dict

    root = tmp_path_factory.mktemp("cai")
    out = {}
    for i, arch in enumerate(ARCHS):
        sd = random_state_dict(arch, 8, 12, seed=i)
        if i == 0:  # CompressAI < 1.2 names and a training checkpoint wrapper
            sd = {k.replace("matrices.", "_matrix").replace("biases.", "_bias").replace("factors.", "_factor"): v
                  for k, v in sd.items()}
            sd = {"epoch": 3, "state_dict": sd}
        ckpt = root / f"{arch}.pth"
        torch.save(sd, ckpt)
        rc = cli_main(["import-compressai", str(ckpt), "--out", str(root / arch), "--quiet"])
        assert rc == 0
        out[arch] = root / arch
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_bundle_matches_torch_model(imported, arch):
    """The ONNX graphs + our entropy coding reproduce the torch model's y_hat and x_hat."""
    import torch

    from onnx_export.compressai_import import infer_arch, load_model, random_state_dict
    from zvc69_rt.codec.intra import IntraCodec
    from zvc69_rt.codec.runtime import load_runners
    from zvc69_rt.models.bundle import ModelBundle

    sd = random_state_dict(arch, 8, 12, seed=ARCHS.index(arch))
    assert infer_arch(sd) == arch
    bundle = ModelBundle.load(imported[arch])
    assert bundle.scale_path == "float" and not bundle.integerized and bundle.single_rate
    assert bundle.manifest["origin"] == f"compressai:{arch}"
    codec = IntraCodec(bundle, load_runners(bundle, "onnxruntime")[0], num_slices=1)
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.5, 0.2, (3, 128, 192)), 0, 1).astype(np.float32)
    lat = codec.analyse(x, 57)
    data, symbols, _ = codec.code(lat)
    x_dec = codec.decompress(data, symbols.shape[1:], 57)
    model = load_model(sd)
    with torch.no_grad():
        y = model.g_a(torch.from_numpy(x)[None])
        med = model.entropy_bottleneck.quantiles[:, 0, 1].reshape(1, -1, 1, 1)
        z_hat = torch.round(model.hyper_analysis(y) - med) + med
        mean, _scale = model.hyper_synthesis(z_hat)
        y_hat = torch.round(y - mean) + mean
        x_ref = model.g_s(y_hat).clamp(0, 1)[0].numpy()
    assert np.abs(symbols + lat.mean - y_hat[0].numpy()).max() < 1e-4
    assert np.abs(x_dec - x_ref).max() < 1e-4
    assert (symbols != 0).mean() > 0.1  # a real operating point, not all zeros
    assert lat.scale_index.max() > lat.scale_index.min()


def test_cli_roundtrip_with_model(imported, tmp_path):
    """encode/decode --model BUNDLE; the stream is not INTEGERIZED; quality warns (single-rate)."""
    bundle = imported["mbt2018-mean"]
    zvc = tmp_path / "clip.zvc"
    r = zvc69("encode", str(CLIP), "-o", str(zvc), "--frames", "2", "--quiet", "--model", str(bundle),
              "--quality", "20")
    assert r.returncode == 0, r.stderr.decode()
    assert "single-rate" in r.stderr.decode()
    hdr = StreamReader(str(zvc)).header
    assert not hdr.flags & HeaderFlags.INTEGERIZED
    out = tmp_path / "out.y4m"
    r = zvc69("decode", str(zvc), "-o", str(out), "--quiet", "--model", str(bundle))
    assert r.returncode == 0, r.stderr.decode()
    assert out.stat().st_size > 320 * 136 * 3 // 2 * 2
    r = zvc69("decode", str(zvc), "-o", str(tmp_path / "never.y4m"), "--quiet")  # the shipped model
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()


@pytest.mark.parametrize("arch", ARCHS)
def test_decoder_reproduces_encoder_reconstruction(imported, arch):
    from zvc69_rt.bitstream import FrameHeader
    from zvc69_rt.codec.api import EncoderConfig
    from zvc69_rt.codec.decoder import Decoder
    from zvc69_rt.codec.encoder import Encoder
    from zvc69_rt.frame import Frame
    from zvc69_rt.models.bundle import ModelBundle

    bundle = ModelBundle.load(imported[arch])
    w, h = 136, 72
    rng = np.random.default_rng(1)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    frame = Frame(y=rng.integers(0, 256, (h, w), dtype=np.uint8), u=rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                  v=rng.integers(0, 256, (ch, cw), dtype=np.uint8), pts=0)
    cfg = EncoderConfig(width=w, height=h, gop=1, backend="onnxruntime")
    enc = Encoder(cfg, bundle=bundle)
    fh_file = enc.file_header(total_frames=1)
    assert not fh_file.flags & HeaderFlags.INTEGERIZED
    work = enc.infer(enc.preprocess(frame))
    lat = work.latents
    recon = enc.intra.synthesise(np.rint(lat.y - lat.mean).astype(np.int32), lat.mean, cfg.quality)
    pkt = enc.entropy_code(work)
    dec = Decoder(fh_file, bundle=bundle, backend="onnxruntime")
    fh = FrameHeader(frame_type=pkt.frame_type, quality_level=pkt.quality, frame_size=len(pkt.data), pts=0,
                     latent_height=pkt.latent_height, latent_width=pkt.latent_width)
    rgb = dec.decode_rgb(fh, pkt.data)
    np.testing.assert_array_equal(rgb, recon)


def test_missing_precision_is_a_clear_error(imported):
    from zvc69_rt.errors import InputError
    from zvc69_rt.models.bundle import ModelBundle

    bundle = ModelBundle.load(imported["bmshj2018-hyperprior"])
    assert bundle.graph_path("synthesis", "fp16").is_file()
    with pytest.raises(InputError, match="no int8 variant"):
        bundle.graph_path("synthesis", "int8")


def test_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "bad.pth"
    torch.save({"g_a.0.weight": torch.zeros(4, 3, 5, 5)}, ckpt)
    rc = cli_main(["import-compressai", str(ckpt), "--out", str(tmp_path / "b")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_matches_real_compressai_fixture(tmp_path):
    """Weights and outputs from real CompressAI 1.2.8 (mbt2018-mean, N=8, M=12, 128x128 crop
    of skimage's astronaut): same y_hat, reconstruction within 1e-4, bytes within 1 %."""
    pytest.importorskip("torch")
    from onnx_export.compressai_import import compare_with_reference, import_checkpoint

    import_checkpoint(FIXTURE_PTH, tmp_path / "b", precisions=("fp32",))
    with np.load(FIXTURE_REF) as ref:
        res = compare_with_reference(tmp_path / "b", dict(ref))
    assert res["y_symbols_differing"] == 0
    assert res["max_abs_synthesis_same_y_hat"] <= 1e-4
    assert res["max_abs_full_decode"] <= 1e-4
    # coded symbols only: ZVCP headers and every stream's final states left out on both sides
    assert abs(res["bytes_rel_diff_without_headers"]) <= 0.01
