"""codec/multipass.py: which passes run, which one is kept, what each is planned by, and
which settings are refused (the CLI's --passes and the service's passes= share it)."""

from __future__ import annotations

import pytest

from zvc69_rt.codec.multipass import PASS_TOLERANCE_PCT, best_of_passes, validate_passes
from zvc69_rt.errors import InputError


class FakeControl:
    def __init__(self, error: float, k: int):
        self.error, self.k = error, k

    def summary(self) -> dict:
        return {"error_pct": self.error}

    def first_pass(self) -> str:
        return f"plan from pass {self.k + 1}"


class FakeEncoder:
    def __init__(self, error: float, k: int):
        self.rate_control = FakeControl(error, k)


def _run(errors: list[float], passes: int):
    plans = []

    def one_pass(plan, k):
        plans.append(plan)
        return FakeEncoder(errors[k], k)

    best, kept, ran = best_of_passes(passes, one_pass, lambda enc: enc)
    return best.rate_control.error, kept, ran, plans


def test_each_pass_is_planned_by_the_one_before():
    assert _run([-40.0, 12.0, 8.0], 3)[3] == [None, "plan from pass 1", "plan from pass 2"]


@pytest.mark.parametrize("errors, passes, expected", [
    ([-40.0, 12.0, -8.0], 3, (-8.0, 2, 3)),     # none within tolerance: all run, the closest kept
    ([-40.0, 3.0, -1.0], 3, (3.0, 1, 2)),       # pass 2 within tolerance: pass 3 never runs
    ([-2.0, 9.0, 7.0], 3, (-2.0, 0, 3)),        # pass 1 close already: the later ones may not beat it
    ([-40.0, 12.0], 2, (12.0, 1, 2)),
    ([-40.0], 1, (-40.0, 0, 1)),
])
def test_the_closest_pass_is_kept(errors, passes, expected):
    assert _run(errors, passes)[:3] == expected


def test_pass_one_within_tolerance_does_not_end_the_run():
    """Pass 1 is one-pass control: a lucky landing still gets its planned second pass."""
    assert _run([PASS_TOLERANCE_PCT / 2, 1.0], 2)[1:3] == (1, 2)


@pytest.mark.parametrize("passes, rate_control, bitrate", [
    (0, "vbr", 1000), (4, "vbr", 1000), (True, "vbr", 1000), (2.0, "vbr", 1000),
    (2, "vbr", None), (2, "cbr", 1000), (2, "cqp", 1000),
])
def test_refused_settings(passes, rate_control, bitrate):
    with pytest.raises(InputError, match="passes"):
        validate_passes(passes, rate_control, bitrate)


@pytest.mark.parametrize("passes, rate_control, bitrate", [
    (1, "cqp", None), (1, "cbr", 1000), (2, "vbr", 1000), (3, None, "500k"),
])
def test_accepted_settings(passes, rate_control, bitrate):
    validate_passes(passes, rate_control, bitrate)
