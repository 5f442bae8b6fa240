"""Padding to the network alignment (edge replication, smooth), and cropping back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zvc69_rt.errors import InputError
from zvc69_rt.io.padding import crop, pad_to_multiple, padded_size


def test_1080p_to_1088():
    x = np.random.default_rng(0).random((3, 1080, 1920), dtype=np.float32)
    p, size = pad_to_multiple(x, 64)
    assert p.shape == (3, 1088, 1920) and size == (1080, 1920) and p.dtype == np.float32
    assert np.array_equal(p[:, :1080], x)
    assert (p[:, 1080:] == x[:, 1079:1080]).all()
    assert np.array_equal(crop(p, size), x)


@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 150), w=st.integers(1, 150), m=st.sampled_from([1, 2, 16, 64, 128]),
       batch=st.sampled_from([None, 1, 3]))
def test_pad_crop_round_trip_and_edges(h, w, m, batch):
    rng = np.random.default_rng(h * 1000 + w)
    shape = (3, h, w) if batch is None else (batch, 3, h, w)
    x = rng.random(shape, dtype=np.float32)
    p, size = pad_to_multiple(x, m)
    hp, wp = p.shape[-2:]
    assert p.shape[:-2] == x.shape[:-2] and size == (h, w)
    assert hp % m == 0 and wp % m == 0 and h <= hp < h + m and w <= wp < w + m
    assert np.array_equal(crop(p, size), x)
    # every padded pixel copies the nearest edge pixel (clamped coordinates)
    yi = np.minimum(np.arange(hp), h - 1)
    xi = np.minimum(np.arange(wp), w - 1)
    assert np.array_equal(p, x[..., yi, :][..., :, xi])


def test_aligned_input_is_returned_without_copy():
    x = np.zeros((3, 128, 64), np.float32)
    p, size = pad_to_multiple(x, 64)
    assert p is x and size == (128, 64)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(64, 8192), w=st.integers(64, 8192), m=st.sampled_from([16, 32, 64, 128]))
def test_padded_size_any_dimension(h, w, m):
    hp, wp = padded_size(h, w, m)
    assert hp % m == 0 and wp % m == 0 and 0 <= hp - h < m and 0 <= wp - w < m


def test_tall_thin_extremes():
    x = np.arange(8191, dtype=np.float32).reshape(1, 8191, 1)
    p, size = pad_to_multiple(x, 64)
    assert p.shape == (1, 8192, 64) and (p[0, -1] == 8190).all() and (p[0, :8191, -1] == x[0, :, 0]).all()
    assert np.array_equal(crop(p, size), x)


def test_errors():
    with pytest.raises(InputError, match="multiple"):
        pad_to_multiple(np.zeros((3, 4, 4), np.float32), 0)
    with pytest.raises(InputError, match=r"\[C, H, W\]"):
        pad_to_multiple(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="H, W >= 1"):
        pad_to_multiple(np.zeros((3, 0, 4), np.float32))
    with pytest.raises(InputError, match="cannot crop 70x10"):
        crop(np.zeros((3, 64, 64), np.float32), (70, 10))
    with pytest.raises(InputError, match="cannot crop 0x10"):
        crop(np.zeros((3, 64, 64), np.float32), (0, 10))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 140), w=st.integers(1, 140), m=st.sampled_from([1, 16, 64]),
       batch=st.sampled_from([None, 2]))
def test_smooth_padding_keeps_the_picture_and_averages_its_edges(h, w, m, batch):
    rng = np.random.default_rng(h * 977 + w)
    shape = (3, h, w) if batch is None else (batch, 3, h, w)
    x = rng.random(shape, dtype=np.float32)
    p, size = pad_to_multiple(x, m, "smooth")
    hp, wp = p.shape[-2:]
    assert (hp, wp) == padded_size(h, w, m) and p.dtype == x.dtype and size == (h, w)
    assert np.array_equal(crop(p, size), x)
    # every padded value is an average of edge values: within the range of the last row / column
    if hp > h:
        lo, hi = x[..., -1:, :].min(-1, keepdims=True), x[..., -1:, :].max(-1, keepdims=True)
        assert (p[..., h:, :w] >= lo - 1e-6).all() and (p[..., h:, :w] <= hi + 1e-6).all()
    if wp > w:
        col = p[..., :, w - 1 : w]
        lo, hi = col.min(-2, keepdims=True), col.max(-2, keepdims=True)
        assert (p[..., :, w:] >= lo - 1e-6).all() and (p[..., :, w:] <= hi + 1e-6).all()


def test_smooth_padding_blurs_more_with_distance():
    x = np.random.default_rng(1).random((3, 272, 640), dtype=np.float32)
    p, _ = pad_to_multiple(x, 64, "smooth")
    edge = np.pad(x[:, -1], ((0, 0), (2, 2)), mode="edge")
    first = np.stack([np.convolve(c, np.ones(5) / 5, "valid") for c in edge])  # radius 2
    np.testing.assert_allclose(p[:, 272], first, atol=1e-6)
    roughness = [np.abs(np.diff(p[:, r], axis=-1)).mean() for r in (271, 272, 280, 319)]
    assert roughness == sorted(roughness, reverse=True) and roughness[-1] < roughness[0] / 20
    const = np.full((3, 100, 90), 0.25, np.float32)
    assert (pad_to_multiple(const, 64, "smooth")[0] == np.float32(0.25)).all()


def test_unknown_padding_mode_is_refused():
    with pytest.raises(InputError, match="padding mode"):
        pad_to_multiple(np.zeros((3, 10, 10), np.float32), 64, "zeros")
