"""Fuzzing: random and mutated streams raise only ZVC69FormatError, never hang, never over-allocate."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_bitstream_stream import GOOD, GOOD_PIPE, PipeSource, make_stream, read_all
from zvc69_rt.bitstream import FileHeader, FrameHeader, IndexTable, MotionHeader, StreamReader, Trailer
from zvc69_rt.bitstream.limits import MAX_FRAME_SIZE, READ_CHUNK
from zvc69_rt.errors import ZVC69FormatError

# Bounded so CI stays fast (~5 s in all); the deadline is generous for a loaded 2-core machine,
# and pytest-timeout turns any hang into a failure.
FUZZ = settings(max_examples=400, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.timeout(120)
MODES = st.sampled_from(["random", "walk", "pipe"])
SMALL = make_stream(types=[0, 1, 2, 0, 3])


def only_format_errors(data: bytes, mode: str) -> None:
    try:
        read_all(data, mode)
    except ZVC69FormatError:
        pass


@FUZZ
@given(st.binary(max_size=400), MODES)
def test_random_bytes(data, mode):
    only_format_errors(data, mode)


@FUZZ
@given(st.binary(max_size=300), MODES)
def test_random_bytes_after_a_valid_file_header(tail, mode):
    only_format_errors(GOOD[:64] + tail, mode)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from([GOOD, GOOD_PIPE, SMALL])))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "u32"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 40))]
        elif kind == "u32" and len(data) >= pos + 4:
            struct.pack_into("<I", data, pos, draw(st.sampled_from([0, 1, 0xFFFFFFFF, 2**24, MAX_FRAME_SIZE,
                                                                    len(data), max(len(data) - 32, 0)])))
    return bytes(data)


@FUZZ
@given(mutated(), MODES)
def test_mutated_streams(data, mode):
    only_format_errors(data, mode)


@FUZZ
@given(mutated())
def test_mutation_is_detected_or_harmless(data):
    """Whatever the reader accepts, it accepts consistently: seekable and pipe agree."""
    results = []
    for mode in ("walk", "pipe"):
        try:
            r = read_all(data, mode)
            results.append(("ok", r.frame_count, [(e.frame_number, e.byte_offset) for e in r.keyframes()]))
        except ZVC69FormatError:
            results.append(("error",))
    assert results[0] == results[1]


@FUZZ
@given(st.binary(max_size=70))
def test_header_parsers_on_random_bytes(b):
    for parse in (FileHeader.unpack, FrameHeader.unpack, IndexTable.unpack, Trailer.unpack, MotionHeader.unpack):
        try:
            parse(b)
        except ZVC69FormatError:
            pass


class CountingPipe(PipeSource):
    def __init__(self, data: bytes):
        super().__init__(data, chunk=1 << 30)
        self.largest = 0

    def readinto(self, m):
        self.largest = max(self.largest, len(m))
        return super().readinto(m)

    def read(self, n=-1):
        self.largest = max(self.largest, n)
        return super().read(n)


@pytest.mark.parametrize("claimed", [MAX_FRAME_SIZE, MAX_FRAME_SIZE + 1, 2**32 - 1])
def test_huge_claimed_frame_size_on_a_pipe_reads_in_bounded_chunks(claimed):
    b = bytearray(GOOD)
    struct.pack_into("<I", b, 64 + 8, claimed)
    src = CountingPipe(bytes(b))
    with pytest.raises(ZVC69FormatError, match="frame 0: (data|frame_size)"):
        for _ in StreamReader(src).iter_frames():
            pass
    assert src.largest <= READ_CHUNK


def test_huge_claimed_frame_size_in_a_file_is_checked_before_reading():
    b = bytearray(GOOD)
    struct.pack_into("<I", b, 64 + 8, MAX_FRAME_SIZE)
    r = StreamReader(io.BytesIO(bytes(b)))
    with pytest.raises(ZVC69FormatError, match=r"frame 0: frame_size 67108864 exceeds the \d+ bytes left"):
        next(r.iter_frames())


@pytest.mark.parametrize("mode", ["walk", "pipe"])
def test_every_single_bit_flip_after_the_file_header_is_detected(mode):
    """Frame headers, data, index and trailer are all covered (CRC-16, CRC-32, structure checks).

    The 64-byte file header is deliberately outside the CRC-32 (the writer patches it after
    the fact); its fields are range-checked instead.
    """
    missed = []
    for pos in range(64, len(SMALL)):
        for bit in range(8):
            d = bytearray(SMALL)
            d[pos] ^= 1 << bit
            try:
                read_all(bytes(d), mode)
                missed.append((pos, bit))
            except ZVC69FormatError:
                pass
    assert missed == []
