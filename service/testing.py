"""A small deterministic stand-in for the Encoder, for testing the HTTP layer without a model.

It has the real Encoder's interface (send_frame / receive_packet / file_header) and emits
real container records, so StreamWriter/StreamReader accept its output. Knobs make the
service's hard paths reachable: ``lag`` holds frames back (frames out < frames in until
close), ``fail_at_frame`` raises inside the encoder, ``delay_s`` makes encoding slow so
queues fill.
"""

from __future__ import annotations

import collections
import hashlib
import time

from zvc69_rt.bitstream.header import FileHeader
from zvc69_rt.codec.api import EncoderConfig, Packet
from zvc69_rt.frame import Frame


class FakeEncoder:
    """I-frames whose data is a SHA-256 of the frame's planes and pts (so it depends on every byte)."""

    def __init__(self, config: EncoderConfig, lag: int = 0, fail_at_frame: int | None = None,
                 delay_s: float = 0.0):
        config.validate()
        self.config = config
        self.lag = lag
        self.fail_at_frame = fail_at_frame
        self.delay_s = delay_s
        self._held: collections.deque[Frame] = collections.deque()
        self._out: collections.deque[Packet] = collections.deque()
        self.frames_in = 0

    def file_header(self, total_frames: int = 0) -> FileHeader:
        c = self.config
        return FileHeader(width=c.width, height=c.height, framerate_num=c.fps_num, framerate_den=c.fps_den,
                          total_frames=total_frames, gop_size=c.gop, quality_level=c.quality,
                          model_hash=b"FAKE")

    def _code(self, frame: Frame) -> Packet:
        if self.delay_s:
            time.sleep(self.delay_s)
        digest = hashlib.sha256(frame.to_bytes() + frame.pts.to_bytes(8, "little")).digest()
        data = digest + bytes([self.config.quality]) * (1 + frame.pts % 7)
        return Packet(frame_type=0, pts=frame.pts, quality=self.config.quality,
                      latent_height=max(1, self.config.height // 16), latent_width=max(1, self.config.width // 16),
                      data=data)

    def send_frame(self, frame: Frame | None) -> None:
        if frame is None:
            while self._held:
                self._out.append(self._code(self._held.popleft()))
            return
        frame.validate()
        if self.fail_at_frame is not None and self.frames_in == self.fail_at_frame:
            raise RuntimeError(f"fake encoder failure at frame {self.frames_in}")
        self.frames_in += 1
        self._held.append(frame)
        while len(self._held) > self.lag:
            self._out.append(self._code(self._held.popleft()))

    def receive_packet(self) -> Packet | None:
        return self._out.popleft() if self._out else None


def fake_encoder_factory(lag: int = 0, fail_at_frame: int | None = None, delay_s: float = 0.0):
    """A Settings.encoder_factory building FakeEncoders with these knobs."""

    def factory(config: EncoderConfig) -> FakeEncoder:
        return FakeEncoder(config, lag=lag, fail_at_frame=fail_at_frame, delay_s=delay_s)

    return factory
