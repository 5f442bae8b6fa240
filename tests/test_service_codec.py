"""The service on the real codec: its bitstreams are byte-identical to in-process Encoder+StreamWriter
and to `zvc69 encode`; /v1/encode and /v1/decode match the CLI; the Python client round-trips."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from zvc69_rt.service.app import create_app
from zvc69_rt.service.settings import Settings

from zvc69_rt.cli import main as cli_main
from zvc69_rt.client import ServiceClient, encode_frames_via_server
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder, encode_to_stream
from zvc69_rt.frame import Frame
from zvc69_rt.io.y4m import Y4MReader

pytestmark = pytest.mark.filterwarnings("ignore:this model bundle has no inter-frame")

CLIP = Path(__file__).resolve().parents[1] / "examples" / "bikes_320x136.y4m"
N = 3
KEY = "k" * 32


@pytest.fixture(scope="module")
def clip3() -> bytes:
    """The first N frames of the example clip as a Y4M file."""
    raw = CLIP.read_bytes()
    head = raw.index(b"\n") + 1
    fb = 6 + Frame.nbytes_for(320, 136)
    return raw[: head + N * fb]


@pytest.fixture(scope="module")
def frames(clip3) -> list[Frame]:
    return list(Y4MReader(io.BytesIO(clip3)))


@pytest.fixture(scope="module")
def cli_zvc(tmp_path_factory, clip3) -> bytes:
    d = tmp_path_factory.mktemp("svc")
    (d / "in.y4m").write_bytes(clip3)
    assert cli_main(["encode", str(d / "in.y4m"), "-o", str(d / "out.zvc"), "--quiet"]) == 0
    return (d / "out.zvc").read_bytes()


@pytest.fixture(scope="module")
def http():
    with TestClient(create_app(Settings(api_keys=(KEY,), warmup=False))) as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c


def test_stream_bitstream_equals_in_process_encoder_and_cli(http, frames, cli_zvc):
    fb = Frame.nbytes_for(320, 136)
    sid = http.post("/v1/streams", json={"width": 320, "height": 136, "fps_num": 25}).json()["id"]
    body = b"".join(f.to_bytes() for f in frames)
    r1 = http.post(f"/v1/streams/{sid}/frames", content=body[:fb])
    r2 = http.post(f"/v1/streams/{sid}/frames", content=body[fb:])
    r3 = http.post(f"/v1/streams/{sid}/close")
    assert r1.status_code == r2.status_code == r3.status_code == 200
    svc = http.get(f"/v1/streams/{sid}/bitstream").content

    sink = io.BytesIO()
    encode_to_stream(Encoder(EncoderConfig(width=320, height=136, fps_num=25, fps_den=1)), frames, sink)
    assert svc == sink.getvalue()
    assert svc[64 : 64 + len(r1.content + r2.content + r3.content)] == r1.content + r2.content + r3.content
    assert svc == cli_zvc  # same frames, same (default) settings as `zvc69 encode`


def test_settings_change_the_bitstream_like_the_cli(http, frames, clip3, tmp_path):
    (tmp_path / "in.y4m").write_bytes(clip3)
    assert cli_main(["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "q.zvc"), "--quality", "20",
                     "--gop", "4", "--quiet"]) == 0
    with ServiceClient("http://x", api_key=KEY, http=http) as c:
        s = c.open_stream(320, 136, 25, 1, quality=20, gop=4)
        s.push(frames)
        s.close()
        assert s.bitstream() == (tmp_path / "q.zvc").read_bytes()
        s.delete()


def test_v1_encode_equals_cli(http, clip3, cli_zvc):
    def chunks():
        for i in range(0, len(clip3), 7777):
            yield clip3[i : i + 7777]

    r = http.post("/v1/encode", content=chunks(), headers={"Content-Type": "video/x-yuv4mpeg"})
    assert r.status_code == 200, r.text
    assert r.content == cli_zvc and r.headers["x-frames-in"] == str(N)
    with ServiceClient("http://x", http=http) as c:
        assert c.encode_y4m(clip3, chunk=4096) == cli_zvc


def test_v1_encode_passes_equal_the_clis(http, clip3, tmp_path):
    """passes=2 runs `zvc69 encode --passes 2` on the uploaded file: same kept stream."""
    (tmp_path / "in.y4m").write_bytes(clip3)
    assert cli_main(["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "p.zvc"), "--gop", "1",
                     "--bitrate", "400k", "--passes", "2", "--quiet"]) == 0
    params = {"gop": 1, "rate_control": "vbr", "bitrate": 400_000, "passes": 2}
    r = http.post("/v1/encode", content=clip3, params=params)
    assert r.status_code == 200, r.text
    assert r.content == (tmp_path / "p.zvc").read_bytes()
    assert r.headers["x-passes"] == "2" and r.headers["x-kept-pass"] in ("1", "2")
    one = http.post("/v1/encode", content=clip3, params={**params, "passes": 1})
    assert one.status_code == 200 and "x-passes" not in one.headers
    # pass 1 is the one-pass encode, and the kept pass is never further from the target
    miss = {k: abs(float(x.headers["x-bitrate-error-pct"])) for k, x in (("two", r), ("one", one))}
    assert miss["two"] <= miss["one"]
    assert (r.content == one.content) == (r.headers["x-kept-pass"] == "1")


@pytest.mark.parametrize("params, reason", [
    ({"passes": 2}, "give a bitrate"),
    ({"passes": 2, "rate_control": "cbr", "bitrate": 400_000}, "give a bitrate"),
    ({"passes": 4, "rate_control": "vbr", "bitrate": 400_000}, ""),
])
def test_v1_encode_refuses_passes_without_a_vbr_target(http, clip3, params, reason):
    r = http.post("/v1/encode", content=clip3, params=params)
    assert r.status_code == 422 and reason in r.text


def test_cli_passes_on_a_server_equal_the_local_ones(http, clip3, tmp_path, monkeypatch, capsys):
    """`zvc69 encode X.y4m --server URL --passes 2` posts the file to /v1/encode?passes=2."""
    import zvc69_rt.client

    (tmp_path / "in.y4m").write_bytes(clip3)
    flags = ["--gop", "1", "--bitrate", "400k", "--passes", "2", "--quiet"]
    assert cli_main(["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "local.zvc"), *flags]) == 0
    monkeypatch.setattr(zvc69_rt.client, "ServiceClient", lambda url: ServiceClient(url, api_key=KEY, http=http))
    assert cli_main(["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "remote.zvc"), "--server", "http://x",
                     *flags]) == 0
    assert (tmp_path / "remote.zvc").read_bytes() == (tmp_path / "local.zvc").read_bytes()
    assert cli_main(["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "r.zvc"), "--server", "http://x",
                     "--frames", "2", *flags]) != 0
    assert "give a .y4m file and no --frames" in capsys.readouterr().err and not (tmp_path / "r.zvc").exists()


def test_v1_encode_passes_have_their_own_body_limit(clip3):
    settings = Settings(warmup=False, max_spool_bytes=len(clip3) - 1)
    params = {"gop": 1, "rate_control": "vbr", "bitrate": 400_000}
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/encode", content=clip3, params={**params, "passes": 2})  # declared length
        assert r.status_code == 413 and "2 passes" in r.json()["detail"]
        r = c.post("/v1/encode", content=iter([clip3[:5000], clip3[5000:]]), params={**params, "passes": 2})  # chunked
        assert r.status_code == 413 and "2 passes" in r.json()["detail"]
        assert c.post("/v1/encode", content=clip3, params=params).status_code == 200  # one pass streams it


def test_v1_encode_passes_without_temporary_space_is_507(http, clip3, monkeypatch):
    import zvc69_rt.service.routes_oneshot as oneshot

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(oneshot.tempfile, "TemporaryFile", full)
    r = http.post("/v1/encode", content=clip3, params={"gop": 1, "rate_control": "vbr", "bitrate": 400_000,
                                                         "passes": 2})
    assert r.status_code == 507 and "No space left" in r.json()["detail"] and "passes=1" in r.json()["detail"]
    assert http.post("/v1/encode", content=clip3).status_code == 200  # the slot was returned


def test_v1_decode_equals_cli(http, cli_zvc, tmp_path):
    (tmp_path / "s.zvc").write_bytes(cli_zvc)
    assert cli_main(["decode", str(tmp_path / "s.zvc"), "-o", str(tmp_path / "d.y4m"), "--quiet"]) == 0
    r = http.post("/v1/decode", content=cli_zvc)
    assert r.status_code == 200 and r.headers["content-type"].startswith("video/x-yuv4mpeg")
    assert r.content == (tmp_path / "d.y4m").read_bytes()


def test_bad_inputs_to_file_routes_are_422_with_reason(http, clip3, cli_zvc):
    r = http.post("/v1/encode", content=b"NOTY4M at all\n")
    assert r.status_code == 422 and "Y4M" in r.json()["detail"]
    r = http.post("/v1/encode", content=clip3[:-100])  # last frame truncated
    assert r.status_code == 422 and "frame 2 is truncated" in r.json()["detail"]
    r = http.post("/v1/encode", content=clip3, params={"quality": 101})
    assert r.status_code == 422
    bad = bytearray(cli_zvc)
    bad[200] ^= 0xFF  # inside frame 0's data: CRC-16 mismatch
    r = http.post("/v1/decode", content=bytes(bad))
    assert r.status_code == 422 and "frame 0" in r.json()["detail"]
    r = http.post("/v1/decode", content=cli_zvc[:40])
    assert r.status_code == 422
    assert http.get("/healthz").status_code == 200


def test_decode_output_limit_is_413(clip3, cli_zvc):
    with TestClient(create_app(Settings(warmup=False, max_decode_output_bytes=100_000))) as c:
        r = c.post("/v1/decode", content=cli_zvc)
        assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_client_pushes_numpy_frames_and_matches_frames(http, frames):
    cfg = EncoderConfig(width=320, height=136, fps_num=25)
    with ServiceClient("http://x", http=http) as c:
        a = encode_frames_via_server(c, frames, cfg)
        with c.open_stream(320, 136, 25) as s:
            arr = np.frombuffer(b"".join(f.to_bytes() for f in frames), np.uint8).reshape(N, -1)
            recs = s.push(arr)
            recs += s.close()
            b = s.bitstream()
            assert s.frames_in == N and s.records_out == N
    assert a == b and b[64 : 64 + len(recs)] == recs


def test_client_forwards_rate_control(http, frames):
    cfg = EncoderConfig(width=320, height=136, fps_num=25, rate_control="cbr", bitrate=400_000)
    with ServiceClient("http://x", http=http) as c:
        remote = encode_frames_via_server(c, frames, cfg)
    sink = io.BytesIO()
    encode_to_stream(Encoder(cfg), frames, sink)
    assert remote == sink.getvalue()
    default = EncoderConfig(width=320, height=136, fps_num=25)
    with ServiceClient("http://x", http=http) as c:
        assert encode_frames_via_server(c, frames, default) != remote  # the settings did reach the server


def test_b_frame_streams_through_the_service_match_the_cli(tmp_path):
    """Stream API and /v1/decode with P- and B-frames: same bytes as the CLI, every frame
    back in display order."""
    pytest.importorskip("torch")
    from tests.fakes.inter import pan, random_inter_bundle

    bundle = random_inter_bundle(tmp_path / "b")
    frames = pan(5)
    cfg = EncoderConfig(width=128, height=72, fps_num=25, gop=8, bframes=2, model=str(bundle.folder))
    local = io.BytesIO()
    encode_to_stream(Encoder(cfg, bundle=bundle), frames, local)
    with TestClient(create_app(Settings(warmup=False, model=str(bundle.folder)))) as c:
        sid = c.post("/v1/streams", json={"width": 128, "height": 72, "fps_num": 25, "gop": 8,
                                          "bframes": 2}).json()["id"]
        assert c.post(f"/v1/streams/{sid}/frames", content=b"".join(f.to_bytes() for f in frames)).status_code == 200
        assert c.post(f"/v1/streams/{sid}/close").status_code == 200
        remote = c.get(f"/v1/streams/{sid}/bitstream").content
        r = c.post("/v1/decode", content=remote)
    assert remote == local.getvalue()
    assert r.status_code == 200
    out = list(Y4MReader(io.BytesIO(r.content)))
    assert len(out) == 5
    with open(tmp_path / "o.zvc", "wb") as fh:
        fh.write(remote)
    assert cli_main(["decode", str(tmp_path / "o.zvc"), "-o", str(tmp_path / "o.y4m"), "--model", str(bundle.folder),
                     "--quiet"]) == 0
    assert (tmp_path / "o.y4m").read_bytes() == r.content
