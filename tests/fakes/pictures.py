"""Tiny textured training pictures, for training-loop tests that must not load real data."""

from __future__ import annotations

import numpy as np


def pictures(n: int, size: int, seed: int) -> list[np.ndarray]:
    """n uint8 [size, size, 3] pictures: a seeded mix of sinusoid gratings plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(n):
        f = rng.uniform(5, 20, 3)
        img = np.stack([127 + 100 * np.sin(xx / f[c] + yy / (f[c] + 3)) for c in range(3)], -1)
        out.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    return out
