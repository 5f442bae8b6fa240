"""Motion data of P-frames: quantisation, DPCM, exact byte layout, round trips, errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from zvc69_rt.bitstream.motion_header import MotionPrecision
from zvc69_rt.codec import motion as mo
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError


def _smooth_flow(h, w, seed=0, amp=6.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = rng.normal(size=6)
    fx = amp * (a[0] + a[1] * xx + a[2] * yy)
    fy = amp * (a[3] + a[4] * xx + a[5] * yy)
    return np.stack([fx, fy]).astype(np.float32) + rng.normal(0, 0.2, (2, h, w)).astype(np.float32)


@pytest.mark.parametrize("precision", list(MotionPrecision))
def test_quantize_step_and_round_trip(precision):
    flow = _smooth_flow(12, 20, seed=int(precision))
    m = mo.quantize(flow, precision)
    step = mo.MOTION_STEPS[precision]
    assert m.vectors.dtype == np.int32 and m.vectors.shape == (2, 12, 20)
    assert np.abs(m.pixels() - flow).max() <= step / 2 + 1e-6
    data = mo.encode_motion(m, num_slices=2)
    assert struct.unpack_from("<BHH", data) == (int(precision), 20, 12)
    back, used = mo.decode_motion(data + b"tail", 0, (12, 20))
    assert used == len(data)
    assert back.precision == precision
    np.testing.assert_array_equal(back.vectors, m.vectors)


def test_dpcm_inverts_exactly_on_extremes():
    rng = np.random.default_rng(1)
    v = rng.integers(-8192, 8193, size=(2, 9, 13))
    d = mo.dpcm(v)
    assert d[0, 0, 0] == v[0, 0, 0] and d[1, 2, 5] == v[1, 2, 5] - v[1, 2, 4] and d[0, 3, 0] == v[0, 3, 0] - v[0, 2, 0]
    np.testing.assert_array_equal(mo.inverse_dpcm(d), v)


def test_quantize_clamps_and_survives_nan():
    flow = np.array([[[1e9, np.nan]], [[-1e9, 0.3]]], dtype=np.float32)
    m = mo.quantize(flow, MotionPrecision.QUARTER_PEL)
    assert m.vectors.tolist() == [[[8192, 0]], [[-8192, 1]]]
    back, _ = mo.decode_motion(mo.encode_motion(m), 0, (1, 2))
    np.testing.assert_array_equal(back.vectors, m.vectors)


def test_zero_field_is_seven_bytes():
    m = mo.quantize(np.zeros((2, 30, 40), np.float32))
    data = mo.encode_motion(m)
    assert data == struct.pack("<BHH", 2, 40, 30) + bytes((255, 255))
    back, used = mo.decode_motion(data, 0, (30, 40))
    assert used == 7 and back.is_zero and back.vectors.shape == (2, 30, 40)


def test_smooth_motion_is_cheap_and_estimate_is_close():
    m = mo.quantize(_smooth_flow(64, 96, seed=3, amp=4.0))
    data = mo.encode_motion(m)
    est = mo.estimate_motion_bits(m) / 8
    assert abs(est - len(data)) / len(data) < 0.15
    assert len(data) * 8 / m.vectors.size < 6.0  # far below the raw 16+ bits per component


def test_constant_motion_costs_almost_nothing():
    m = mo.CodedMotion(np.full((2, 64, 64), 7, np.int32), MotionPrecision.QUARTER_PEL)
    assert len(mo.encode_motion(m)) < 80


@pytest.mark.parametrize(
    "mutate, err",
    [
        (lambda b: b[:3], ZVC69FormatError),  # truncated header
        (lambda b: b[:6], ZVC69FormatError),  # truncated scale bytes
        (lambda b: bytes([3]) + b[1:], ZVC69FormatError),  # precision 3
        (lambda b: b[:1] + struct.pack("<H", 21) + b[3:], ZVC69FormatError),  # width mismatch
        (lambda b: b[:5] + bytes([64]) + b[6:], ZVC69FormatError),  # scale row 64
        (lambda b: b[:5] + bytes([255, 3]) + b[7:], ZVC69FormatError),  # half a zero-field marker
        (lambda b: b[:7] + b"ZVCQ" + b[11:], EntropyDecodeError),  # payload magic
        (lambda b: b[:-1], EntropyDecodeError),  # truncated payload
    ],
)
def test_malformed_motion_data(mutate, err):
    data = mo.encode_motion(mo.quantize(_smooth_flow(12, 20)))
    with pytest.raises(err):
        mo.decode_motion(mutate(data), 0, (12, 20), where="frame 3")


def test_error_names_the_frame():
    with pytest.raises(ZVC69FormatError, match="frame 9: motion header"):
        mo.decode_motion(b"\x02\x01", 0, (4, 4), where="frame 9")


def test_vector_beyond_limit_is_rejected():
    v = np.zeros((2, 4, 4), np.int32)
    v[0, 1, 1] = 2049  # full-pel limit is 2048
    data = mo.encode_motion(mo.CodedMotion(v, MotionPrecision.FULL_PEL))
    with pytest.raises(ZVC69FormatError, match="exceeds"):
        mo.decode_motion(data, 0, (4, 4))


@pytest.mark.parametrize("mode", ["smooth", "median", "uniform", "affine"])
def test_random_corruption_never_crashes(mode):
    """Every form of motion data (predicted fields, and global motion since session 7)."""
    field = {
        "smooth": lambda: mo.quantize(_smooth_flow(16, 16, seed=5)),
        "median": lambda: _two_motion_field(16, 16, 5, 9),
        "uniform": lambda: mo.CodedMotion(np.full((2, 16, 16), 5, np.int32), MotionPrecision.QUARTER_PEL),
        "affine": lambda: mo.affine_motion(_zoom_coef(16, 16), (16, 16)),
    }[mode]()
    data = bytearray(mo.encode_motion(field))
    assert {"smooth": data[5] < 192, "median": mo.MED_FLAG <= data[5] < 192,
            "uniform": data[5] == mo.UNIFORM_FIELD, "affine": data[5] == mo.AFFINE_FIELD}[mode]
    rng = np.random.default_rng(0)
    for _ in range(300):
        bad = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            bad[rng.integers(0, len(bad))] = rng.integers(0, 256)
        try:
            m, used = mo.decode_motion(bytes(bad), 0, (16, 16))
        except ZVC69FormatError:
            continue
        assert m.vectors.shape == (2, 16, 16) and used <= len(bad)
        assert np.abs(m.pixels()).max() <= mo.MAX_VECTOR_PX


def test_block_mean_smooths_and_keeps_shape():
    flow = _smooth_flow(16, 24, seed=7)
    b = mo.block_mean(flow, 4)
    assert b.shape == flow.shape
    np.testing.assert_allclose(b[:, :4, :4], flow[:, :4, :4].mean(axis=(1, 2), keepdims=True) * np.ones((1, 4, 4)),
                               rtol=1e-6)
    assert mo.block_mean(flow, 1) is flow and mo.block_mean(flow[:, :15], 4) is None
    q, qb = mo.quantize(flow), mo.quantize(b)
    assert len(mo.encode_motion(qb)) < len(mo.encode_motion(q))  # the smoother field is cheaper



def test_constant_motion_costs_a_few_dozen_bytes():
    """The row search covers every table row: a constant field's DPCM (one large first
    value, zeros after) wants the narrowest row and one escape, far below what its RMS
    suggests."""
    m = mo.CodedMotion(np.full((2, 20, 40), 77, np.int32), MotionPrecision.QUARTER_PEL)
    data = mo.encode_motion(m)
    assert len(data) <= 48  # 7 header + 24 ZVCP + 8 rANS state + a few
    assert abs(mo.estimate_motion_bits(m) / 8 - len(data)) <= 8


def _two_motion_field(h=32, w=64, x0=26, x1=38, dy=-72):
    """bikes.mp4's shape: a strip of blocks moving dy (quarter-pel) over static ground."""
    v = np.zeros((2, h, w), np.int32)
    v[1, :, x0:x1] = dy
    return mo.CodedMotion(v, MotionPrecision.QUARTER_PEL)


