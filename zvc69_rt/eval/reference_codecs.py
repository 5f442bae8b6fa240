"""Reference codecs for rate-distortion comparisons: JPEG/WebP (Pillow), x264/x265/SVT-AV1 (PyAV).

Every codec here is a plain callable with the signatures :mod:`zvc69_rt.eval.rd` expects:

- image codecs: ``codec(rgb_uint8[H, W, 3], quality) -> (num_bits, recon_rgb_uint8)``
- video codecs: ``codec(frames: list[Frame], quality) -> (num_bits, recon_frames)``

Bits are always the real encoded bytes x 8: the whole JPEG/WebP file (headers
included), or the sum of the sizes of every packet the encoder emitted (including
flushed ones) plus any out-of-band extradata the decoder needs. The container is not
counted for any codec. Reconstructions come from decoding those bytes, never from the
encoder's internal picture.

Colour: JPEG and WebP get RGB and convert internally (both 4:2:0 at the settings used:
Pillow's JPEG default subsampling is 4:2:0, lossy WebP is always 4:2:0). x265 intra gets
the 4:2:0 picture from :mod:`zvc69_rt.eval.color` (full-range BT.601, like JPEG's own)
and its output is converted back with the same module, so all image codecs are
measured in RGB against the same original. Video codecs take and return yuv420p.

"quality" means: Pillow quality 0-100 (higher = better) for JPEG/WebP; CRF for x264,
x265 and SVT-AV1 (lower = better; in SVT-AV1's low-delay mode the encoder applies it as
a constant QP, which it reports as "CQP").
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from zvc69_rt.errors import InputError, NotAvailableError
from zvc69_rt.eval.color import frame_to_rgb, rgb_to_frame
from zvc69_rt.frame import Frame

ImageCodec = Callable[[np.ndarray, int], tuple[int, np.ndarray]]
VideoCodec = Callable[[list[Frame], int], tuple[int, list[Frame]]]

# Default sweeps: chosen so the curves of all codecs overlap on the held-out photos
# (about 0.2 to 2 bpp) and clips (about 30 to 48 dB PSNR-YUV).
JPEG_QUALITIES = (10, 20, 30, 45, 60, 75, 85, 93)
WEBP_QUALITIES = (5, 15, 30, 45, 60, 75, 85, 93)
X265_INTRA_CRFS = (44, 40, 36, 32, 28, 24, 20)
VIDEO_CRFS = (44, 40, 36, 32, 28, 24)
AV1_CRFS = (63, 57, 51, 45, 39, 33)


def _check_rgb(rgb: np.ndarray, quality: int, lo: int, hi: int, name: str) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(
            f"{name}: image must be uint8 [H, W, 3], got {getattr(rgb, 'dtype', type(rgb))}"
            f"{list(getattr(rgb, 'shape', []))}"
        )
    if not (lo <= int(quality) <= hi):
        raise InputError(f"{name}: quality {quality} outside {lo}..{hi}")


def _pillow():
    try:
        from PIL import Image, features
    except ImportError as exc:  # pragma: no cover - pillow is in the eval/dev extras
        raise NotAvailableError("Pillow is not installed (pip install 'zvc69-rt[eval]')") from exc
    return Image, features


def jpeg(rgb: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """Baseline JPEG through Pillow/libjpeg at ``quality`` (4:2:0, default tables, no optimize)."""
    _check_rgb(rgb, quality, 1, 100, "jpeg")
    Image, _ = _pillow()
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=int(quality))
    data = buf.getvalue()
    recon = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return len(data) * 8, recon


def webp(rgb: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """Lossy WebP through Pillow/libwebp at ``quality`` (method 4, Pillow's default effort)."""
    _check_rgb(rgb, quality, 0, 100, "webp")
    Image, features = _pillow()
    if not features.check("webp"):
        raise NotAvailableError("this Pillow build has no WebP support")
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="WEBP", quality=int(quality), method=4)
    data = buf.getvalue()
    recon = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return len(data) * 8, recon


# ----------------------------------------------------------------------------- PyAV


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a runtime dependency
        raise NotAvailableError("PyAV is not installed") from exc
    # SVT-AV1 prints its configuration banner to stderr unless told otherwise.
    os.environ.setdefault("SVT_LOG", "1")
    return av


