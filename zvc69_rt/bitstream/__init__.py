"""The ZVC69 container: file header, frame headers, index, trailer, motion header; writer and reader.

Byte layout: docs/FORMAT.md (the spec tables plus our trailer). No numpy here.
"""

from __future__ import annotations

from zvc69_rt.bitstream.atomic import atomic_output
from zvc69_rt.bitstream.crc import crc16_ccitt_false, crc32
from zvc69_rt.bitstream.frame_header import FRAME_TYPE_NAMES, FrameFlags, FrameHeader, FrameType
from zvc69_rt.bitstream.header import FileHeader, HeaderFlags
from zvc69_rt.bitstream.index import IndexEntry, IndexFlags, IndexTable, flags_for_frame_type
from zvc69_rt.bitstream.limits import MAX_FRAME_SIZE, MAX_INDEX_ENTRIES
from zvc69_rt.bitstream.motion_header import MotionHeader, MotionPrecision
from zvc69_rt.bitstream.reader import FrameRecord, StreamReader
from zvc69_rt.bitstream.trailer import Trailer
from zvc69_rt.bitstream.writer import StreamWriter

__all__ = [
    "FRAME_TYPE_NAMES",
    "MAX_FRAME_SIZE",
    "MAX_INDEX_ENTRIES",
    "FileHeader",
    "FrameFlags",
    "FrameHeader",
    "FrameRecord",
    "FrameType",
    "HeaderFlags",
    "IndexEntry",
    "IndexFlags",
    "IndexTable",
    "MotionHeader",
    "MotionPrecision",
    "StreamReader",
    "StreamWriter",
    "Trailer",
    "atomic_output",
    "crc16_ccitt_false",
    "crc32",
    "flags_for_frame_type",
]
