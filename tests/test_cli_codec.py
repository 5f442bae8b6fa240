"""The zvc69 encode/decode commands as a user runs them: files, pipes, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "bikes_320x136.y4m"


def zvc69(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "zvc69_rt", *args], input=stdin, capture_output=True,
                          cwd=REPO, timeout=300, check=False)


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    out = tmp_path_factory.mktemp("enc") / "clip.zvc"
    r = zvc69("encode", str(CLIP), "-o", str(out), "--frames", "3", "--quiet")
    assert r.returncode == 0, r.stderr.decode()
    return out


def test_encode_decode_files_and_pipes_agree(stream, tmp_path):
    import av

    dec = tmp_path / "out.y4m"
    r = zvc69("decode", str(stream), "-o", str(dec), "--quiet")
    assert r.returncode == 0, r.stderr.decode()
    with av.open(str(dec)) as c:  # FFmpeg accepts what we write
        frames = [f.to_ndarray() for f in c.decode(video=0)]
    assert len(frames) == 3
    piped = zvc69("decode", "-", "-o", "-", "--quiet", stdin=stream.read_bytes())
    assert piped.returncode == 0 and piped.stdout == dec.read_bytes()


def test_stdin_encode_equals_file_encode_apart_from_patched_header(stream):
    r = zvc69("encode", "-", "-o", "-", "--frames", "3", "--quiet", stdin=CLIP.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    ref = stream.read_bytes()
    assert len(r.stdout) == len(ref)
    assert r.stdout[64:] == ref[64:]  # frames, index, trailer identical; header fields patched only on a file


def test_missing_input_is_one_line_error():
    r = zvc69("decode", "/nonexistent/x.zvc", "-o", "-")
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "cannot open" in err


def test_truncated_stream_leaves_no_output(stream, tmp_path):
    bad = tmp_path / "trunc.zvc"
    bad.write_bytes(stream.read_bytes()[:-40])
    out = tmp_path / "never.y4m"
    r = zvc69("decode", str(bad), "-o", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    assert not out.exists() and not list(tmp_path.glob(".never.y4m*"))


def test_wrong_frame_size_in_raw_input_is_rejected(tmp_path):
    raw = tmp_path / "x.yuv"
    raw.write_bytes(bytes(64 * 64 * 3 // 2 * 2 + 5))
    r = zvc69("encode", str(raw), "-o", str(tmp_path / "x.zvc"), "--size", "64x64", "--fps", "25")
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    assert not (tmp_path / "x.zvc").exists()
