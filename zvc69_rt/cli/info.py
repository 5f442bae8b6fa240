"""`zvc69 info FILE [--json]`: header, frames, index and trailer of a ZVC69 stream; verifies every checksum.

FILE may be '-' (stdin, e.g. a pipe): the stream is read sequentially and gives the same
frames, index and result as the same stream in a seekable file (only the header's
total_frames/index_offset differ, which a pipe writer cannot patch).
"""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="show a .zvc stream's header, frames and index; verify its checksums",
        description="Print the file header, per-frame type/size/pts, bitrate, index and trailer of a ZVC69 "
        "stream, verifying every frame CRC-16 and the trailer CRC-32. FILE may be '-' for stdin. Exits 1 "
        "with a one-line error on a malformed stream.",
    )
    p.add_argument("file", help="a .zvc stream, or '-' for stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object (header, frames, index, summary)")
    p.set_defaults(func=run)


def inspect(source, name: str) -> dict:
    """Walk and verify the whole stream; return everything `info` prints (no frame data kept)."""
    from zvc69_rt.bitstream import FrameFlags, StreamReader

    with StreamReader(source) as reader:
        hdr = reader.header
        frames = []
        data_bytes = 0
        for rec in reader.iter_records():
            h = rec.header
            frames.append({
                "number": rec.number, "offset": rec.offset, "type": h.type_name, "frame_type": h.frame_type,
                "quality_level": h.quality_level, "frame_size": h.frame_size,
                "latent_height": h.latent_height, "latent_width": h.latent_width, "pts": h.pts,
                "crc16": f"{h.checksum:04x}", "reduced_res": h.reduced_res,
                "residual_layer": bool(h.flags & FrameFlags.RESIDUAL_LAYER),
            })
            data_bytes += h.frame_size
        n = reader.frame_count or 0
        size = reader.stream_size or 0
        duration = n * hdr.framerate_den / hdr.framerate_num
        index = reader.index
        return {
            "file": name,
            "stream_size": size,
            "header": hdr.to_dict(),
            "frames": frames,
            "index": None if index is None else {
                "offset": reader.index_offset, "entry_count": len(index.entries),
                "entries": [e.to_dict() for e in index.entries],
            },
            "trailer": None if reader.trailer is None else reader.trailer.to_dict(),
            "summary": {
                "frame_count": n,
                "keyframes": sum(1 for f in frames if f["frame_type"] == 0),
                "frame_types": {t: sum(1 for f in frames if f["type"] == t) for t in ("I", "P", "B", "BBi")},
                "duration_s": duration,
                "bitrate_bps": size * 8 / duration if duration else None,
                "frame_data_bytes": data_bytes,
                "frame_data_bitrate_bps": data_bytes * 8 / duration if duration else None,
                "frame_crc16_verified": len(frames),
                "trailer_crc32": "ok" if reader.trailer is not None else "absent",
                "result": "ok",
            },
        }


def run(args) -> int:
    from zvc69_rt.errors import InputError

    if args.file == "-":
        source, name = sys.stdin.buffer, "-"
    else:
        source = name = args.file
        try:
            open(source, "rb").close()
        except OSError as exc:
            raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc
    report = inspect(source, name)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def _kbps(bps: float | None) -> str:
    return "n/a" if bps is None else f"{bps / 1000:.1f} kbit/s"


def format_report(r: dict) -> str:
    """The human-readable form of inspect()'s result."""
    h, s = r["header"], r["summary"]
    total_note = " (unknown: written to a pipe)" if not h["total_frames"] else ""
    index_note = " (see trailer)" if not h["index_offset"] else ""
    flags = "|".join(h["flag_names"]) or "none"
    lines = [
        f"file: {r['file']} ({r['stream_size']} bytes)",
        (f"header: ZVC69 v{h['version_major']}.{h['version_minor']}  {h['width']}x{h['height']}  "
         f"{h['framerate_num']}/{h['framerate_den']} fps  gop {h['gop_size']}  quality {h['quality_level']}  "
         f"{h['color_space_name']} {h['bit_depth']}-bit"),
        (f"        flags 0x{h['flags']:08x} ({flags})  model_hash {h['model_hash']}  "
         f"latent_channels {h['latent_channels']}  hyperprior_channels {h['hyperprior_channels']}"),
        f"        total_frames {h['total_frames']}{total_note}  index_offset {h['index_offset']}{index_note}",
        f"frames: {s['frame_count']}",
        f"  {'#':>6} {'type':<4} {'size':>9} {'pts':>8} {'offset':>10} {'quality':>7} {'latent':>9}  crc16",
    ]
    for f in r["frames"]:
        lines.append(f"  {f['number']:>6} {f['type']:<4} {f['frame_size']:>9} {f['pts']:>8} {f['offset']:>10} "
                     f"{f['quality_level']:>7} {str(f['latent_height']) + 'x' + str(f['latent_width']):>9}  "
                     f"{f['crc16']} ok" + ("  half-size" if f["reduced_res"] else "")
                     + ("  +residual layer" if f["residual_layer"] else ""))
    idx = r["index"]
    if idx is None:
        lines.append("index: none")
    else:
        lines.append(f"index: {idx['entry_count']} entries at offset {idx['offset']}")
        for e in idx["entries"]:
            lines.append(f"  frame {e['frame_number']:>6} @ {e['byte_offset']:>10}  {'|'.join(e['flag_names'])}")
    t = r["trailer"]
    lines.append("trailer: none" if t is None else
                 f"trailer: frame_count {t['frame_count']}  index_offset {t['index_offset']}  "
                 f"crc32 {t['crc32']} ok")
    ft = ", ".join(f"{k} {v}" for k, v in s["frame_types"].items() if v)
    lines.append(
        f"summary: {s['frame_count']} frames ({ft or 'none'}), {s['duration_s']:.3f} s, "
        f"{_kbps(s['bitrate_bps'])} (frame data {_kbps(s['frame_data_bitrate_bps'])}); "
        f"checksums ok: {s['frame_crc16_verified']} frame CRC-16, trailer CRC-32 {s['trailer_crc32']}"
    )
    return "\n".join(lines)
