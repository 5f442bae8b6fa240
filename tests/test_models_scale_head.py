"""The integer scale head must be exact: same indexes as a pure-int64 reference."""

import numpy as np
import pytest

from zvc69_rt.models.scale_head import IntegerScaleHead, exact_float_dtype
from zvc69_rt.models.scale_head import _conv3x3_exact as _conv3x3_batch


def _conv3x3_exact(x, w, b):
    """The head's convolution on one [Cin, h, w] map (it takes a batch)."""
    return _conv3x3_batch(x[None], w, b)[0]


def _conv3x3_int64(x, w, b):
    """Reference: int64 arithmetic only (no floats anywhere)."""
    xp = np.pad(x.astype(np.int64), ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # [cin, h, w, 3, 3]
    return np.einsum("chwij,ocij->ohw", win, w.astype(np.int64)) + b[:, None, None]


def _random_tables(rng, N=8, M=12, layers=3):
    t = {"sh_num_layers": np.array(layers)}
    cin = N
    for i in range(layers):
        cout = N * 4 if i < layers - 1 else M
        t[f"sh{i}_w"] = rng.integers(-127, 128, size=(cout, cin, 3, 3)).astype(np.int8)
        t[f"sh{i}_b"] = rng.integers(-5000, 5000, size=cout).astype(np.int64)
        t[f"sh{i}_mult"] = rng.integers(1, 2**14, size=cout).astype(np.int64)
        t[f"sh{i}_shift"] = np.array(24)
        cin = N
    t["sh_thresholds"] = np.sort(rng.integers(-200_000, 200_000, size=(M, 63)), axis=1).astype(np.int64)
    return t


def _reference_head(t, z):
    x = np.clip(z, -127, 127).astype(np.int64)
    n = int(t["sh_num_layers"])
    for i in range(n - 1):
        acc = _conv3x3_int64(x, t[f"sh{i}_w"], t[f"sh{i}_b"])
        q = (acc * t[f"sh{i}_mult"][:, None, None] + (1 << 23)) >> 24
        q = np.clip(q, 0, 255)
        c, h, w = q.shape
        x = q.reshape(c // 4, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(c // 4, 2 * h, 2 * w)
    acc = _conv3x3_int64(x, t[f"sh{n - 1}_w"], t[f"sh{n - 1}_b"])
    thr = t["sh_thresholds"]
    return (acc[:, :, :, None] > thr[:, None, None, :]).sum(-1).astype(np.uint8)


def test_conv_is_exact_at_the_worst_case_magnitudes():
    rng = np.random.default_rng(0)
    x = rng.choice([0, 255], size=(64, 9, 11)).astype(np.int64)
    w = rng.choice([-127, 127], size=(16, 64, 3, 3)).astype(np.int8)
    b = rng.integers(-(2**20), 2**20, size=16).astype(np.int64)
    np.testing.assert_array_equal(_conv3x3_exact(x, w, b), _conv3x3_int64(x, w, b))


def test_float32_path_is_exact_up_to_its_bound():
    """Weights whose row sum of |w| times max |x| is 2**24 - 1: the product runs in float32
    and every partial sum (all terms positive here) reaches the bound exactly; one more
    unit of weight switches to float64."""
    rng = np.random.default_rng(4)
    w = np.zeros((4, 64, 3, 3), np.int8)
    flat = w.reshape(4, -1)
    flat[:, :518] = 127
    flat[:, 518] = 7  # 518 * 127 + 7 = 65793 = (2**24 - 1) / 255
    x = np.full((64, 5, 6), 255, np.int64)
    assert exact_float_dtype(x, w) is np.float32
    b = rng.integers(-100, 100, size=4).astype(np.int64)
    got = _conv3x3_exact(x, w, b)
    np.testing.assert_array_equal(got, _conv3x3_int64(x, w, b))
    assert got[:, 2, 2].tolist() == [2**24 - 1 + int(v) for v in b]  # interior: all 9 taps on 255s
    flat[:, 518] = 8
    assert exact_float_dtype(x, w) is np.float64
    np.testing.assert_array_equal(_conv3x3_exact(x, w, b), _conv3x3_int64(x, w, b))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_head_matches_int64_reference(seed):
    rng = np.random.default_rng(seed)
    t = _random_tables(rng)
    head = IntegerScaleHead.from_tables(t)
    z = rng.integers(-300, 300, size=(8, 3, 5)).astype(np.int32)  # also exercises the +-127 clamp
    idx = head(z)
    assert idx.shape == (12, 12, 20) and idx.dtype == np.uint8
    np.testing.assert_array_equal(idx, _reference_head(t, z))
    assert idx.max() <= 63


def test_head_rejects_wrong_channel_count():
    from zvc69_rt.errors import ZVC69FormatError

    head = IntegerScaleHead.from_tables(_random_tables(np.random.default_rng(0)))
    with pytest.raises(ZVC69FormatError):
        head(np.zeros((7, 2, 2), dtype=np.int32))


def test_a_batch_gives_each_item_what_it_gives_alone():
    """The hyper-latent search asks for many trials in one call: [B, N, h, w]."""
    rng = np.random.default_rng(5)
    head = IntegerScaleHead.from_tables(_random_tables(rng))
    z = rng.integers(-20, 20, size=(5, 8, 3, 4)).astype(np.int32)
    batch = head(z)
    assert batch.shape == (5, 12, 12, 16)
    for k in range(5):
        np.testing.assert_array_equal(batch[k], head(z[k]))
    with pytest.raises(Exception, match="scale head expects"):
        head(z[:, :4])

