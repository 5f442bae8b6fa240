"""ZVC69 P-frame model (torch; training/export only): motion estimation, quarter-pel
motion quantisation, bilinear motion compensation and a mean-scale residual coder.

    ref, cur [B,3,H,W] in [0,1]
        |  MotionNet (avg-pool 2, features, H/8 cost volume, U-Net) -> flow [B,2,H/4,W/4], pixels
        |  quantise: q = round(flow / step)              step = 1, 1/2, 1/4 px (FullPel..QuarterPel)
        |  warp(ref, upsample4(q * step))                bilinear GridSample  -> pred
        v
    [cur - pred, pred] --ra (3x conv5 s2, GDN)--> y [B,64,H/8,W/8] * gain[q]
        y --rha--> z [B,32,H/32,W/32] --round--> z_hat --rhs_mean--> mean, --rhs_scale--> log scale
        sym = round(y - mean);  y_hat = sym + mean
        x_hat = clamp(pred + rs(y_hat * inv_gain), 0, 1)  (3x sub-pixel up, IGDN)

    conditional synthesis (cfg.cond = C > 0, session 16): the decoder has the prediction too,
    so rs sees it: pred --conv3 s2--> p2 [C,H/2] --conv3 s2--> p4 [C,H/4], each added to
    rs's features at its scale through a 1x1 conv that starts at zero (a plain model's
    checkpoint loads into it unchanged and computes the same x_hat at step 0)

    conditional mean (cfg.cond_mean, session 19; needs cond): the residual's entropy mean
    sees the prediction too, p4 --conv3 s2--> p8 [C,H/8] --1x1 (zero at start)--> times the
    level's gain, added to rhs_mean(z_hat). Only the mean: the scale index must stay an
    exact integer function of z_hat (a float prediction differs across precisions), while
    a mean that differs slightly between encoder and decoder moves y_hat by as much and
    decodes the same symbols.

The residual scale branch (rhs_scale) is the same plain conv/ReLU/PixelShuffle head as
the intra model, so zvc69_rt.models.scale_head.IntegerScaleHead runs it exactly.
The motion rate model here (a zero-mean Gaussian on the horizontal/vertical DPCM of the
vectors, one scale per component per frame) is the one the runtime codes with
(zvc69_rt.codec.motion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from onnx_export.entropy_models import FactorizedDensity, gaussian_likelihood
from onnx_export.layers import GDN, SubpixelUp, conv3, conv_down
from onnx_export.model import LAMBDAS, ScaleHead, round_ste
from zvc69_rt.codec.reduced_res import _DOWN_TAPS, UPSAMPLE_TAPS

#: Motion vector quantiser step (pixels) per precision code (MotionPrecision 0, 1, 2).
MOTION_STEPS = (1.0, 0.5, 0.25)
QUARTER_PEL = 2


@dataclass(frozen=True)
class InterConfig:
    N: int = 48  # residual transform channels
    M: int = 64  # residual latent channels (spec: Residual Latent 64)
    Nz: int = 32  # residual hyperprior channels (spec: Residual Hyperprior 32)
    F: int = 32  # motion network base width
    levels: int = len(LAMBDAS)
    cond: int = 0  # channels of the synthesis' prediction branch (0 = plain residual synthesis)
    cond_mean: bool = False  # the residual's entropy mean sees the prediction (needs cond)


def warp(ref: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp: pred(p) = ref(p + flow(p)); flow [B,2,H,W] in pixels (dx, dy).

    Exports to ONNX Range/GridSample (opset 16+), border padding, align_corners=False.
    mode "bicubic" (Keys, a = -0.75) keeps sub-pixel shifts sharp where bilinear blurs
    them (a 1.25 px pan: +2 dB prediction PSNR); its overshoot is clamped to [0, 1].
    """
    h, w = ref.shape[2], ref.shape[3]
    xs = torch.arange(w, dtype=torch.float32).reshape(1, 1, -1)
    ys = torch.arange(h, dtype=torch.float32).reshape(1, -1, 1)
    wf = torch.as_tensor(w, dtype=torch.float32) if not torch.is_tensor(w) else w.float()
    hf = torch.as_tensor(h, dtype=torch.float32) if not torch.is_tensor(h) else h.float()
    gx = (2 * (xs + flow[:, 0]) + 1) / wf - 1
    gy = (2 * (ys + flow[:, 1]) + 1) / hf - 1
    grid = torch.stack((gx, gy), dim=-1)
    out = F.grid_sample(ref, grid, mode=mode, padding_mode="border", align_corners=False)
    return out if mode == "bilinear" else out.clamp(0.0, 1.0)


