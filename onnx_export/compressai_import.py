"""Import a CompressAI hyperprior checkpoint as a runtime model bundle (docs/COMPRESSAI.md).

    python -m onnx_export.compressai_import CKPT.pth --arch mbt2018-mean --out bundles/mbt-q1
    zvc69 import-compressai CKPT.pth --arch mbt2018-mean --out bundles/mbt-q1   (same thing)

Supported: ``bmshj2018-hyperprior`` (ScaleHyperprior) and ``mbt2018-mean``
(MeanScaleHyperprior). CompressAI itself is not needed: the two architectures are
re-created here with CompressAI's module layout, so its state dicts (old
``entropy_bottleneck._matrix0`` names or new ``entropy_bottleneck.matrices.0`` ones,
bare or under a ``state_dict`` key) load as they are.

Bundle layout (same graph names as our own bundles, onnx_export/export.py):
    analysis.{fp32,fp16}.onnx          x[1,3,H,W] in [0,1], gain -> y, z
    hyper_synthesis.{fp32,fp16}.onnx   z_hat -> mean, scale   (bmshj2018: mean = 0)
    synthesis.{fp32,fp16}.onnx         y_hat, inv_gain -> x_hat = clamp(g_s(y_hat), 0, 1)
    tables.npz    gains = inv_gains = 1 (single-rate), z CDFs and z_medians from the
                  EntropyBottleneck, CompressAI's scale_table and our Gaussian CDFs for it
manifest: "scale_path": "float" (no integer head; streams are not INTEGERIZED),
"single_rate": true. No INT8 variants.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean")
LEVELS = 8
Z_MAX_SYMBOL = 127  # z rows cover at most -127..127 around the median (beyond: ESCAPE)


# -- CompressAI's modules, same parameter/buffer names -------------------------------
class LowerBound(nn.Module):
    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x):
        return torch.max(x, self.bound)


class NonNegativeParametrizer(nn.Module):
    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18):
        super().__init__()
        pedestal = reparam_offset**2
        self.register_buffer("pedestal", torch.Tensor([pedestal]))
        self.lower_bound = LowerBound((minimum + pedestal) ** 0.5)

    def init(self, x):
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x):
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x):
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm


def conv(cin: int, cout: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(cin: int, cout: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel_size, stride=stride, output_padding=stride - 1,
                              padding=kernel_size // 2)


class EntropyBottleneck(nn.Module):
    """CompressAI's factorized density (parameters only: coding is ours)."""

    def __init__(self, channels: int, init_scale: float = 10.0, filters=(3, 3, 3, 3), tail_mass: float = 1e-9):
        super().__init__()
        self.filters = tuple(filters)
        f = (1,) + self.filters + (1,)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = float(np.log(np.expm1(1 / scale / f[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((channels, f[i + 1], f[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, f[i + 1], 1) - 0.5))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, f[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))
        for name in ("_offset", "_quantized_cdf", "_cdf_length"):
            self.register_buffer(name, torch.IntTensor())
        self.likelihood_lower_bound = LowerBound(1e-9)

    def logits_cumulative(self, x):
        for i in range(len(self.filters) + 1):
            x = torch.matmul(F.softplus(self.matrices[i]), x) + self.biases[i]
            if i < len(self.filters):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    @torch.no_grad()
    def integer_pmfs(self) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """As CompressAI's update(): per channel, the pmf of round(z - median) over
        -minima..maxima. Returns (pmfs, offsets, medians)."""
        q = self.quantiles.detach().double()
        medians = q[:, 0, 1]
        minima = torch.clamp(torch.ceil(medians - q[:, 0, 0]), 0, Z_MAX_SYMBOL).long()
        maxima = torch.clamp(torch.ceil(q[:, 0, 2] - medians), 0, Z_MAX_SYMBOL).long()
        pmfs = []
        for c in range(q.shape[0]):
            samples = torch.arange(-int(minima[c]), int(maxima[c]) + 1, dtype=torch.float64) + medians[c]
            x = samples.reshape(1, 1, -1)
            lower = self._channel_logits(c, x - 0.5)
            upper = self._channel_logits(c, x + 0.5)
            sign = -torch.sign(lower + upper)
            pmfs.append(torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).reshape(-1).numpy())
        return pmfs, (-minima).numpy().astype(np.int32), medians.float().numpy()

    def _channel_logits(self, c: int, x):
        for i in range(len(self.filters) + 1):
            x = torch.matmul(F.softplus(self.matrices[i][c : c + 1].double()), x) + self.biases[i][c : c + 1].double()
            if i < len(self.filters):
                x = x + torch.tanh(self.factors[i][c : c + 1].double()) * torch.tanh(x)
        return x


class GaussianConditional(nn.Module):
    """Buffers only, so a CompressAI state dict loads; the scale table is what we use."""

    def __init__(self):
        super().__init__()
        for name in ("_offset", "_quantized_cdf", "_cdf_length"):
            self.register_buffer(name, torch.IntTensor())
        self.register_buffer("scale_table", torch.Tensor())
        self.register_buffer("scale_bound", torch.Tensor([0.11]))
        self.likelihood_lower_bound = LowerBound(1e-9)
        self.lower_bound_scale = LowerBound(0.11)


class HyperpriorModel(nn.Module):
    """bmshj2018-hyperprior (ScaleHyperprior) or mbt2018-mean (MeanScaleHyperprior)."""

    def __init__(self, arch: str, N: int, M: int):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r} (supported: {', '.join(ARCHS)})")
        self.arch, self.N, self.M = arch, N, M
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        if arch == "bmshj2018-hyperprior":
            self.h_a = nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.ReLU(), conv(N, N), nn.ReLU(),
                                     conv(N, N))
            self.h_s = nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(),
                                     conv(N, M, stride=1, kernel_size=3), nn.ReLU())
        else:
            self.h_a = nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(), conv(N, N),
                                     nn.LeakyReLU(), conv(N, N))
            self.h_s = nn.Sequential(deconv(N, M), nn.LeakyReLU(), deconv(M, M * 3 // 2), nn.LeakyReLU(),
                                     conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))
        self.gaussian_conditional = GaussianConditional()

    def hyper_analysis(self, y):
        return self.h_a(torch.abs(y) if self.arch == "bmshj2018-hyperprior" else y)

    def hyper_synthesis(self, z_hat):
        """-> (mean, scale), CompressAI's order for mbt2018-mean: scales first, then means."""
        p = self.h_s(z_hat)
        if self.arch == "bmshj2018-hyperprior":
            return torch.zeros_like(p), p
        scale, mean = p.chunk(2, 1)
        return mean, scale


