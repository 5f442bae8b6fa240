"""Reference outputs from CompressAI itself, to verify `zvc69 import-compressai`.

Runs in a separate venv with CompressAI (it is never a dependency of ours):

    python -m venv /work/anchors-venv
    /work/anchors-venv/bin/pip install torch==2.13.0 compressai==1.2.8 "numpy<2"
    # if the installed torchvision does not import: replace it with an empty package
    # torchvision/{__init__,transforms}.py (compressai only imports torchvision.transforms)
    /work/anchors-venv/bin/python tools/anchors/compressai_reference.py --image pic.npy --out /tmp/ref

For each architecture it builds a seeded CompressAI model (random init: no pretrained
weights are reachable offline), moves it to a realistic operating point the same way
onnx_export.compressai_import.random_state_dict does (g_a's last layer x y_gain, h_s's
scale bias + scale_bias, EntropyBottleneck medians spread), calls update(), saves the
state dict (ARCH.pth) and writes ARCH.npz with CompressAI's compress/decompress results:
x (the input, uint8 HWC), x_hat, y_hat, z_hat, y_bytes, z_bytes (lengths of its strings).
Then tests/test_compressai_import.py / docs/COMPRESSAI.md compare our codec with them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean")


def build(arch: str, N: int, M: int, seed: int, y_gain: float, scale_bias: float, median_spread: float):
    from compressai.models import MeanScaleHyperprior, ScaleHyperprior

    torch.manual_seed(seed)
    model = (ScaleHyperprior if arch == "bmshj2018-hyperprior" else MeanScaleHyperprior)(N, M)
    with torch.no_grad():
        model.g_a[6].weight.mul_(y_gain)
        model.g_a[6].bias.mul_(y_gain)
        model.h_s[4].bias[:M] += scale_bias  # the scale channels (mbt2018-mean: the first M of 2M)
        model.entropy_bottleneck.quantiles[:, 0, 1] += (torch.rand(N) - 0.5) * 2 * median_spread
    model.update(force=True)
    return model.eval()


def load_image(path: Path, size: int | None) -> np.ndarray:
    if path.suffix == ".npy":
        img = np.load(path)
    else:
        from PIL import Image

        img = np.asarray(Image.open(path).convert("RGB"))
    if size:
        img = img[:size, :size]
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


@torch.no_grad()
def reference(model, img: np.ndarray) -> dict[str, np.ndarray]:
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()
    enc = model.compress(x)
    y_strings, z_strings = enc["strings"]
    x_hat = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    # decompress's intermediate y_hat / z_hat, the same way decompress computes them
    z_hat = model.entropy_bottleneck.decompress(z_strings, enc["shape"])
    p = model.h_s(z_hat)
    if p.shape[1] == 2 * model.M:
        scales, means = p.chunk(2, 1)
    else:
        scales, means = p, None
    idx = model.gaussian_conditional.build_indexes(scales)
    y_hat = model.gaussian_conditional.decompress(y_strings, idx, z_hat.dtype, means)
    return {
        "x": img, "x_hat": x_hat[0].numpy(), "y_hat": y_hat[0].numpy(), "z_hat": z_hat[0].numpy(),
        "y_bytes": np.array(sum(len(s) for s in y_strings)), "z_bytes": np.array(sum(len(s) for s in z_strings)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, required=True, help=".npy (uint8 HWC RGB) or a picture file")
    ap.add_argument("--size", type=int, default=None, help="crop to the top-left SIZE x SIZE")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--y-gain", type=float, default=10.0)
    ap.add_argument("--scale-bias", type=float, default=1.0)
    ap.add_argument("--median-spread", type=float, default=0.5)
    ap.add_argument("--half-weights", action="store_true", help="store the state dict as float16 (small fixtures)")
    args = ap.parse_args(argv)
    import compressai

    args.out.mkdir(parents=True, exist_ok=True)
    img = load_image(args.image, args.size)
    summary = {"compressai": compressai.__version__, "torch": torch.__version__, "shape": list(img.shape)}
    for arch in args.archs.split(","):
        model = build(arch, args.N, args.M, args.seed, args.y_gain, args.scale_bias, args.median_spread)
        if args.half_weights:  # round the weights to fp16 values, keep fp32 tensors (exact either side)
            with torch.no_grad():
                for prm in model.parameters():
                    prm.copy_(prm.half().float())
            model.update(force=True)
        torch.save(model.state_dict(), args.out / f"{arch}.pth")
        ref = reference(model, img)
        np.savez_compressed(args.out / f"{arch}.npz", **ref)
        summary[arch] = {"N": args.N, "M": args.M, "y_bytes": int(ref["y_bytes"]), "z_bytes": int(ref["z_bytes"])}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