def require_encoder(name: str) -> None:
    """Raise NotAvailableError unless this PyAV/FFmpeg build has encoder ``name``."""
    av = _av()
    try:
        av.codec.Codec(name, "w")
    except ValueError as exc:  # av.codec.codec.UnknownCodecError
        raise NotAvailableError(f"encoder {name!r} is not in this PyAV/FFmpeg build ({exc})") from exc


def _pick_decoder(names: Sequence[str]) -> str:
    av = _av()
    for n in names:
        try:
            av.codec.Codec(n, "r")
        except ValueError:  # UnknownCodecError: try the next decoder
            continue
        return n
    raise NotAvailableError(f"none of the decoders {list(names)} is in this PyAV/FFmpeg build")


@dataclass(frozen=True)
class VideoSettings:
    """One PyAV encoder configuration. ``params`` go into ``<codec>-params`` style options."""

    label: str
    encoder: str  # libx264 | libx265 | libsvtav1
    decoders: tuple[str, ...]
    preset: str
    tune: str | None = None


X264_MEDIUM = VideoSettings("x264-medium", "libx264", ("h264",), "medium")
X264_VERYFAST_ZL = VideoSettings("x264-veryfast-zerolatency", "libx264", ("h264",), "veryfast", "zerolatency")
X265_MEDIUM = VideoSettings("x265-medium", "libx265", ("hevc",), "medium")
# SVT-AV1 presets run 0 (slowest) .. 13; 8 is its realtime-ish middle and keeps eval within minutes.
SVTAV1_P8 = VideoSettings("svt-av1-p8", "libsvtav1", ("libdav1d", "libaom-av1", "av1"), "8")


