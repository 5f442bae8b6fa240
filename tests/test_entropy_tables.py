"""CDF tables: quantization, validation, the shipped Gaussian tables, the encoder's reciprocals."""

import math

import numpy as np
import pytest

from zvc69_rt import entropy
from zvc69_rt.entropy import gaussian, rans
from zvc69_rt.entropy.tables import TOTAL, CdfTable, encoder_entries, quantize_pmf


def test_quantize_pmf_sums_to_total_and_keeps_every_symbol():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 17, 255, 1000):
        p = rng.random(n) ** 8  # very skewed, many near-zero masses
        f = quantize_pmf(p)
        assert f.sum() == TOTAL
        assert f.min() >= 1
        # the big masses keep their share closely
        big = p / p.sum() > 0.01
        assert np.allclose(f[big] / TOTAL, (p / p.sum())[big], rtol=0.02, atol=2.0 / TOTAL * n)
    assert (quantize_pmf(np.zeros(4)) == TOTAL // 4).all()  # degenerate: uniform
    with pytest.raises(ValueError):
        quantize_pmf(np.ones(TOTAL))


def test_from_pmfs_puts_tail_mass_on_escape():
    t = CdfTable.from_pmfs([np.array([0.25, 0.5]), np.array([0.1, 0.2, 0.3])], np.array([-1, 5]))
    assert t.rows == 2
    assert list(t.cdf_length) == [3, 4]
    assert list(t.offset) == [-1, 5]
    f0 = np.diff(t.cdf[0, :4])
    assert f0.sum() == TOTAL and abs(f0[2] / TOTAL - 0.25) < 1e-3  # ESCAPE got the missing 0.25
    f1 = np.diff(t.cdf[1, :5])
    assert abs(f1[3] / TOTAL - 0.4) < 1e-3


@pytest.mark.parametrize(
    "cdf, lengths, offsets, what",
    [
        (np.array([[0, 100, TOTAL]]), [1], [0], "2..L-1"),  # one symbol: no room for ESCAPE
        (np.array([[0, 100, TOTAL]]), [2, 2], [0], "cdf must be"),  # lengths vs rows
        (np.array([[0, 100, 99, TOTAL]]), [3], [0], "strictly increasing"),
        (np.array([[1, 100, TOTAL]]), [2], [0], "strictly increasing"),
        (np.array([[0, 100, TOTAL - 1]]), [2], [0], "strictly increasing"),
        (np.array([[0, 100, TOTAL]]), [3], [0], "2..L-1"),  # length past the row
    ],
)
def test_validate_rejects_bad_tables(cdf, lengths, offsets, what):
    with pytest.raises(ValueError, match=what):
        CdfTable(cdf=cdf, cdf_length=np.array(lengths), offset=np.array(offsets))


def test_encoder_reciprocals_are_exact_for_every_frequency():
    """q = (x * rcp) >> shift must equal x // f for every state x < 2^31 the encoder sees."""
    rng = np.random.default_rng(1)
    freq = np.arange(1, TOTAL, dtype=np.int64)
    e = encoder_entries(np.zeros_like(freq), freq).astype(np.int64)
    rcp, shift = e[:, 1], e[:, 3] >> 16
    assert (e[:, 0] == freq << 15).all()
    assert (e[:, 3] & 0xFFFF == TOTAL - freq).all()
    for _ in range(8):
        x = rng.integers(0, 1 << 31, freq.size)
        # also the states right around multiples of f, where truncation errors would show
        k = rng.integers(1, (1 << 31) // freq)
        for xs in (x, k * freq, k * freq - 1):
            q = (xs * rcp) >> shift
            one = freq == 1
            ref = np.where(one, xs - 1, xs // freq)  # freq 1: q = x - 1, folded into the bias
            assert (q == ref).all()


def test_encode_step_matches_the_textbook_formula():
    rng = np.random.default_rng(2)
    start = rng.integers(0, TOTAL // 2, 5000)
    freq = rng.integers(1, TOTAL - start)
    e = encoder_entries(start, freq).astype(np.int64)
    x = rng.integers(freq << 7, freq << 15)  # the range after renormalisation
    q = (x * e[:, 1]) >> (e[:, 3] >> 16)
    got = x + e[:, 2] + q * (e[:, 3] & 0xFFFF)
    assert (got == (x // freq) * TOTAL + x % freq + start).all()


def test_scale_table_is_log_spaced_from_the_bound():
    s = entropy.SCALE_TABLE
    assert s.dtype == np.float32 and s.shape == (64,)
    assert s[0] == np.float32(0.11) and s[-1] == np.float32(gaussian.SCALE_TOP)
    r = np.diff(np.log(s.astype(np.float64)))
    assert np.allclose(r, r[0], rtol=1e-4)


def test_scale_to_index_picks_the_smallest_table_scale_not_below():
    s = entropy.SCALE_TABLE
    got = entropy.scale_to_index(np.array([0.0, 0.05, s[0], s[0] * 1.0001, s[10], s[10] * 0.9999, s[63], 1e6, np.inf]))
    assert got.dtype == np.uint8
    assert list(got) == [0, 0, 0, 1, 10, 10, 63, 63, 63]
    x = np.random.default_rng(3).uniform(0.01, 100, 10000).astype(np.float32)
    i = entropy.scale_to_index(x).astype(np.int64)
    inside = x <= s[-1]
    assert (s[i[inside]] >= x[inside]).all()
    assert (s[np.maximum(i[inside] - 1, 0)][i[inside] > 0] < x[inside][i[inside] > 0]).all()


def test_shipped_gaussian_tables_regenerate_identically():
    shipped = entropy.gaussian_table()
    built = gaussian.build_gaussian_table()
    assert np.array_equal(shipped.cdf, built.cdf)
    assert np.array_equal(shipped.cdf_length, built.cdf_length)
    assert np.array_equal(shipped.offset, built.offset)


def test_gaussian_rows_cover_the_tail_and_stay_in_the_spec_range():
    t = entropy.gaussian_table()
    assert t.rows == entropy.NUM_SCALES
    z = -gaussian._norm_ppf(gaussian.TAIL_MASS / 2)
    for k, s in enumerate(entropy.SCALE_TABLE.astype(np.float64)):
        r = min(math.ceil(z * s), 127)
        assert t.offset[k] == -r and t.cdf_length[k] == 2 * r + 2  # values -r..r plus ESCAPE
        # the coded distribution is close to the Gaussian it stands for
        f = np.diff(t.cdf[k, : t.cdf_length[k] + 1]) / TOTAL
        p0 = math.erf(0.5 / (s * math.sqrt(2)))
        assert abs(f[r] - p0) < max(2e-3, 2 * (2 * r + 2) / TOTAL)
    assert t.offset.min() >= -128 and (t.offset + t.cdf_length - 2).max() <= 127


def test_coder_arrays_lookup_finds_the_symbol_of_every_slot():
    t = CdfTable.from_pmfs([np.array([0.9, 0.05, 0.01]), np.full(300, 1 / 300)], np.array([0, -150]))
    a = t.coder_arrays()
    assert a is t.coder_arrays()  # cached
    assert a.lut.dtype == np.uint16  # a 301-symbol row does not fit uint8
    for r in range(t.rows):
        n = t.cdf_length[r]
        cb, lb = a.rinfo[4 * r], a.rinfo[4 * r + 1]
        row = a.cdf[cb : cb + n + 1]
        slots = np.arange(TOTAL)
        first = a.lut[lb + (slots >> rans.LUT_SHIFT)]
        truth = np.searchsorted(row, slots, side="right") - 1
        assert (first <= truth).all()  # the scan only ever moves forward
        assert (row[first] <= slots).all()
