"""Build the file header for an encoder's settings (one place, so CLI and service agree)."""

from __future__ import annotations

from zvc69_rt.bitstream.header import FileHeader, HeaderFlags
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.models.bundle import ModelBundle


def make_file_header(config: EncoderConfig, bundle: ModelBundle, gop: int, total_frames: int = 0) -> FileHeader:
    # INTEGERIZED: scale indexes come from the exact integer head; imported bundles with a
    # float scale path (docs/COMPRESSAI.md) leave it clear
    flags = HeaderFlags.INTEGERIZED if bundle.integerized else HeaderFlags(0)
    if bundle.has_checkerboard:  # I-frame y in two payloads with the bundle's context tables
        flags |= HeaderFlags.CHECKERBOARD
    if config.bframes and gop > 1:
        flags |= HeaderFlags.HAS_B_FRAMES
    return FileHeader(
        width=config.width, height=config.height, framerate_num=config.fps_num, framerate_den=config.fps_den,
        total_frames=total_frames, gop_size=gop, quality_level=config.quality, color_space=0, bit_depth=8,
        model_hash=bundle.hash_prefix, latent_channels=bundle.latent_channels,
        hyperprior_channels=bundle.hyperprior_channels, flags=flags,
    )