def _pad_even(frame: Frame) -> np.ndarray:
    """Frame -> [H'*3/2, W'] yuv420p array with H', W' even (edge replication)."""
    frame.validate()
    h, w = frame.height, frame.width
    he, we = h + (h & 1), w + (w & 1)
    y = np.pad(frame.y, ((0, he - h), (0, we - w)), mode="edge")
    ch, cw = he // 2, we // 2
    u = np.pad(frame.u, ((0, ch - frame.u.shape[0]), (0, cw - frame.u.shape[1])), mode="edge")
    v = np.pad(frame.v, ((0, ch - frame.v.shape[0]), (0, cw - frame.v.shape[1])), mode="edge")
    # PyAV reads a yuv420p ndarray as the three planes back to back, shaped [H*3/2, W].
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(he * 3 // 2, we)


def _encoder_options(s: VideoSettings, crf: int, gop: int, bframes: int) -> dict[str, str]:
    if s.encoder == "libx264":
        opts = {"crf": str(crf), "preset": s.preset}
        if s.tune:
            opts["tune"] = s.tune
        opts["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:threads=2"
        return opts
    if s.encoder == "libx265":
        return {
            "crf": str(crf), "preset": s.preset,
            "x265-params": (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:"
                "open-gop=0:pools=2:frame-threads=1:log-level=error"
            ),
        }
    if s.encoder == "libsvtav1":
        if bframes == 0:
            struct = "pred-struct=1"  # low delay: no reordering, like IPPP
        else:
            # random access with a hierarchical mini-GOP of 2**(levels-1) >= bframes + 1 frames
            levels = max(2, min(6, int(np.ceil(np.log2(bframes + 1))) + 1))
            struct = f"pred-struct=2:hierarchical-levels={levels}"
        return {"crf": str(crf), "preset": s.preset, "svtav1-params": f"keyint={gop}:scd=0:{struct}:lp=2"}
    raise InputError(f"unknown encoder {s.encoder!r}")


@dataclass
class VideoEncodeResult:
    """Bits and decoded frames of one encode; ``packet_bits`` per packet in decode order."""

    num_bits: int
    recon: list[Frame]
    packet_bits: list[int]


def encode_video(
    settings: VideoSettings, frames: Sequence[Frame], crf: int, gop: int, bframes: int, fps: int = 25
) -> VideoEncodeResult:
    """Encode yuv420p ``frames`` with one PyAV encoder, decode the packets, return bits and recon.

    ``gop`` is the keyframe interval (1 = all-intra), ``bframes`` the number of B-frames
    between references (0 = low delay). Odd sizes are padded by edge replication for
    the encoder and cropped back after decoding.
    """
    if not frames:
        raise InputError(f"{settings.label}: no frames to encode")
    if gop < 1:
        raise InputError(f"{settings.label}: gop must be >= 1, got {gop}")
    if not (0 <= bframes <= 16):
        raise InputError(f"{settings.label}: bframes must be in 0..16, got {bframes}")
    if not (0 <= int(crf) <= 63):
        raise InputError(f"{settings.label}: crf {crf} outside 0..63")
    av = _av()
    require_encoder(settings.encoder)
    dec_name = _pick_decoder(settings.decoders)
    w, h = frames[0].width, frames[0].height
    for i, f in enumerate(frames):
        if (f.width, f.height) != (w, h):
            raise InputError(f"{settings.label}: frame {i} is {f.width}x{f.height}, frame 0 is {w}x{h}")
    we, he = w + (w & 1), h + (h & 1)

    enc = av.CodecContext.create(settings.encoder, "w")
    enc.width, enc.height = we, he
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    enc.gop_size = gop
    enc.max_b_frames = bframes
    enc.options = _encoder_options(settings, int(crf), gop, bframes)
    packets = []
    try:
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(_pad_even(f), format="yuv420p")
            vf.pts = i
            vf.time_base = enc.time_base
            packets.extend(enc.encode(vf))
        packets.extend(enc.encode(None))  # flush delayed (lookahead / B-frame) packets
    except av.error.FFmpegError as exc:
        raise NotAvailableError(f"{settings.label}: encoder failed: {exc}") from exc
    extradata = enc.extradata or b""
    packet_bits = [p.size * 8 for p in packets]
    num_bits = sum(packet_bits) + len(extradata) * 8

    dec = av.CodecContext.create(dec_name, "r")
    if extradata:
        dec.extradata = extradata
    decoded = []
    for p in packets:
        decoded.extend(dec.decode(p))
    decoded.extend(dec.decode(None))
    if len(decoded) != len(frames):
        raise NotAvailableError(
            f"{settings.label}: decoder {dec_name} returned {len(decoded)} frames for {len(frames)} input frames"
        )
    recon = []
    ch, cw = Frame.chroma_shape(w, h)
    for i, df in enumerate(decoded):
        a = df.reformat(format="yuv420p").to_ndarray()
        y = a[:he, :we]
        uv = a[he:].reshape(-1)[: 2 * (he // 2) * (we // 2)].reshape(2, he // 2, we // 2)
        recon.append(
            Frame(
                y=np.ascontiguousarray(y[:h, :w]),
                u=np.ascontiguousarray(uv[0, :ch, :cw]),
                v=np.ascontiguousarray(uv[1, :ch, :cw]),
                pts=frames[i].pts, matrix=frames[i].matrix, range=frames[i].range,
            )
        )
    return VideoEncodeResult(num_bits=num_bits, recon=recon, packet_bits=packet_bits)


def video_codec(settings: VideoSettings, gop: int, bframes: int, fps: int = 25) -> VideoCodec:
    """A ``codec(frames, crf) -> (bits, recon)`` callable for :func:`rd.evaluate_video_codec`."""
    require_encoder(settings.encoder)

    def codec(frames: list[Frame], quality: int) -> tuple[int, list[Frame]]:
        r = encode_video(settings, frames, quality, gop, bframes, fps)
        return r.num_bits, r.recon

    codec.__name__ = settings.label
    return codec


def x265_intra(rgb: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """HEVC intra (libx265, preset medium, one I-frame) of an RGB image at CRF ``quality``.

    Coded as yuv420p (full-range BT.601, see :mod:`zvc69_rt.eval.color`); PSNR is then
    measured in RGB after converting back, like JPEG/WebP.
    """
    _check_rgb(rgb, quality, 0, 51, "x265_intra")
    frame = rgb_to_frame(rgb)
    r = encode_video(X265_MEDIUM, [frame], int(quality), gop=1, bframes=0)
    return r.num_bits, frame_to_rgb(r.recon[0])


IMAGE_CODECS: dict[str, tuple[ImageCodec, tuple[int, ...]]] = {
    "JPEG": (jpeg, JPEG_QUALITIES),
    "WebP": (webp, WEBP_QUALITIES),
    "x265-intra": (x265_intra, X265_INTRA_CRFS),
}

VIDEO_SETTINGS: dict[str, tuple[VideoSettings, tuple[int, ...]]] = {
    "x264-medium": (X264_MEDIUM, VIDEO_CRFS),
    "x264-veryfast-zerolatency": (X264_VERYFAST_ZL, VIDEO_CRFS),
    "x265-medium": (X265_MEDIUM, VIDEO_CRFS),
    "svt-av1-p8": (SVTAV1_P8, AV1_CRFS),
}