def test_med_residual_inverts_exactly():
    rng = np.random.default_rng(2)
    for h, w in ((1, 1), (1, 7), (6, 1), (9, 13)):
        v = rng.integers(-8192, 8193, size=(2, h, w))
        np.testing.assert_array_equal(mo.inverse_med(mo.med_residual(v)), v)
    blocks = np.repeat(np.repeat(rng.integers(-40, 40, (2, 5, 7)), 4, 1), 4, 2)
    np.testing.assert_array_equal(mo.inverse_med(mo.med_residual(blocks)), blocks)


def test_med_predicts_from_the_left_the_top_or_the_gradient():
    v = np.array([[[0, 0, 5], [0, 9, 9], [2, 4, 6]]])  # one component, 3x3
    d = mo.med_residual(np.concatenate([v, v]))[0]
    # (1,1): a=0 b=0 c=0 -> 0; (1,2): a=9 b=5 c=0 <= min -> max 9; (2,1): a=2 b=9 c=0 -> 9;
    # (2,2): a=4 b=9 c=9 >= max -> min 4
    assert d.tolist() == [[0, 0, 5], [0, 9, 0], [2, -5, 2]]


def test_piecewise_field_takes_the_median_predictor_and_is_small():
    m = _two_motion_field()
    data = mo.encode_motion(m)
    assert data[5] >= mo.MED_FLAG and data[6] < mo.MED_FLAG  # predictor flag rides on scale_dx
    d = mo.dpcm(m.vectors)
    dpcm_bits = mo.choose_row(d[0])[1] + mo.choose_row(d[1])[1]
    assert len(data) < 60 < dpcm_bits / 8 / 3  # left-DPCM pays both sides of the strip in every row
    assert abs(mo.estimate_motion_bits(m) / 8 - len(data)) < 0.25 * len(data)
    back, used = mo.decode_motion(data, 0, (32, 64))
    assert used == len(data)
    np.testing.assert_array_equal(back.vectors, m.vectors)