def _separable(x: torch.Tensor, taps: torch.Tensor, pad: tuple[int, int], stride: int, axis: int) -> torch.Tensor:
    """Edge-replicated 1-D filter along the last (axis=-1) or second-to-last (axis=-2) axis."""
    c = x.shape[1]
    if axis == -1:
        x = F.pad(x, (pad[0], pad[1], 0, 0), mode="replicate")
        k = taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
        return F.conv2d(x, k, stride=(1, stride), groups=c)
    x = F.pad(x, (0, 0, pad[0], pad[1]), mode="replicate")
    k = taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return F.conv2d(x, k, stride=(stride, 1), groups=c)


def downsample_2x(x: torch.Tensor) -> torch.Tensor:
    """The runtime's encoder-side half picture (zvc69_rt.codec.reduced_res.downsample_2x,
    Lanczos-3) for even sizes: what a half-size residual (flag 3) is coded against."""
    taps = torch.from_numpy(_DOWN_TAPS.copy())
    return _separable(_separable(x, taps, (5, 6), 2, -1), taps, (5, 6), 2, -2)


def upsample_2x(x: torch.Tensor) -> torch.Tensor:
    """The runtime's normative 2x upsampling (reduced_res.upsample_2x: 4-tap bicubic, width first)."""
    t = torch.tensor([float(v) for v in UPSAMPLE_TAPS])

    def up(a: torch.Tensor, axis: int) -> torch.Tensor:
        even = _separable(a, t, (2, 1), 1, axis)  # output 2k reads k-2..k+1
        odd = _separable(a, t.flip(0), (1, 2), 1, axis)  # output 2k+1 reads k-1..k+2, taps reversed
        return _interleave(even, odd, axis)

    return up(up(x, -1), -2)


def _interleave(even: torch.Tensor, odd: torch.Tensor, axis: int) -> torch.Tensor:
    b, c, h, w = even.shape
    if axis == -1:
        return torch.stack((even, odd), -1).reshape(b, c, h, 2 * w)
    return torch.stack((even, odd), -2).reshape(b, c, 2 * h, w)


def upsample_motion(motion: torch.Tensor) -> torch.Tensor:
    """H/4 motion (pixels of the full frame) -> per-pixel field, bilinear."""
    return F.interpolate(motion, scale_factor=4, mode="bilinear", align_corners=False)


def motion_dpcm(q: torch.Tensor) -> torch.Tensor:
    """Integer vectors [B,2,h,w] -> differences coded by the runtime: left neighbour in
    each row, upper neighbour in column 0, the top-left value itself."""
    d = q.clone()
    d[:, :, :, 1:] = q[:, :, :, 1:] - q[:, :, :, :-1]
    d[:, :, 1:, 0] = q[:, :, 1:, 0] - q[:, :, :-1, 0]
    return d


def correlation(cur: torch.Tensor, ref: torch.Tensor, radius: int) -> torch.Tensor:
    """Local cost volume: channel-mean of cur(p) * ref(p + d) for |dx|, |dy| <= radius
    -> [B, (2r+1)^2, H, W]. Exports as Pad/Slice/Mul/ReduceMean (TensorRT-parseable)."""
    h, w = cur.shape[2], cur.shape[3]
    padded = F.pad(ref, (radius, radius, radius, radius))
    out = []
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out.append((cur * padded[:, :, dy : dy + h, dx : dx + w]).mean(1, keepdim=True))
    return torch.cat(out, 1)


