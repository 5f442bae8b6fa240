"""`zvc69 eval compare`: BD-rate of one eval run against another (ship checks)."""

import copy
import json
import math

import pytest

from zvc69_rt.cli import main
from zvc69_rt.errors import InputError
from zvc69_rt.eval.compare import compare_runs, load_run, markdown

RATES = (100.0, 200.0, 400.0, 800.0)


def _video_point(kbps: float, psnr: float) -> dict:
    return {"codec": "ZVC69", "quality": 0, "bits": int(kbps * 640), "bpp": kbps / 1000, "psnr_y": psnr,
            "psnr_yuv": psnr, "ms_ssim": 1 - 10 ** (-psnr / 20), "kbps": kbps, "seconds": 0.0, "items": []}


def _video_run(scale: dict[str, float], clips=("a", "b"), gop=16) -> dict:
    """Clip c's curve: PSNR = 30 + 3 log2(kbps / (100 scale[c])) (scale < 1: fewer bits)."""
    return {
        "kind": "video", "gop": gop, "bframes": 0, "fps": 25,
        "clips": [{"name": c, "width": 64, "height": 32, "frames": 4} for c in clips],
        "results": {c: {"ZVC69": [_video_point(r * scale.get(c, 1.0), 30 + 3 * math.log2(r / 100)) for r in RATES]}
                    for c in clips},
    }


def test_identical_runs_compare_to_zero():
    run = _video_run({})
    res = compare_runs(run, copy.deepcopy(run))
    assert [r["name"] for r in res["rows"]] == ["a", "b"]
    for r in [*res["rows"], res["mean"]]:
        assert abs(r["bd_rate"]) < 1e-9 and abs(r["bd_psnr"]) < 1e-9


def test_video_rows_are_per_clip_and_the_mean_is_their_mean():
    res = compare_runs(_video_run({}), _video_run({"a": 0.9, "b": 0.8}))
    a, b = (r["bd_rate"] for r in res["rows"])
    assert a == pytest.approx(-10.0, abs=1e-6) and b == pytest.approx(-20.0, abs=1e-6)
    assert res["mean"]["bd_rate"] == pytest.approx(-15.0, abs=1e-6)
    assert res["mean"]["bd_psnr"] > 0  # fewer bits on the same curve shape: higher PSNR at equal rate
    md = markdown(res, "base", "cand")
    assert "| a | -10.00 % |" in md and "| mean over clips | -15.00 % |" in md


def test_clips_in_one_run_only_are_listed_not_compared():
    res = compare_runs(_video_run({}, clips=("a", "b")), _video_run({}, clips=("a", "c")))
    assert [r["name"] for r in res["rows"]] == ["a"]
    assert res["only_base"] == ["b"] and res["only_cand"] == ["c"]
    assert "Only in cand (not compared): c" in markdown(res, "base", "cand")


def test_runs_with_other_settings_are_refused():
    with pytest.raises(InputError, match="gop"):
        compare_runs(_video_run({}), _video_run({}, gop=32))
    other = _video_run({})
    other["clips"][0]["frames"] = 8
    with pytest.raises(InputError, match="a differs"):
        compare_runs(_video_run({}), other)
    with pytest.raises(InputError, match="share no clip"):
        compare_runs(_video_run({}, clips=("a",)), _video_run({}, clips=("b",)))
    with pytest.raises(InputError, match="no x264-medium points"):
        compare_runs(_video_run({}), _video_run({}), codec="x264-medium")


def _image_run(scale: dict[str, float]) -> dict:
    names = ("p", "q")
    points = []
    for i, r in enumerate(RATES):
        items = [{"image": n, "bits": int(r * scale.get(n, 1.0) * 100), "bpp": r * scale.get(n, 1.0) / 1000,
                  "psnr_rgb": 28 + 3 * math.log2(r / 100) + k, "psnr_y": 0.0, "ms_ssim": 0.9 + 0.02 * i}
                 for k, n in enumerate(names)]
        points.append({"codec": "ZVC69", "quality": i + 1, "bits": sum(t["bits"] for t in items),
                       "bpp": sum(t["bpp"] for t in items) / 2, "psnr_rgb": sum(t["psnr_rgb"] for t in items) / 2,
                       "psnr_y": 0.0, "ms_ssim": sum(t["ms_ssim"] for t in items) / 2, "items": items})
    return {"kind": "images", "images": [{"name": n, "width": 64, "height": 48} for n in names],
            "results": {"ZVC69": points}}


def test_image_runs_compare_per_image_and_on_the_mean_curve():
    res = compare_runs(_image_run({}), _image_run({"q": 0.75}))
    rows = {r["name"]: r["bd_rate"] for r in res["rows"]}
    assert rows["p"] == pytest.approx(0.0, abs=1e-9)
    assert rows["q"] == pytest.approx(-25.0, abs=1e-6)
    assert -25.0 < res["mean"]["bd_rate"] < 0.0 and res["mean"]["name"] == "mean curve"
    with pytest.raises(InputError, match="video run"):
        compare_runs(_image_run({}), _video_run({}))


def test_load_run_names_the_problem(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_run(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable eval JSON"):
        load_run(bad)
    bad.write_text(json.dumps({"kind": "audio", "results": {}}))
    with pytest.raises(InputError, match="not a zvc69 eval"):
        load_run(bad)


def test_cli_prints_and_writes_the_table(tmp_path, capsys):
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    base.write_text(json.dumps(_video_run({})))
    cand.write_text(json.dumps(_video_run({"a": 0.9, "b": 0.9})))
    out = tmp_path / "sub" / "cmp.md"
    assert main(["eval", "compare", str(base), str(cand), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| mean over clips | -10.00 % |" in printed
    assert out.read_text() == printed
    assert main(["eval", "compare", str(base), str(tmp_path / "nope.json")]) != 0
    assert "no such file" in capsys.readouterr().err


def test_malformed_runs_get_an_input_error_not_a_traceback():
    run = _video_run({})
    broken = copy.deepcopy(run)
    broken["clips"] = [{"width": 64}]
    with pytest.raises(InputError, match="lacks names"):
        compare_runs(run, broken)
    broken = copy.deepcopy(run)
    broken["results"]["a"]["ZVC69"][0] = {"kbps": 1.0, "unexpected": 2}
    with pytest.raises(InputError, match="malformed RD point"):
        compare_runs(run, broken)
    images = _image_run({})
    del images["results"]["ZVC69"][0]["items"][1]
    with pytest.raises(InputError, match="q: missing"):
        compare_runs(_image_run({}), images)
