"""I-frame coding with the mean-scale hyperprior: one padded RGB picture <-> frame data.

    compress:   x --analysis--> y, z --round--> z_hat --hyper_synthesis--> mean
                z_hat --IntegerScaleHead--> scale index;  sym = round(y - mean)
                data = ZVCP(z_hat, factorized CDFs) || ZVCP(sym, Gaussian CDFs[index])
    decompress: data -> z_hat -> (mean, index) -> sym -> y_hat = sym + mean --synthesis--> x_hat

Split into analyse/code (encoder) and parse/synthesise (decoder) so the pipelined
scheduler can run the backend stages and the CPU entropy stages on different workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zvc69_rt import entropy
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError
from zvc69_rt.models.bundle import ModelBundle
from zvc69_rt.models.scale_head import IntegerScaleHead


@dataclass
class IntraLatents:
    """Backend outputs for one picture, before entropy coding."""

    y: np.ndarray  # float32 [M, h, w] (gained)
    z_hat: np.ndarray  # int32 [N, h/4, w/4]
    mean: np.ndarray  # float32 [M, h, w]


class IntraCodec:
    def __init__(self, bundle: ModelBundle, runners: dict, num_slices: int | None = None):
        self.bundle = bundle
        self.analysis = runners["analysis"]
        self.hyper_synthesis = runners["hyper_synthesis"]
        self.synthesis = runners["synthesis"]
        t = bundle.tables
        self.gains = t["gains"].astype(np.float64)
        self.inv_gains = t["inv_gains"].astype(np.float64)
        self.z_table = entropy.CdfTable(
            cdf=t["z_cdf"], cdf_length=t["z_cdf_length"], offset=t["z_offset"]
        )
        self.scale_head = IntegerScaleHead.from_tables(t)
        self.num_slices = num_slices
        self.M = bundle.latent_channels
        self.N = bundle.hyperprior_channels

    # -- quality -------------------------------------------------------------------
    def gain_vectors(self, quality: int) -> tuple[np.ndarray, np.ndarray]:
        """Gain/inverse gain for quality 0..100: exponential interpolation between levels."""
        pos = quality / 100 * (self.bundle.levels - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, self.bundle.levels - 1)
        t = pos - lo
        g = np.exp(np.log(self.gains[lo]) * (1 - t) + np.log(self.gains[hi]) * t)
        ig = np.exp(np.log(self.inv_gains[lo]) * (1 - t) + np.log(self.inv_gains[hi]) * t)
        return g.astype(np.float32).reshape(1, -1, 1, 1), ig.astype(np.float32).reshape(1, -1, 1, 1)

    # -- encoder -------------------------------------------------------------------
    def analyse(self, x: np.ndarray, quality: int) -> IntraLatents:
        """Backend half of the encoder: x float32 [3, H, W] (H, W multiples of 64)."""
        gain, _ = self.gain_vectors(quality)
        out = self.analysis.run({"x": x[None].astype(np.float32, copy=False), "gain": gain})
        z_hat = np.rint(out["z"][0]).astype(np.int32)
        mean = self.hyper_synthesis.run({"z_hat": z_hat[None].astype(np.float32)})["mean"][0]
        return IntraLatents(y=out["y"][0], z_hat=z_hat, mean=mean)

    def code(self, lat: IntraLatents) -> tuple[bytes, np.ndarray]:
        """CPU half of the encoder: entropy code. Returns (frame data, symbols)."""
        index = self.scale_head(lat.z_hat)
        symbols = np.rint(lat.y - lat.mean).astype(np.int32)
        zdata = entropy.encode_factorized(lat.z_hat, self.z_table, num_slices=self.num_slices)
        ydata = entropy.encode_gaussian(symbols, index, num_slices=self.num_slices)
        return zdata + ydata, symbols

    # -- decoder -------------------------------------------------------------------
    def parse(self, data: bytes | memoryview, latent_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entropy-decode frame data -> (z_hat, symbols, mean). Raises on malformed data."""
        h, w = latent_hw
        if h % 4 or w % 4 or h <= 0 or w <= 0:
            raise ZVC69FormatError(f"I-frame latent {h}x{w} is not a positive multiple of 4")
        view = memoryview(data)
        try:
            zlen = entropy.payload_size(view, 0)
        except EntropyDecodeError as exc:
            raise EntropyDecodeError(f"hyperprior payload: {exc}") from exc
        z_hat = entropy.decode_factorized(view[:zlen], self.z_table, (self.N, h // 4, w // 4))
        ylen = entropy.payload_size(view, zlen)
        if zlen + ylen != len(view):
            raise EntropyDecodeError(
                f"I-frame data is {len(view)} bytes but its payloads account for {zlen + ylen}"
            )
        index = self.scale_head(z_hat)
        symbols = entropy.decode_gaussian(view[zlen:], index)
        mean = self.hyper_synthesis.run({"z_hat": z_hat[None].astype(np.float32)})["mean"][0]
        return z_hat, symbols, mean

    def synthesise(self, symbols: np.ndarray, mean: np.ndarray, quality: int) -> np.ndarray:
        """y_hat -> reconstructed float32 [3, H, W] in [0, 1]."""
        _, inv_gain = self.gain_vectors(quality)
        y_hat = (symbols.astype(np.float32) + mean)[None]
        return self.synthesis.run({"y_hat": y_hat, "inv_gain": inv_gain})["x_hat"][0]

    def decompress(self, data: bytes | memoryview, latent_hw: tuple[int, int], quality: int) -> np.ndarray:
        _, symbols, mean = self.parse(data, latent_hw)
        return self.synthesise(symbols, mean, quality)
