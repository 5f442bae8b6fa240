"""Rate-distortion plots (PNG) with matplotlib's Agg backend, so they render headless."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from zvc69_rt.errors import NotAvailableError
from zvc69_rt.eval.rd import RDPoint

_LABELS = {
    "bpp": "bits per pixel",
    "kbps": "kbit/s",
    "psnr_rgb": "PSNR-RGB (dB)",
    "psnr_y": "PSNR-Y (dB)",
    "psnr_yuv": "PSNR-YUV 6:1:1 (dB)",
    "ms_ssim": "MS-SSIM",
}


def plot_rd(
    curves: Mapping[str, Sequence[RDPoint]],
    path: str | Path,
    x: str = "bpp",
    y: str = "psnr_rgb",
    title: str = "",
    highlight: str | None = "ZVC69",
) -> Path:
    """Write one RD plot (``x`` vs ``y``, one line per codec) to ``path`` and return it."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the eval/dev extras
        raise NotAvailableError("matplotlib is not installed (pip install 'zvc69-rt[eval]')") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    try:
        for name, pts in curves.items():
            pts = sorted((p for p in pts if getattr(p, x) is not None and getattr(p, y) is not None),
                         key=lambda p: getattr(p, x))
            if not pts:
                continue
            bold = highlight is not None and name.startswith(highlight)
            ax.plot(
                [getattr(p, x) for p in pts], [getattr(p, y) for p in pts],
                marker="o", markersize=3.5, linewidth=2.4 if bold else 1.4, label=name,
                color="black" if bold else None,
            )
        ax.set_xlabel(_LABELS.get(x, x))
        ax.set_ylabel(_LABELS.get(y, y))
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