def test_dpcm_streams_still_decode():
    """Streams of sessions 1-5 carry DPCM (scale_dx < 128): the decoder keeps reading them."""
    m = _two_motion_field()
    d = mo.dpcm(m.vectors).astype(np.int32)
    rows = (mo.choose_row(d[0])[0], mo.choose_row(d[1])[0])
    index = np.empty(d.shape, np.uint8)
    index[0], index[1] = rows
    from zvc69_rt import entropy

    data = struct.pack("<BHH", 2, 64, 32) + bytes(rows) + entropy.encode_gaussian(d, index)
    back, used = mo.decode_motion(data, 0, (32, 64))
    assert used == len(data)
    np.testing.assert_array_equal(back.vectors, m.vectors)


@pytest.mark.parametrize("sx", [mo.MED_FLAG + 64, 252])
def test_median_flag_with_a_bad_row_is_rejected(sx):
    data = mo.encode_motion(_two_motion_field())
    with pytest.raises(ZVC69FormatError, match=f"scale_dx {sx} is not a scale row"):
        mo.decode_motion(data[:5] + bytes([sx]) + data[6:], 0, (32, 64), where="frame 3")


def test_median_field_beyond_limit_is_rejected():
    v = np.zeros((2, 4, 4), np.int32)
    v[1, 2:, 1:3] = 2049  # full-pel limit is 2048
    data = mo.encode_motion(mo.CodedMotion(v, MotionPrecision.FULL_PEL))
    assert data[5] >= mo.MED_FLAG
    with pytest.raises(ZVC69FormatError, match="exceeds"):
        mo.decode_motion(data, 0, (4, 4))


def test_bicubic_flag_rides_on_scale_dy_and_round_trips():
    m = _two_motion_field()
    sharp = mo.CodedMotion(m.vectors, m.precision, cubic=True)
    plain, flagged = mo.encode_motion(m), mo.encode_motion(sharp)
    assert flagged[6] == plain[6] + mo.CUBIC_FLAG and flagged[:6] == plain[:6] and flagged[7:] == plain[7:]
    back, _ = mo.decode_motion(flagged, 0, (32, 64))
    assert back.cubic and not mo.decode_motion(plain, 0, (32, 64))[0].cubic
    np.testing.assert_array_equal(back.vectors, m.vectors)
    zero = mo.CodedMotion(np.zeros((2, 4, 4), np.int32), MotionPrecision.QUARTER_PEL, cubic=True)
    assert mo.encode_motion(zero)[5:] == bytes((255, 255))  # a zero field never warps: no flag
    with pytest.raises(ZVC69FormatError, match="scale_dy 192 is not a scale row"):
        mo.decode_motion(flagged[:6] + bytes([192]) + flagged[7:], 0, (32, 64))


# --- global motion (session 7): one vector or six affine parameters instead of a payload ---