class MotionNet(nn.Module):
    """Flow network on [ref, cur] at half resolution: shared features to H/4 and H/8, a
    +-4 cost volume at H/8 (+-32 px) whose soft-argmax gives a coarse flow, and a small
    U-Net (H/8..H/16) that adds a correction at H/4. Flow in full-resolution pixels."""

    FLOW_SCALE = 8.0
    RADIUS = 4
    STRIDE = 8  # full-resolution pixels per H/8 cost-volume step

    def __init__(self, f: int = 32):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.1, inplace=True)
        f2 = f * 3 // 2
        self.pool = nn.AvgPool2d(2)
        self.feat4 = nn.Sequential(nn.Conv2d(3, f, 5, stride=2, padding=2), act(), conv3(f, f), act())  # H/4
        self.feat8 = nn.Sequential(nn.Conv2d(f, f2, 3, stride=2, padding=1), act(), conv3(f2, f2))  # H/8
        ncorr = (2 * self.RADIUS + 1) ** 2
        self.c8 = nn.Sequential(conv3(ncorr + f2, f * 2), act())
        self.e16 = nn.Sequential(nn.Conv2d(f * 2, f * 3, 3, stride=2, padding=1), act(), conv3(f * 3, f * 3), act())
        self.u8 = nn.Sequential(SubpixelUp(f * 3, f * 2), act())
        self.d8 = nn.Sequential(conv3(f * 4, f * 2), act())
        self.u4 = nn.Sequential(SubpixelUp(f * 2, f), act())
        self.d2 = nn.Sequential(conv3(f * 3 + 2, f), act(), conv3(f, 2))
        self.log_temp = nn.Parameter(torch.tensor(math.log(20.0)))
        r = torch.arange(-self.RADIUS, self.RADIUS + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(r, r, indexing="ij")
        self.register_buffer("disp", torch.stack((dx.reshape(-1), dy.reshape(-1)))[None, :, :, None, None]
                             * self.STRIDE, persistent=False)
        nn.init.zeros_(self.d2[-1].weight)
        nn.init.zeros_(self.d2[-1].bias)

    def forward(self, ref: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        r4 = self.feat4(self.pool(ref * 2 - 1))
        c4 = self.feat4(self.pool(cur * 2 - 1))
        r8, c8 = self.feat8(r4), self.feat8(c4)
        r8 = r8 * torch.rsqrt((r8 * r8).mean(1, keepdim=True) + 1e-6)
        c8 = c8 * torch.rsqrt((c8 * c8).mean(1, keepdim=True) + 1e-6)
        corr = correlation(c8, r8, self.RADIUS)
        # soft-argmax of the cost volume: a coarse flow that is right before any training
        w = torch.softmax(corr * torch.exp(self.log_temp), dim=1)
        coarse = (w.unsqueeze(1) * self.disp).sum(2)  # [B, 2, H/8, W/8], pixels
        coarse4 = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        x8 = self.c8(torch.cat((corr, c8), 1))
        x16 = self.e16(x8)
        d8 = self.d8(torch.cat((self.u8(x16), x8), 1))
        return coarse4 + self.d2(torch.cat((self.u4(d8), c4, r4, coarse4 / self.STRIDE), 1)) * self.FLOW_SCALE


def motion_med(q: torch.Tensor) -> torch.Tensor:
    """Integer vectors [B,2,h,w] -> residuals of the LOCO-I median predictor (left a, upper
    b, upper-left c; row 0 and column 0 as motion_dpcm), the runtime's other predictor."""
    d = motion_dpcm(q)
    a, b, c = q[:, :, 1:, :-1], q[:, :, :-1, 1:], q[:, :, :-1, :-1]
    hi, lo = torch.maximum(a, b), torch.minimum(a, b)
    pred = torch.where(c >= hi, lo, torch.where(c <= lo, hi, a + b - c))
    d[:, :, 1:, 1:] = q[:, :, 1:, 1:] - pred
    return d


def residual_bits(d: torch.Tensor, noise: bool) -> torch.Tensor:
    """Bits per sample of motion prediction residuals d [B,2,h,w]: a zero-mean Gaussian of
    each component's spread (the runtime picks a table row per component)."""
    scale = d.detach().flatten(2).std(2).clamp_min(0.11)[:, :, None, None]
    if noise:
        d = d + torch.empty_like(d).uniform_(-0.5, 0.5)
    return (-torch.log2(gaussian_likelihood(d, torch.zeros_like(d), scale))).flatten(1).sum(1)


def motion_rate_bits(q: torch.Tensor, noise: bool) -> torch.Tensor:
    """Estimated bits per sample of integer motion q [B,2,h,w] under the runtime's model:
    the cheaper of the two predictors (the encoder picks per frame; MED since session 7)."""
    return torch.minimum(residual_bits(motion_dpcm(q), noise), residual_bits(motion_med(q), noise))


class InterModel(nn.Module):
    def __init__(self, cfg: InterConfig = InterConfig()):
        super().__init__()
        self.cfg = cfg
        N, M, Nz = cfg.N, cfg.M, cfg.Nz
        self.motion = MotionNet(cfg.F)
        self.ra = nn.Sequential(conv_down(6, N), GDN(N), conv_down(N, N), GDN(N), conv_down(N, M))
        self.rs = nn.Sequential(
            SubpixelUp(M, N), GDN(N, inverse=True), SubpixelUp(N, N), GDN(N, inverse=True), SubpixelUp(N, 3)
        )
        if cfg.cond:
            C = cfg.cond
            self.pf2 = nn.Sequential(nn.Conv2d(3, C, 3, 2, 1), nn.LeakyReLU(inplace=True))
            self.pf4 = nn.Sequential(nn.Conv2d(C, C, 3, 2, 1), nn.LeakyReLU(inplace=True))
            self.inj2, self.inj4 = nn.Conv2d(C, N, 1), nn.Conv2d(C, N, 1)
            for inj in (self.inj2, self.inj4):
                nn.init.zeros_(inj.weight)
                nn.init.zeros_(inj.bias)
        if cfg.cond_mean:
            if not cfg.cond:
                raise ValueError("InterConfig.cond_mean needs the prediction branch (cond > 0)")
            self.pf8 = nn.Sequential(nn.Conv2d(cfg.cond, cfg.cond, 3, 2, 1), nn.LeakyReLU(inplace=True))
            self.injm = nn.Conv2d(cfg.cond, M, 1)
            nn.init.zeros_(self.injm.weight)
            nn.init.zeros_(self.injm.bias)
        self.rha = nn.Sequential(
            conv3(M, Nz), nn.LeakyReLU(inplace=True), conv_down(Nz, Nz), nn.LeakyReLU(inplace=True),
            conv_down(Nz, Nz),
        )
        self.rhs_mean = nn.Sequential(
            SubpixelUp(Nz, Nz), nn.LeakyReLU(inplace=True), SubpixelUp(Nz, Nz), nn.LeakyReLU(inplace=True),
            conv3(Nz, M),
        )
        self.rhs_scale = ScaleHead(Nz, M)
        self.z_density = FactorizedDensity(Nz)
        mid = LAMBDAS[len(LAMBDAS) // 2]
        init = torch.tensor([0.5 * math.log(lam / mid) for lam in LAMBDAS[: cfg.levels]])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, M))

    # The export helpers of the intra model look for these names.
    @property
    def hs_scale(self) -> ScaleHead:
        return self.rhs_scale

    def gains(self, level: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        level = torch.as_tensor(level, dtype=torch.float32)
        lo = torch.clamp(torch.floor(level), 0, self.cfg.levels - 1).long()
        hi = torch.clamp(lo + 1, max=self.cfg.levels - 1)
        t = (level - lo.float()).unsqueeze(-1)
        g = self.log_gain[lo] * (1 - t) + self.log_gain[hi] * t
        ig = self.log_inv_gain[lo] * (1 - t) + self.log_inv_gain[hi] * t
        return torch.exp(g), torch.exp(ig)

    def residual_analysis(self, cur: torch.Tensor, pred: torch.Tensor, gain: torch.Tensor):
        y = self.ra(torch.cat((cur - pred, pred * 2 - 1), 1)) * gain
        return y, self.rha(y)

    def residual_mean(self, z_hat: torch.Tensor, pred: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """Entropy mean of the (gained) residual latent: from z_hat, plus with cond_mean a
        prediction term in the latent's gained units."""
        mean = self.rhs_mean(z_hat)
        if self.cfg.cond_mean:
            mean = mean + self.injm(self.pf8(self.pf4(self.pf2(pred * 2 - 1)))) * gain
        return mean

    def residual_synthesis(self, y_hat: torch.Tensor, inv_gain: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        if not self.cfg.cond:
            return torch.clamp(pred + self.rs(y_hat * inv_gain) * 0.5, 0, 1)
        p2 = self.pf2(pred * 2 - 1)
        p4 = self.pf4(p2)
        h = self.rs[1](self.rs[0](y_hat * inv_gain)) + self.inj4(p4)
        h = self.rs[3](self.rs[2](h)) + self.inj2(p2)
        return torch.clamp(pred + self.rs[4](h) * 0.5, 0, 1)

    def residual_parameters(self) -> list[nn.Parameter]:
        """Everything but the motion network: what --freeze-motion trains."""
        return [p for name, p in self.named_parameters() if not name.startswith("motion.")]

    def forward(self, ref: torch.Tensor, cur: torch.Tensor, level: torch.Tensor,
                precision: int = QUARTER_PEL, cubic: bool = False, half: bool = False) -> dict[str, torch.Tensor]:
        """Training forward; level is a LongTensor [B]. Straight-through rounding everywhere.
        cubic: predict with the bicubic warp (the runtime's CUBIC_FLAG), so the residual
        coder also learns the sharper predictions the encoder may pick.
        half: code the residual as the runtime's flag 3 does (cur and pred halved, the
        decoded half picture's difference to the half prediction upsampled onto pred),
        the form most low-rate P-frames take; H and W must be multiples of 64."""
        step = MOTION_STEPS[precision]
        flow4 = self.motion(ref, cur)
        q = round_ste(flow4 / step)
        pred = warp(ref, upsample_motion(q * step), "bicubic" if cubic else "bilinear")
        g, ig = self.gains(level.float())
        cur_c, pred_c = (downsample_2x(cur), downsample_2x(pred)) if half else (cur, pred)
        y, z = self.residual_analysis(cur_c, pred_c, g[:, :, None, None])
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = round_ste(z)
        mean = self.residual_mean(z_hat, pred_c, g[:, :, None, None])
        scale = torch.exp(self.rhs_scale(z_hat))
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_hat = round_ste(y - mean) + mean
        x_hat = self.residual_synthesis(y_hat, ig[:, :, None, None], pred_c)
        if half:
            x_hat = torch.clamp(pred + upsample_2x(x_hat - pred_c), 0, 1)
        return {
            "x_hat": x_hat,
            "pred": pred,
            "flow4": flow4,
            "motion_bits": motion_rate_bits(q, noise=True),
            "y_lik": gaussian_likelihood(y_noisy, mean, scale),
            "z_lik": self.z_density.likelihood(z_noisy),
        }