# -- state dicts ---------------------------------------------------------------------
_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")


def normalise_state_dict(sd: dict) -> dict:
    """Unwrap {'state_dict': ...} / {'model': ...}, drop 'module.' prefixes, map the old
    EntropyBottleneck names (_matrix0, _bias0, _factor0) to the ParameterList ones."""
    for key in ("state_dict", "model"):
        if key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        k = k.removeprefix("module.")
        for old, new in (("._matrix", ".matrices."), ("._bias", ".biases."), ("._factor", ".factors.")):
            if k.startswith("entropy_bottleneck" + old):
                k = "entropy_bottleneck" + new + k[len("entropy_bottleneck" + old):]
        out[k] = v
    return out


def infer_arch(sd: dict) -> str:
    """h_s ends in conv(N, M) for bmshj2018-hyperprior, conv(3M/2, 2M) for mbt2018-mean."""
    sd = normalise_state_dict(sd)
    w, ga = sd.get("h_s.4.weight"), sd.get("g_a.6.weight")
    if w is None or ga is None:
        raise ValueError("state dict has no h_s.4/g_a.6 weights: not a bmshj2018-hyperprior / mbt2018-mean model")
    m = ga.shape[0]
    if w.shape[0] == m:
        return "bmshj2018-hyperprior"
    if w.shape[0] == 2 * m:
        return "mbt2018-mean"
    raise ValueError(f"h_s.4.weight has {w.shape[0]} outputs for M={m}: neither supported architecture")


