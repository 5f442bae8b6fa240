"""Pick the right reader for an input name, the way `zvc69 encode INPUT` does.

``-`` and ``*.y4m`` -> :class:`Y4MReader`; ``*.yuv`` -> :class:`RawYUVReader` (needs
``--size WxH`` and ``--fps N`` or ``N/D``); anything else -> :class:`PyAVReader`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

from zvc69_rt.errors import InputError
from zvc69_rt.frame import Frame
from zvc69_rt.io.y4m import MAX_FPS_TERM


class VideoSource(Protocol):
    """What every reader offers: geometry, rate, frame count if known, frames in order."""

    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int | None

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080)."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*[xX]\s*(\d{1,6})\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise InputError(f"--size {text!r} is not WIDTHxHEIGHT with positive integers, e.g. --size 1920x1080")
    return int(m[1]), int(m[2])


def parse_fps(text: str) -> tuple[int, int]:
    """'25' -> (25, 1); '30000/1001' -> (30000, 1001); '29.97' -> (2997, 100)."""
    try:
        if not re.fullmatch(r"\s*\d+(\.\d+)?(\s*[/:]\s*\d+)?\s*", text):
            raise ValueError
        num, _, den = text.replace(":", "/").partition("/")
        rate = Fraction(num.strip()) / Fraction(den.strip() or 1)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps {text!r} is not a positive rate like 25, 30000/1001 or 29.97") from None
    if rate <= 0 or rate.numerator >= MAX_FPS_TERM or rate.denominator >= MAX_FPS_TERM:
        raise InputError(f"--fps {text!r} is not a positive rate like 25, 30000/1001 or 29.97")
    return rate.numerator, rate.denominator


def open_source(spec: str, size: str | None = None, fps: str | None = None) -> VideoSource:
    """Open ``spec`` ('-', a .y4m, a .yuv with ``size``/``fps``, or any file PyAV reads)."""
    spec = os.fspath(spec)
    ext = os.path.splitext(spec)[1].lower()
    if ext == ".yuv":
        if size is None or fps is None:
            missing = " and ".join(o for o, v in (("--size WxH", size), ("--fps N", fps)) if v is None)
            raise InputError(f"{spec}: raw .yuv input has no header; give {missing} (e.g. --size 1920x1080 --fps 25)")
        w, h = parse_size(size)
        num, den = parse_fps(fps)
        from zvc69_rt.io.raw import RawYUVReader

        return RawYUVReader(spec, w, h, num, den)
    if size is not None or fps is not None:
        raise InputError(
            f"{spec}: --size/--fps apply to raw .yuv input only; this input carries its own size and rate"
        )
    if spec == "-" or ext == ".y4m":
        from zvc69_rt.io.y4m import Y4MReader

        return Y4MReader(spec)
    from zvc69_rt.io.pyav_source import PyAVReader

    return PyAVReader(spec)
