"""I-frame coding with the mean-scale hyperprior: one padded RGB picture <-> frame data.

    compress:   x --analysis--> y, z --round--> z_hat --hyper_synthesis--> mean
                z_hat --IntegerScaleHead--> scale index;  sym = round(y - mean)
                data = ZVCP(z_hat, factorized CDFs) || ZVCP(sym, Gaussian CDFs[index])
    decompress: data -> z_hat -> (mean, index) -> sym -> y_hat = sym + mean --synthesis--> x_hat

Split into analyse/code (encoder) and parse/synthesise (decoder) so the pipelined
scheduler can run the backend stages and the CPU entropy stages on different workers.

With a bundle that has checkerboard tables (the CHECKERBOARD stream flag), the y data is
two payloads, anchors then non-anchors, and the non-anchors' mean and scale index come
from the decoded anchors (codec/checkerboard.py); quantise() gives the symbols and mean
the decoder will see either way.

Imported bundles (docs/COMPRESSAI.md) differ in two optional ways, both off for our own
bundles, whose streams are unchanged:
  * manifest "scale_path": "float": hyper_synthesis outputs mean and scale, and the
    host picks the scale index in float (CompressAI's rule) from the bundle's own
    Gaussian tables (scale_table, y_cdf...) instead of the integer head;
  * tables "z_medians": z is coded as round(z - median), z_hat = symbols + median.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from zvc69_rt import entropy
from zvc69_rt.codec import checkerboard, hyper_search
from zvc69_rt.codec.checkerboard import CheckerboardContext
from zvc69_rt.errors import EntropyDecodeError, ZVC69FormatError
from zvc69_rt.models.bundle import ModelBundle
from zvc69_rt.models.scale_head import IntegerScaleHead


def interpolate_levels(table: np.ndarray, quality: int, levels: int) -> np.ndarray:
    """Row of a per-level table (gains, lambdas) for quality 0..100: exponential interpolation
    between the two nearest levels, the rule the intra and P models' quality mapping share."""
    pos = quality / 100 * (levels - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, levels - 1)
    t = pos - lo
    return np.exp(np.log(table[lo]) * (1 - t) + np.log(table[hi]) * t)


#: The I-frame hyper-latent search (IntraCodec.search): every position at once (stride 1),
#: three passes; measured on the training clips' first frames (ideal bits at qualities
#: 14/43/72, 640 px): -2.0 to -7.3 %, 3-4 s a frame on this 2-core host.
SEARCH_STRIDE, SEARCH_PASSES = 1, 3


@dataclass
class IntraLatents:
    """Backend outputs for one picture, before entropy coding."""

    y: np.ndarray  # float32 [M, h, w] (gained)
    z_hat: np.ndarray  # int32 [N, h/4, w/4] (the coded symbols: z_hat - median with z_medians)
    mean: np.ndarray  # float32 [M, h, w]
    scale_index: np.ndarray | None = None  # uint8 [M, h, w], float scale path only