def infer_sizes(sd: dict) -> tuple[int, int]:
    """(N, M) from the weight shapes: g_a.0 is conv(3, N), g_a.6 is conv(N, M)."""
    sd = normalise_state_dict(sd)
    try:
        return int(sd["g_a.0.weight"].shape[0]), int(sd["g_a.6.weight"].shape[0])
    except KeyError as exc:
        raise ValueError(f"state dict has no {exc.args[0]}: not a CompressAI hyperprior model") from exc


def load_model(sd: dict, arch: str | None = None, N: int | None = None, M: int | None = None) -> HyperpriorModel:
    sd = normalise_state_dict(sd)
    arch = arch or infer_arch(sd)
    n0, m0 = infer_sizes(sd)
    N, M = N or n0, M or m0
    if (N, M) != (n0, m0):
        raise ValueError(f"--N/--M {N}/{M} do not match the state dict's {n0}/{m0}")
    model = HyperpriorModel(arch, N, M)
    for key in list(sd):  # CompressAI's buffers are resized on load (update_registered_buffers)
        mod, _, name = key.rpartition(".")
        if name in _BUFFERS and mod in ("entropy_bottleneck", "gaussian_conditional"):
            getattr(model, mod).register_buffer(name, torch.empty_like(sd[key]))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k.rpartition(".")[2] not in _BUFFERS + ("target", "bound", "pedestal",
                                                                             "scale_bound")]
    if missing or unexpected:
        raise ValueError(f"state dict does not match {arch} N={N} M={M}: missing {missing[:6]}, "
                         f"unexpected {unexpected[:6]}")
    return model.eval()


def random_state_dict(arch: str, N: int, M: int, seed: int = 0, y_gain: float = 10.0, scale_bias: float = 1.0,
                      median_spread: float = 0.5) -> dict:
    """A randomly initialised model's state dict with CompressAI's key names and shapes
    (for tests), moved to a realistic operating point as tools/anchors/compressai_reference.py
    does: y_gain scales g_a's last layer so y is not all zeros, scale_bias lifts the
    predicted scales to ~1, medians are spread so the median path is exercised."""
    torch.manual_seed(seed)
    m = HyperpriorModel(arch, N, M)
    with torch.no_grad():
        m.g_a[6].weight.mul_(y_gain)
        m.g_a[6].bias.mul_(y_gain)
        m.h_s[4].bias[:M] += scale_bias
        m.entropy_bottleneck.quantiles[:, 0, 1] += (torch.rand(N) - 0.5) * 2 * median_spread
    return m.state_dict()


# -- export --------------------------------------------------------------------------
class _Analysis(nn.Module):
    def __init__(self, m: HyperpriorModel):
        super().__init__()
        self.m = m

    def forward(self, x, gain):
        y = self.m.g_a(x) * gain
        return y, self.m.hyper_analysis(y)


class _HyperSynthesis(nn.Module):
    def __init__(self, m: HyperpriorModel):
        super().__init__()
        self.m = m

    def forward(self, z_hat):
        return self.m.hyper_synthesis(z_hat)


class _Synthesis(nn.Module):
    def __init__(self, m: HyperpriorModel):
        super().__init__()
        self.m = m

    def forward(self, y_hat, inv_gain):
        return torch.clamp(self.m.g_s(y_hat * inv_gain), 0, 1)


def compressai_scale_table(model: HyperpriorModel) -> np.ndarray:
    t = model.gaussian_conditional.scale_table
    if t.numel() == 64:
        return t.detach().float().numpy()
    # CompressAI's get_scale_table(): computed the same way, in torch float32
    return torch.exp(torch.linspace(math.log(0.11), math.log(256), 64)).numpy()


