"""Multi-pass vbr: the same frames encoded up to MAX_PASSES times, each pass planned by the
sizes the one before measured (ratecontrol.TwoPassControl), the pass closest to the bitrate
target kept. One-pass control decides from past frames only and lands 6-66 % low on short
clips (docs/INTER.md "Two passes"); the second and third passes land within a few percent.
Shared by `zvc69 encode --passes` and the service's `POST /v1/encode?passes=`.

    frames --pass 1 (one-pass vbr)--> sizes --pass 2 (planned)--> sizes --pass 3--> ...
    stop at the first pass after the first within PASS_TOLERANCE_PCT; keep the closest
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from zvc69_rt.codec.ratecontrol import FirstPass
from zvc69_rt.errors import InputError

MAX_PASSES = 3
PASS_TOLERANCE_PCT = 5.0  # a pass this close to its target ends a multi-pass encode

P = TypeVar("P")


def validate_passes(passes: int, rate_control: str | None, bitrate: object) -> None:
    """InputError unless ``passes`` is 1, or 2..MAX_PASSES with a vbr bitrate to refine
    (rate_control None: the caller's default, vbr where a bitrate is given)."""
    if not (isinstance(passes, int) and not isinstance(passes, bool) and 1 <= passes <= MAX_PASSES):
        raise InputError(f"passes must be 1..{MAX_PASSES}, got {passes!r}")
    if passes > 1 and (bitrate is None or (rate_control or "vbr") != "vbr"):
        raise InputError(f"{passes} passes refine a vbr bitrate target: give a bitrate (--bitrate; bitrate= on "
                         "the service) and rate control vbr, not cbr or cqp")


def error_pct(encoder) -> float:
    """How far an encoder's achieved bitrate is from its target, in percent (0 without one)."""
    return encoder.rate_control.summary().get("error_pct", 0.0)


def best_of_passes(passes: int, encode_pass: Callable[[FirstPass | None, int], P],
                   encoder_of: Callable[[P], object]) -> tuple[P, int, int]:
    """Run ``encode_pass(plan, k)`` for k = 0.. (plan: None, then the previous pass's
    measurements) until a pass after the first lands within PASS_TOLERANCE_PCT or ``passes``
    ran; returns (the pass closest to its target, its index, passes run). Only that pass
    and the last are held, so a caller's pass results may be large."""
    best = last = None
    best_k = ran = 0
    best_miss = float("inf")
    for k in range(passes):
        plan = encoder_of(last).rate_control.first_pass() if last is not None else None
        last = encode_pass(plan, k)
        ran = k + 1
        miss = abs(error_pct(encoder_of(last)))
        if miss < best_miss:
            best, best_k, best_miss = last, k, miss
        if k and miss <= PASS_TOLERANCE_PCT:
            break
    return best, best_k, ran