def test_uniform_field_is_eleven_bytes_exactly():
    v = np.empty((2, 30, 40), np.int32)
    v[0], v[1] = -13, 300
    data = mo.encode_motion(mo.CodedMotion(v, MotionPrecision.HALF_PEL))
    assert data == struct.pack("<BHH", 1, 40, 30) + bytes((mo.UNIFORM_FIELD, 0)) + struct.pack("<hh", -13, 300)
    assert mo.estimate_motion_bits(mo.CodedMotion(v, MotionPrecision.HALF_PEL)) == 8 * len(data)
    back, used = mo.decode_motion(data + b"tail", 0, (30, 40))
    assert used == 11 and back.precision == MotionPrecision.HALF_PEL and not back.cubic
    np.testing.assert_array_equal(back.vectors, v)
    sharp = mo.encode_motion(mo.CodedMotion(v, MotionPrecision.HALF_PEL, cubic=True))
    assert sharp[5:7] == bytes((mo.UNIFORM_FIELD, mo.CUBIC_FLAG)) and mo.decode_motion(sharp, 0, (30, 40))[0].cubic


def _zoom_coef(h=40, w=64, zoom=0.03, pan=(1.3, -0.6)):
    """Pixel coefficients [2, 3] of a zoom about the grid centre plus a pan."""
    return np.array([[zoom, 0.0, pan[0] - zoom * w / 2], [0.0, zoom, pan[1] - zoom * h / 2]])


@pytest.mark.parametrize("precision", list(MotionPrecision))
def test_affine_field_is_six_parameters_and_decodes_to_the_same_vectors(precision):
    coef = _zoom_coef()
    m = mo.affine_motion(coef, (40, 64), precision)
    yy, xx = np.mgrid[0:40, 0:64]
    want = np.stack([coef[c, 0] * xx + coef[c, 1] * yy + coef[c, 2] for c in range(2)])
    assert np.abs(m.pixels() - want).max() <= m.step / 2 + 1e-3  # rounding of the field, not of the fit
    data = mo.encode_motion(m)
    assert data == struct.pack("<BHH", int(precision), 64, 40) + bytes((mo.AFFINE_FIELD, 0)) + struct.pack(
        "<6i", *m.affine)
    assert mo.estimate_motion_bits(m) == 8 * len(data) == 8 * 31
    back, used = mo.decode_motion(data, 0, (40, 64))
    assert used == 31 and back.affine == m.affine
    np.testing.assert_array_equal(back.vectors, m.vectors)


def test_affine_vectors_round_with_an_arithmetic_shift():
    # t = 1.5 steps, a = -0.25 steps per column: (t + a*col + 2^15) >> 16 rounds halves up, also below zero
    params = (3 << 15, -(1 << 14), 0, -(5 << 15), 0, 1 << 16)
    v = mo.affine_vectors(params, (2, 9))
    assert v[0, 0].tolist() == [2, 1, 1, 1, 1, 0, 0, 0, 0]  # 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0, -.25, -.5
    assert v[1, :, 0].tolist() == [-2, -1]  # -2.5 -> -2, -1.5 -> -1


def test_affine_parameters_that_do_not_generate_the_vectors_are_refused():
    m = mo.affine_motion(_zoom_coef(), (40, 64))
    m.vectors[0, 5, 5] += 1
    with pytest.raises(ValueError, match="does not generate"):
        mo.encode_motion(m)


def test_affine_fit_beyond_the_vector_limit_is_not_offered():
    assert mo.affine_motion(np.array([[0, 0, 2100.0], [0.0, 0, 0]]), (4, 4), MotionPrecision.FULL_PEL) is None
    assert mo.affine_motion(np.array([[1e6, 0, 0], [0.0, 0, 0]]), (4, 4)) is None  # parameter beyond int32


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[:8], "parameters truncated"),
        (lambda b: b[:6] + bytes([3]) + b[7:], "scale_dy 3 with a global motion"),
        (lambda b: b[:7] + struct.pack("<i", 2**31 - 1) + b[11:], "exceeds"),  # tx far beyond 2048 px
        (lambda b: b[:11] + struct.pack("<i", -(2**31)) + b[15:], "exceeds"),  # a ramp leaving the range
    ],
)
def test_malformed_affine_parameters(mutate, match):
    data = mo.encode_motion(mo.affine_motion(_zoom_coef(), (40, 64)))
    with pytest.raises(ZVC69FormatError, match=match):
        mo.decode_motion(mutate(data), 0, (40, 64), where="frame 3")


def test_uniform_vector_beyond_limit_is_rejected():
    v = np.full((2, 4, 4), 2049, np.int32)  # full-pel limit is 2048
    data = mo.encode_motion(mo.CodedMotion(v, MotionPrecision.FULL_PEL))
    assert data[5] == mo.UNIFORM_FIELD
    with pytest.raises(ZVC69FormatError, match="exceeds"):
        mo.decode_motion(data, 0, (4, 4))