def gaussian_cdf_table(scales: np.ndarray):
    """Our 16-bit Gaussian CDF rows for these scales, built exactly as the shipped table."""
    from zvc69_rt.entropy.gaussian import build_gaussian_table

    return build_gaussian_table(scales)


def bundle_tables(model: HyperpriorModel) -> dict[str, np.ndarray]:
    from zvc69_rt.entropy import CdfTable

    pmfs, offsets, medians = model.entropy_bottleneck.integer_pmfs()
    z = CdfTable.from_pmfs(pmfs, offsets)
    scales = compressai_scale_table(model).astype(np.float32)
    y = gaussian_cdf_table(scales)
    ones = np.ones((LEVELS, model.M), dtype=np.float32)
    return {
        "gains": ones, "inv_gains": ones,
        "z_cdf": z.cdf, "z_cdf_length": z.cdf_length, "z_offset": z.offset, "z_medians": medians,
        "scale_table": scales, "y_cdf": y.cdf, "y_cdf_length": y.cdf_length, "y_offset": y.offset,
    }


def import_state_dict(sd: dict, out: Path, arch: str | None = None, N: int | None = None, M: int | None = None,
                      precisions=("fp32", "fp16"), source: dict | None = None) -> dict:
    from onnx_export.export import _export, _to_fp16
    from zvc69_rt.models.bundle import write_manifest

    model = load_model(sd, arch, N, M)
    N, M = model.N, model.M
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.onnx"):
        old.unlink()
    H = W = 128
    dyn = {0: "batch", 2: "height", 3: "width"}
    graphs = {
        "analysis": (_Analysis(model), (torch.rand(1, 3, H, W), torch.ones(1, M, 1, 1)),
                     ["x", "gain"], ["y", "z"], {"x": dyn, "y": dyn, "z": dyn}),
        "hyper_synthesis": (_HyperSynthesis(model), (torch.zeros(1, N, H // 64, W // 64),),
                            ["z_hat"], ["mean", "scale"], {"z_hat": dyn, "mean": dyn, "scale": dyn}),
        "synthesis": (_Synthesis(model), (torch.zeros(1, M, H // 16, W // 16), torch.ones(1, M, 1, 1)),
                      ["y_hat", "inv_gain"], ["x_hat"], {"y_hat": dyn, "x_hat": dyn}),
    }
    files: dict[str, dict[str, str]] = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        for name, (mod, args, ins, outs, dyn_axes) in graphs.items():
            fp32 = out / f"{name}.fp32.onnx"
            _export(mod.eval(), args, fp32, ins, outs, dyn_axes)
            files[name] = {"fp32": fp32.name}
            if "fp16" in precisions:
                with warnings.catch_warnings():  # "float32 number ... will be truncated" for tiny weights
                    warnings.simplefilter("ignore", UserWarning)
                    _to_fp16(fp32, out / f"{name}.fp16.onnx")
                files[name]["fp16"] = f"{name}.fp16.onnx"
    np.savez(out / "tables.npz", **bundle_tables(model))
    manifest = {
        "format": "zvc69-bundle/1",
        "kind": "intra",
        "origin": f"compressai:{model.arch}",
        "latent_channels": M,
        "hyperprior_channels": N,
        "levels": LEVELS,
        "alignment": 64,
        "scale_path": "float",
        "single_rate": True,
        "graphs": files,
        "tables": "tables.npz",
        "source": dict(source or {}, arch=model.arch, N=N, M=M,
                       note="CompressAI model: single-rate (quality is ignored), float scale path "
                            "(streams not INTEGERIZED)"),
    }
    return write_manifest(out, manifest)


def load_checkpoint(path: Path) -> dict:
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def import_checkpoint(path: Path, out: Path, arch: str | None = None, N: int | None = None, M: int | None = None,
                      precisions=("fp32", "fp16")) -> dict:
    return import_state_dict(load_checkpoint(path), out, arch, N, M, precisions, source={"checkpoint": str(path)})


def compare_with_reference(bundle_dir: Path, ref: dict, precision: str = "fp32") -> dict:
    """Code ref["x"] (uint8 HWC) as one I-frame with the imported bundle and compare with
    CompressAI's outputs from tools/anchors/compressai_reference.py (no torch needed here)."""
    from zvc69_rt.codec.intra import IntraCodec
    from zvc69_rt.codec.runtime import load_runners
    from zvc69_rt.models.bundle import ModelBundle

    bundle = ModelBundle.load(bundle_dir)
    runners, _ = load_runners(bundle, "onnxruntime", precision)
    codec = IntraCodec(bundle, runners, num_slices=1)
    img = np.asarray(ref["x"])
    x = np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1) / 255)
    if x.shape[1] % 64 or x.shape[2] % 64:
        raise ValueError("reference picture must be a multiple of 64 in both dimensions")
    lat = codec.analyse(x, 0)
    data, symbols, mean = codec.code(lat)
    y_hat = symbols + mean
    x_dec = codec.decompress(data, symbols.shape[1:], 0)
    x_same = codec.synthesise(np.zeros_like(symbols), np.asarray(ref["y_hat"], np.float32), 0)
    ref_x = np.asarray(ref["x_hat"])
    ref_bytes = int(ref["y_bytes"]) + int(ref["z_bytes"])
    # Compare the coded symbols, not the framing: CompressAI's strings have no container and
    # each ends with its Rans64 state (8 bytes); ours have ZVCP headers, and each rANS stream
    # (a slice, or a chain of z and y) ends with two 32-bit states (8 bytes).
    zvcp_headers = _framing_bytes(data)
    ref_framing = 8 * 2
    sym_ref = np.asarray(ref["y_hat"]) - lat.mean
    return {
        "max_abs_synthesis_same_y_hat": float(np.abs(x_same - ref_x).max()),
        "max_abs_full_decode": float(np.abs(x_dec - ref_x).max()),
        "max_abs_y_hat": float(np.abs(y_hat - np.asarray(ref["y_hat"])).max()),
        "y_symbols_differing": int((np.rint(sym_ref) != symbols).sum()),
        "y_symbols": int(symbols.size),
        "bytes": len(data),
        "bytes_without_zvcp_headers": len(data) - zvcp_headers,
        "compressai_bytes": ref_bytes,
        "bytes_rel_diff": (len(data) - ref_bytes) / ref_bytes,
        "bytes_rel_diff_without_headers": (len(data) - zvcp_headers - (ref_bytes - ref_framing))
        / (ref_bytes - ref_framing),
    }


def _framing_bytes(data: bytes) -> int:
    """Bytes of ZVCP headers and rANS state flushes (8 a stream) in concatenated payloads."""
    from zvc69_rt.entropy import rans, zvcp

    pos = framing = 0
    while pos < len(data):
        if zvcp.is_chain(data, pos):
            _, _, size, total = zvcp.parse_chain(data, pos)
            framing += total - size + rans.STATE_BYTES
        else:
            *_, sizes, total = zvcp.parse(data, None, pos)
            framing += total - int(sizes.sum()) + rans.STATE_BYTES * len(sizes)
        pos += total
    return framing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--arch", choices=ARCHS, default=None, help="default: inferred from the state dict")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--N", type=int, default=None)
    ap.add_argument("--M", type=int, default=None)
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--verify", type=Path, default=None,
                    help="after importing, compare with this compressai_reference.py .npz")
    args = ap.parse_args(argv)
    m = import_checkpoint(args.checkpoint, args.out, args.arch, args.N, args.M, tuple(args.precisions.split(",")))
    print(json.dumps({"hash": m["hash"], "out": str(args.out), "arch": m["source"]["arch"]}))
    if args.verify:
        with np.load(args.verify) as ref:
            print(json.dumps(compare_with_reference(args.out, dict(ref)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
