"""`zvc69 info`: output, checksum verification, errors, and pipe vs seekable equality."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from tests.test_bitstream_stream import GOOD, OFFS, TYPES, PipeSource
from zvc69_rt.bitstream import FileHeader
from zvc69_rt.cli import main

WRITER = textwrap.dedent("""
    import sys
    from zvc69_rt.bitstream import FileHeader, HeaderFlags, StreamWriter, atomic_output
    types = [0, 1, 1, 2, 3, 0, 1, 2]
    with atomic_output(sys.argv[1]) as sink:
        w = StreamWriter(sink, FileHeader(width=640, height=360, framerate_num=24, framerate_den=1,
                                          flags=HeaderFlags.HAS_B_FRAMES, model_hash=b"\\x11\\x22\\x33\\x44"))
        for i, t in enumerate(types):
            w.write_frame(t, 50, 23, 40, i, bytes([i]) * (100 * i + 17))
        w.close()
""")


def _run(*args: str, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], stdin=stdin, capture_output=True, timeout=60, check=False)


def test_info_pipe_and_file_give_the_same_result(tmp_path):
    f = tmp_path / "s.zvc"
    assert _run("-c", WRITER, str(f)).returncode == 0
    from_file = json.loads(_run("-m", "zvc69_rt", "info", str(f), "--json").stdout)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, "-"], stdout=subprocess.PIPE)
    try:
        piped = _run("-m", "zvc69_rt", "info", "-", "--json", stdin=writer.stdout)
    finally:
        writer.stdout.close()
        assert writer.wait(timeout=60) == 0
    assert piped.returncode == 0, piped.stderr
    from_pipe = json.loads(piped.stdout)
    hf, hp = from_file.pop("header"), from_pipe.pop("header")
    assert (hp["total_frames"], hp["index_offset"]) == (0, 0)  # a pipe writer cannot patch these
    assert hf["total_frames"] == 8 and hf["index_offset"] == from_file["index"]["offset"]
    for k in ("total_frames", "index_offset"):
        hf.pop(k), hp.pop(k)
    assert hf == hp
    assert from_file.pop("file") == str(f) and from_pipe.pop("file") == "-"
    assert from_file == from_pipe
    assert from_file["summary"]["result"] == "ok"
    assert [fr["type"] for fr in from_file["frames"]] == ["I", "P", "P", "B", "BBi", "I", "P", "B"]
    assert [e["frame_number"] for e in from_file["index"]["entries"]] == [0, 5]
    size = f.stat().st_size
    assert from_file["stream_size"] == size
    assert from_file["summary"]["bitrate_bps"] == pytest.approx(size * 8 / (8 / 24))


def test_info_cat_file_equals_file(tmp_path, capsys, monkeypatch):
    p = tmp_path / "g.zvc"
    p.write_bytes(GOOD)
    assert main(["info", str(p), "--json"]) == 0
    a = json.loads(capsys.readouterr().out)

    class Stdin:
        buffer = PipeSource(GOOD)

    monkeypatch.setattr("sys.stdin", Stdin)
    assert main(["info", "-", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    a.pop("file"), b.pop("file")
    assert a == b


def test_info_human_output(tmp_path, capsys):
    p = tmp_path / "g.zvc"
    p.write_bytes(GOOD)
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    hdr = FileHeader.unpack(GOOD)
    assert "320x136" in out and "HAS_INDEX|HAS_B_FRAMES|HAS_TRAILER|INTEGERIZED" in out
    assert f"total_frames {len(TYPES)}" in out and f"index_offset {hdr.index_offset}" in out
    assert "index: 3 entries" in out and "trailer: frame_count 11" in out
    assert f"checksums ok: {len(TYPES)} frame CRC-16, trailer CRC-32 ok" in out
    frame_lines = [ln for ln in out.splitlines() if ln.strip().endswith(" ok") and ln.strip()[0].isdigit()]
    assert len(frame_lines) == len(TYPES)


@pytest.mark.parametrize("data,msg", [
    (GOOD[:-1], "trailer"),
    (GOOD[:100], "trailer"),
    (b"not a zvc stream at all" * 4, "file header: magic"),
    (GOOD[:OFFS[1] + 40] + bytes([GOOD[OFFS[1] + 40] ^ 1]) + GOOD[OFFS[1] + 41:], "frame 1: checksum"),
])
def test_info_malformed_is_one_line_exit_1(tmp_path, data, msg):
    p = tmp_path / "bad.zvc"
    p.write_bytes(data)
    r = _run("-m", "zvc69_rt", "info", str(p))
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("zvc69 info: error: ") and msg in err
    assert r.stdout == b""


def test_info_missing_file(capsys):
    assert main(["info", "/nonexistent/x.zvc"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read /nonexistent/x.zvc" in err


def test_info_on_stdin_pipe_malformed(monkeypatch, capsys):
    class Stdin:
        buffer = PipeSource(GOOD[:500])

    monkeypatch.setattr("sys.stdin", Stdin)
    assert main(["info", "-"]) == 1
    assert "zvc69 info: error: frame" in capsys.readouterr().err


def test_writer_on_real_stdout_pipe():
    r = subprocess.run([sys.executable, "-c", WRITER, "-"], capture_output=True, timeout=60, check=False)
    assert r.returncode == 0
    data = r.stdout
    h = FileHeader.unpack(data)
    assert (h.total_frames, h.index_offset) == (0, 0)
    from zvc69_rt.bitstream import StreamReader

    rd = StreamReader(io.BytesIO(data))
    assert [k.frame_number for k in rd.keyframes()] == [0, 5]
    assert len(list(rd.iter_frames())) == 8 and rd.verified
