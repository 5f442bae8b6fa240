"""Which YUV<->RGB conversion the codec uses internally.

The container has no matrix/range field, so encoder and decoder agree on a fixed rule:
BT.709 for coded heights >= 720, BT.601 below, and full-range equations in both
directions. Full range never clips an in-range luma value, and because the decoder
inverts exactly the conversion the encoder applied, the decoded YUV values mirror the
input's whatever range the source was really in (the Y4M range tag is passed through
by the CLI, not interpreted by the codec).
"""

from __future__ import annotations


def coding_colorspace(width: int, height: int) -> tuple[str, str]:
    return ("bt709" if height >= 720 else "bt601"), "full"
