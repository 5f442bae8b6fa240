"""Differentiable rate models used in training: factorized density for z, Gaussian for y.

The runtime codes with quantized tables derived from these (see export.py); training
only needs likelihoods.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9


def _lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """max(x, bound) whose gradient still flows when it would push x back up."""
    return x + (torch.clamp(x, min=bound) - x).detach()


class FactorizedDensity(nn.Module):
    """Balle et al. (2018) univariate non-parametric density, one per channel.

    ``cdf_logits(x)`` is a learned monotone function; p(k) = sigmoid(c(k+.5)) - sigmoid(c(k-.5)).
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def cdf_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: [C, 1, L] -> logits [C, 1, L]."""
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, C, H, W] (noisy or rounded) -> per-element likelihood."""
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.cdf_logits(v - 0.5)
        upper = self.cdf_logits(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = _lower_bound(lik, LIKELIHOOD_BOUND)
        return lik.reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def pmf_table(self, lo: int, hi: int) -> torch.Tensor:
        """Probabilities of integers lo..hi per channel: [C, hi-lo+1]."""
        c = self.matrices[0].shape[0]
        k = torch.arange(lo, hi + 1, dtype=torch.float32).reshape(1, 1, -1).expand(c, 1, -1)
        lower = torch.sigmoid(self.cdf_logits(k - 0.5))
        upper = torch.sigmoid(self.cdf_logits(k + 0.5))
        return (upper - lower).reshape(c, -1).clamp_min(0)


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(y in [v-.5, v+.5]) under N(mean, scale), computed on the symmetric tail for accuracy."""
    scale = _lower_bound(scale, SCALE_BOUND)
    v = torch.abs(y - mean)
    upper = 0.5 * torch.erfc(-(0.5 - v) / (scale * math.sqrt(2)))
    lower = 0.5 * torch.erfc(-(-0.5 - v) / (scale * math.sqrt(2)))
    return _lower_bound(upper - lower, LIKELIHOOD_BOUND)