class IntraCodec:
    def __init__(self, bundle: ModelBundle, runners: dict, num_slices: int | None = None,
                 checkerboard: bool | None = None):
        """checkerboard: code I-frames with the bundle's checkerboard context (None: whenever
        the bundle has one; a decoder passes the stream's CHECKERBOARD flag)."""
        self.bundle = bundle
        self.analysis = runners["analysis"]
        self.hyper_synthesis = runners["hyper_synthesis"]
        self.synthesis = runners["synthesis"]
        # encoder-only, optional: the I-frame cost's gradient (codec/latent_refine.py)
        self.gradient = runners.get("synthesis_gradient")
        t = bundle.tables
        self.gains = t["gains"].astype(np.float64)
        self.inv_gains = t["inv_gains"].astype(np.float64)
        self.z_table = entropy.CdfTable(
            cdf=t["z_cdf"], cdf_length=t["z_cdf_length"], offset=t["z_offset"]
        )
        self.float_scale = bundle.scale_path == "float"
        self.scale_head = None if self.float_scale else IntegerScaleHead.from_tables(t)
        self.z_medians = t["z_medians"].astype(np.float32).reshape(-1, 1, 1) if "z_medians" in t else None
        self.y_table = entropy.gaussian_table()  # unless the bundle ships its own (imported ones)
        if "y_cdf" in t:
            self.y_table = entropy.CdfTable(cdf=t["y_cdf"], cdf_length=t["y_cdf_length"], offset=t["y_offset"])
            self.scale_table = t["scale_table"].astype(np.float32)
        elif self.float_scale:
            self.scale_table = entropy.SCALE_TABLE
        # the training lambdas, for encoder RD choices; bundles before session 10 carry only the
        # P model's (trained with the same LAMBDAS), imported ones none
        lambdas = t["lambdas"] if "lambdas" in t else t.get("p_lambdas")
        self.lambdas = None if lambdas is None else np.asarray(lambdas, dtype=np.float64)
        self.num_slices = num_slices
        self.M = bundle.latent_channels
        self.N = bundle.hyperprior_channels
        # fitted for the integer scale head's indexes only (imported float-scale bundles have none)
        context = CheckerboardContext.from_tables(t, self.M) if bundle.has_checkerboard else None
        if checkerboard and context is None:
            raise ZVC69FormatError(
                "the stream uses the checkerboard context (CHECKERBOARD flag) but the model bundle has no "
                "context tables; decode with --model pointing at the bundle the stream was made with"
            )
        self.context = context if checkerboard is not False else None

    # -- quality -------------------------------------------------------------------
    def gain_vectors(self, quality: int) -> tuple[np.ndarray, np.ndarray]:
        """Gain/inverse gain for quality 0..100: exponential interpolation between levels."""
        g = interpolate_levels(self.gains, quality, self.bundle.levels)
        ig = interpolate_levels(self.inv_gains, quality, self.bundle.levels)
        return g.astype(np.float32).reshape(1, -1, 1, 1), ig.astype(np.float32).reshape(1, -1, 1, 1)

    def lagrangian(self, quality: int) -> float | None:
        """lambda*255^2 of the training loss at this quality (None: the bundle has no lambdas),
        interpolated like the gains; the same values PFrameCodec.lagrangian gives."""
        if self.lambdas is None or len(self.lambdas) != self.bundle.levels:
            return None
        return float(interpolate_levels(self.lambdas, quality, self.bundle.levels)) * 255**2

    # -- encoder -------------------------------------------------------------------
    def analyse(self, x: np.ndarray, quality: int) -> IntraLatents:
        """Backend half of the encoder: x float32 [3, H, W] (H, W multiples of 64)."""
        gain, _ = self.gain_vectors(quality)
        out = self.analysis.run({"x": x[None].astype(np.float32, copy=False), "gain": gain})
        z = out["z"][0]
        if self.z_medians is None:
            z_hat = np.rint(z).astype(np.int32)
        else:
            z_hat = np.rint(z - self.z_medians).astype(np.int32)
        mean, index = self._hyper(z_hat)
        return IntraLatents(y=out["y"][0], z_hat=z_hat, mean=mean, scale_index=index)

    def _hyper(self, z_sym: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Coded z symbols -> (mean, float-path scale index or None)."""
        z_in = z_sym.astype(np.float32)
        if self.z_medians is not None:
            z_in = z_in + self.z_medians
        out = self.hyper_synthesis.run({"z_hat": z_in[None]})
        if not self.float_scale:
            return out["mean"][0], None
        return out["mean"][0], self.float_scale_index(out["scale"][0])

    def float_scale_index(self, scale: np.ndarray) -> np.ndarray:
        """CompressAI's GaussianConditional.build_indexes: the first table scale >= s
        (scales below the first entry take index 0, above the last the top index)."""
        return entropy.scale_to_index(scale, self.scale_table)

    def _scale_index(self, lat: IntraLatents) -> np.ndarray:
        return lat.scale_index if lat.scale_index is not None else self.scale_head(lat.z_hat)

    def quantise(self, lat: IntraLatents, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(symbols int32, mean float32) as the decoder will see them: y_hat = symbols + mean."""
        if self.context is None:
            return np.rint(lat.y - lat.mean).astype(np.int32), lat.mean
        sym_a, sym_n, mean_a, mean_n, _ = self._two_pass(lat, self._scale_index(lat) if index is None else index)
        return checkerboard.merge(sym_a, sym_n), checkerboard.merge(mean_a, mean_n)

    def _two_pass(self, lat: IntraLatents, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """Checkerboard quantisation: anchor and non-anchor symbols and means, and the
        non-anchors' scale index (each [M, h, w/2])."""
        y_a, y_n = checkerboard.split(lat.y)
        mean_a, _ = checkerboard.split(lat.mean)
        sym_a = np.rint(y_a - mean_a).astype(np.int32)
        mean_n, index_n = self.context.non_anchor_parameters(sym_a, lat.mean, index)
        return sym_a, np.rint(y_n - mean_n).astype(np.int32), mean_a, mean_n, index_n

    def search(self, lat: IntraLatents) -> IntraLatents:
        """lat with the hyper latent codec/hyper_search.py finds (mean and scale index to
        match), or lat itself when the search saves nothing. Every position at once, three
        passes (SEARCH_STRIDE, SEARCH_PASSES): the intra hyper runs 64 channels x 192
        latents per trial, too slow for the finer classes P-frames use."""
        z, before, after = hyper_search.search_z(lat.z_hat, self._y_rate(lat.y), self.z_table,
                                                 passes=SEARCH_PASSES, stride=SEARCH_STRIDE)
        if after >= before:
            return lat
        mean, index = self._hyper(z)
        return dataclasses.replace(lat, z_hat=z, mean=mean, scale_index=index)

    def _y_rate(self, y: np.ndarray) -> hyper_search.YRate:
        """Bits of y per position for a batch of z symbols, as code() would spend them."""
        def rate(z_batch: np.ndarray) -> np.ndarray:
            hyper = [self._hyper(z) for z in z_batch]
            integer = None if self.float_scale else self.scale_head(z_batch)
            out = []
            for b, (mean, float_index) in enumerate(hyper):
                index = float_index if integer is None else integer[b]
                if self.context is None:
                    bits = self.y_table.ideal_bits_map(np.rint(y - mean), index)
                else:
                    sym_a, sym_n, _, _, index_n = self._two_pass(IntraLatents(y, z_batch[b], mean), index)
                    bits = checkerboard.merge(self.y_table.ideal_bits_map(sym_a, checkerboard.split(index)[0]),
                                              self.y_table.ideal_bits_map(sym_n, index_n))
                out.append(bits.sum(0))
            return np.stack(out)

        return rate

    def code(self, lat: IntraLatents) -> tuple[bytes, np.ndarray, np.ndarray]:
        """CPU half of the encoder: entropy code. Returns (frame data, symbols, mean), the
        last two as quantise() gives them (what synthesise needs for the decoder's picture)."""
        index = self._scale_index(lat)
        if self.context is None:
            symbols, mean = self.quantise(lat, index)
            y_parts = [(symbols, index)]
        else:
            sym_a, sym_n, mean_a, mean_n, index_n = self._two_pass(lat, index)
            y_parts = [(sym_a, checkerboard.split(index)[0]), (sym_n, index_n)]
            symbols, mean = checkerboard.merge(sym_a, sym_n), checkerboard.merge(mean_a, mean_n)
        # one stream (a chain: one header, one flush) where y is one slice anyway
        data = entropy.encode_parts([(lat.z_hat, None, self.z_table)] + [(s, i, self.y_table) for s, i in y_parts],
                                    self.num_slices, chain=entropy.one_slice(lat.y.shape, self.num_slices))
        return data, symbols, mean

    # -- decoder -------------------------------------------------------------------
    def parse(self, data: bytes | memoryview, latent_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entropy-decode frame data -> (z_hat, symbols, mean). Raises on malformed data."""
        h, w = latent_hw
        if h % 4 or w % 4 or h <= 0 or w <= 0:
            raise ZVC69FormatError(f"I-frame latent {h}x{w} is not a positive multiple of 4")
        try:
            return self._parse_parts(entropy.PartsReader(data), h, w)
        except EntropyDecodeError as exc:
            raise EntropyDecodeError(f"I-frame payload: {exc}") from exc

    def _parse_parts(self, parts: entropy.PartsReader, h: int, w: int) -> tuple[np.ndarray, ...]:
        """z and the y parts, from one chain or one payload each."""
        z_hat = parts.decode(self.z_table, (self.N, h // 4, w // 4))
        if self.float_scale:
            mean, index = self._hyper(z_hat)
            symbols = parts.decode(self.y_table, index.shape, index)
        elif self.context is None:
            index = self.scale_head(z_hat)
            symbols = parts.decode(self.y_table, index.shape, index)
            mean, _ = self._hyper(z_hat)
        else:
            index = self.scale_head(z_hat)
            index_a, _ = checkerboard.split(index)
            sym_a = parts.decode(self.y_table, index_a.shape, index_a)
            mean, _ = self._hyper(z_hat)  # the non-anchors' scale needs only integers, their mean this
            mean_a, _ = checkerboard.split(mean)
            mean_n, index_n = self.context.non_anchor_parameters(sym_a, mean, index)
            sym_n = parts.decode(self.y_table, index_n.shape, index_n)
            symbols, mean = checkerboard.merge(sym_a, sym_n), checkerboard.merge(mean_a, mean_n)
        parts.finish()
        return z_hat, symbols, mean

    def synthesise(self, symbols: np.ndarray, mean: np.ndarray, quality: int) -> np.ndarray:
        """y_hat -> reconstructed float32 [3, H, W] in [0, 1]."""
        _, inv_gain = self.gain_vectors(quality)
        y_hat = (symbols.astype(np.float32) + mean)[None]
        return self.synthesis.run({"y_hat": y_hat, "inv_gain": inv_gain})["x_hat"][0]

    def decompress(self, data: bytes | memoryview, latent_hw: tuple[int, int], quality: int) -> np.ndarray:
        _, symbols, mean = self.parse(data, latent_hw)
        return self.synthesise(symbols, mean, quality)
