"""ZVC69 intra model: analysis/synthesis transforms with a mean-scale hyperprior and
per-level gain vectors (one set of weights, eight quality levels).

            x [B,3,H,W] in [0,1]
            |  ga (4x conv5 s2, GDN)
            v
            y [B,M,H/16,W/16] * gain[q]  --ha--> z [B,N,H/64,W/64] --round--> z_hat
            |                                                    |
            |                          hs_mean(z_hat) = mean     | hs_scale(z_hat) = log scale
            v                                                    v  (integer head at runtime)
     sym = round(y*gain - mean) ----- Gaussian(mean, scale) rANS ---> bitstream
            |
     y_hat = (sym + mean) * inv_gain[q]  --gs (4x subpixel up, IGDN)--> x_hat

The scale branch is separate from the mean branch so that it alone can run in exact
integer arithmetic (INTEGERIZED): CDF selection must be bit-identical on every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from onnx_export.entropy_models import FactorizedDensity, gaussian_likelihood
from onnx_export.layers import GDN, SubpixelUp, conv3, conv_down

# CompressAI's eight MSE lambdas (for 8-bit RGB scaled to [0,1]: loss = lambda*255^2*MSE + bpp).
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


@dataclass(frozen=True)
class ModelConfig:
    N: int = 64  # hyperprior channels (and the transforms', unless NT says otherwise)
    M: int = 96  # latent channels
    levels: int = len(LAMBDAS)
    NT: int | None = None  # analysis/synthesis channels; None = N (checkpoints before session 3)

    @property
    def transform_channels(self) -> int:
        return self.NT or self.N


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class ScaleHead(nn.Sequential):
    """z_hat -> log(scale). Plain conv/ReLU/PixelShuffle only, so it integerizes exactly."""

    def __init__(self, N: int, M: int):
        super().__init__(
            nn.Conv2d(N, N * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(),
            nn.Conv2d(N, N * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(),
            nn.Conv2d(N, M, 3, padding=1),
        )


class IntraModel(nn.Module):
    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        N, M, T = cfg.N, cfg.M, cfg.transform_channels
        self.cfg = cfg
        self.ga = nn.Sequential(
            conv_down(3, T), GDN(T), conv_down(T, T), GDN(T), conv_down(T, T), GDN(T), conv_down(T, M)
        )
        self.gs = nn.Sequential(
            SubpixelUp(M, T), GDN(T, inverse=True), SubpixelUp(T, T), GDN(T, inverse=True),
            SubpixelUp(T, T), GDN(T, inverse=True), SubpixelUp(T, 3),
        )
        self.ha = nn.Sequential(
            conv3(M, N), nn.LeakyReLU(inplace=True), conv_down(N, N), nn.LeakyReLU(inplace=True), conv_down(N, N)
        )
        self.hs_mean = nn.Sequential(
            SubpixelUp(N, N), nn.LeakyReLU(inplace=True), SubpixelUp(N, N), nn.LeakyReLU(inplace=True), conv3(N, M)
        )
        self.hs_scale = ScaleHead(N, M)
        self.z_density = FactorizedDensity(N)
        # Gains in the log domain, initialised so the quantizer step follows lambda^-1/2.
        mid = LAMBDAS[len(LAMBDAS) // 2]
        init = torch.tensor([0.5 * math.log(lam / mid) for lam in LAMBDAS[: cfg.levels]])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, M))

    def gains(self, level: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """Gain and inverse gain for a (fractional) level 0..levels-1, exponentially interpolated."""
        level = torch.as_tensor(level, dtype=torch.float32)
        lo = torch.clamp(torch.floor(level), 0, self.cfg.levels - 1).long()
        hi = torch.clamp(lo + 1, max=self.cfg.levels - 1)
        t = (level - lo.float()).unsqueeze(-1)
        g = self.log_gain[lo] * (1 - t) + self.log_gain[hi] * t
        ig = self.log_inv_gain[lo] * (1 - t) + self.log_inv_gain[hi] * t
        return torch.exp(g), torch.exp(ig)

    def forward(self, x: torch.Tensor, level: torch.Tensor, fidelity: bool = False) -> dict[str, torch.Tensor]:
        """Training forward: level is a LongTensor [B] of integer levels. fidelity=True also
        returns x_tilde, the synthesis of the unquantised latent (for an auxiliary loss that
        trains the transforms as an autoencoder: train.py --aux-fidelity)."""
        g, ig = self.gains(level.float())
        y = self.ga(x * 2 - 1) * g[:, :, None, None]
        z = self.ha(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = round_ste(z)
        mean = self.hs_mean(z_hat)
        scale = torch.exp(self.hs_scale(z_hat))
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_hat = round_ste(y - mean) + mean
        x_hat = (self.gs(y_hat * ig[:, :, None, None]) + 1) / 2
        extra = {"x_tilde": (self.gs(y * ig[:, :, None, None]) + 1) / 2} if fidelity else {}
        return {
            **extra,
            "x_hat": x_hat,
            "y_lik": gaussian_likelihood(y_noisy, mean, scale),
            "z_lik": self.z_density.likelihood(z_noisy),
        }
