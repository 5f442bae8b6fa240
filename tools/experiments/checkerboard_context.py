"""How much would a checkerboard context model (He et al., CVPR 2021) save on the shipped
intra model's latents, with the transforms and hyperprior frozen? (docs/TRAINING.md,
"Session 9": too little to change the format for.)

Half of y (the anchors, (row + col) even) is coded as now; the other half gets a mean and
scale refined from the decoded anchors (5x5 conv) and the hyperprior's mean and scale
(1x1 convs, initialised to no change), fitted on latents of the training photos (512 px
centre crops, levels 1/3/5/7) and scored on the held-out photos in ideal discrete-Gaussian
bits (the coder adds ~0.1 %). Needs the `train` extra; one thread, ~27 min at 6000 steps.

    python tools/experiments/checkerboard_context.py [STEPS]
"""

import sys

import numpy as np
import torch
from torch import nn

from onnx_export.data import training_images
from zvc69_rt.codec.api import EncoderConfig, level_to_quality
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.entropy.gaussian import SCALE_TABLE
from zvc69_rt.eval.datasets import eval_images
from zvc69_rt.io.padding import pad_to_multiple

LEVELS = (1, 3, 5, 7)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
torch.set_num_threads(1)
torch.manual_seed(0)
rng = np.random.default_rng(0)


def latents(images: list[np.ndarray]) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(level, y, hyper mean, hyper scale) per image and level, from the shipped bundle."""
    intra = Encoder(EncoderConfig(width=64, height=64, gop=1)).intra
    out = []
    for img in images:
        x, _ = pad_to_multiple(img.transpose(2, 0, 1).astype(np.float32) / 255.0, 64, "smooth")
        for lv in LEVELS:
            lat = intra.analyse(x, level_to_quality(lv))
            scale = SCALE_TABLE[intra.scale_head(lat.z_hat).astype(np.int64)]
            out.append((str(lv), torch.from_numpy(lat.y), torch.from_numpy(lat.mean), torch.from_numpy(scale)))
    return out


def centre_crop(img: np.ndarray, size: int = 512) -> np.ndarray:
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[y0:y0 + size, x0:x0 + size]


def discrete_bits(v: torch.Tensor, s: torch.Tensor, noisy: bool) -> torch.Tensor:
    """-log2 P(round(v)) under N(0, s) (noisy: the training proxy, v with uniform noise)."""
    s = s.clamp_min(0.11)
    n = torch.distributions.Normal(0.0, 1.0)
    c = v.abs() if noisy else torch.round(v).abs()
    p = n.cdf((c + 0.5) / s) - n.cdf((c - 0.5) / s) if not noisy else n.cdf((0.5 - c) / s) - n.cdf((-0.5 - c) / s)
    return -torch.log2(p.clamp_min(1e-9))


class CheckerboardContext(nn.Module):
    def __init__(self, m: int):
        super().__init__()
        self.m = m
        self.context = nn.Conv2d(m, 2 * m, 5, padding=2)
        self.params = nn.Sequential(nn.Conv2d(4 * m, 2 * m, 1), nn.LeakyReLU(), nn.Conv2d(2 * m, 2 * m, 1))
        nn.init.zeros_(self.params[-1].weight)
        nn.init.zeros_(self.params[-1].bias)

    def forward(self, y_hat_anchors, mean, scale):
        d = self.params(torch.cat([self.context(y_hat_anchors), mean, torch.log(scale)], 1))
        return mean + d[:, : self.m], scale * torch.exp(d[:, self.m:])


def split_bits(net, y, mean, scale, noisy):
    """(anchor bits, non-anchor bits now, non-anchor bits with context)."""
    h, w = y.shape[2:]
    anchors = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2 == 0).float()
    others = 1 - anchors
    y_hat_anchors = (torch.round(y - mean) + mean) * anchors
    mean2, scale2 = net(y_hat_anchors, mean, scale)
    v = y - mean2 + (torch.empty_like(y).uniform_(-0.5, 0.5) if noisy else 0)
    with_ctx = (discrete_bits(v, scale2, noisy) * others).sum()
    plain = discrete_bits(y - mean, scale, False)
    return (plain * anchors).sum(), (plain * others).sum(), with_ctx


train = latents([centre_crop(im) for im in training_images(verbose=False)])
held_out = latents([im for _, im in eval_images(512)])
net = CheckerboardContext(train[0][1].shape[0])
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for step in range(STEPS):
    batch = []
    for _ in range(8):
        _, y, mean, scale = train[rng.integers(len(train))]
        a = int(rng.integers(0, y.shape[1] - 15)) // 2 * 2
        b = int(rng.integers(0, y.shape[2] - 15)) // 2 * 2
        batch.append([t[:, a:a + 16, b:b + 16] for t in (y, mean, scale)])
    y, mean, scale = (torch.stack(t) for t in zip(*batch))
    loss = split_bits(net, y, mean, scale, noisy=True)[2] / y.numel() * 2
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step == int(STEPS * 0.8):
        for g in opt.param_groups:
            g["lr"] = 2e-4
with torch.no_grad():
    totals: dict[str, np.ndarray] = {}
    for lv, y, mean, scale in held_out:
        totals[lv] = totals.get(lv, 0) + np.array([float(b) for b in split_bits(net, y[None], mean[None], scale[None], False)])
for lv, (anchor, plain, ctx) in sorted(totals.items()):
    print(f"level {lv}: y bits {(anchor + plain) / 8:.0f} B -> {(anchor + ctx) / 8:.0f} B "
          f"({100 * ((anchor + ctx) / (anchor + plain) - 1):+.1f} %)")
