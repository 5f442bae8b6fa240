"""Model bundle: a folder of ONNX graphs and tables described by manifest.json.

The bundle hash (SHA-256 over the manifest body and every file it lists) identifies the
model; its first 4 bytes go into every stream header, and a decoder with a different
bundle refuses the stream (ModelMismatchError) instead of producing garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from zvc69_rt.errors import InputError, ModelMismatchError

DEFAULT_BUNDLE = Path(__file__).with_name("bundles") / "default"
PRECISIONS = ("fp32", "fp16", "int8")


def _listed_files(manifest: dict) -> list[str]:
    names = {manifest["tables"]}
    for variants in manifest["graphs"].values():
        names.update(variants.values())
    return sorted(names)


def compute_hash(folder: Path, manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k not in ("hash", "source")}
    h = hashlib.sha256(json.dumps(body, sort_keys=True).encode())
    for name in _listed_files(manifest):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest()


def write_manifest(folder: Path, manifest: dict) -> dict:
    manifest = dict(manifest)
    manifest["hash"] = compute_hash(folder, manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


@dataclass
class ModelBundle:
    folder: Path
    manifest: dict
    tables: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def load(cls, folder: str | Path | None = None, verify: bool = True) -> ModelBundle:
        folder = Path(folder) if folder else DEFAULT_BUNDLE
        mpath = folder / "manifest.json"
        if not mpath.is_file():
            raise InputError(f"model bundle {folder}: no manifest.json (pass --model FOLDER of an exported bundle)")
        manifest = json.loads(mpath.read_text())
        if verify:
            actual = compute_hash(folder, manifest)
            if actual != manifest.get("hash"):
                raise ModelMismatchError(
                    f"model bundle {folder}: files do not match the manifest hash (re-export or re-checkout it)"
                )
        with np.load(folder / manifest["tables"]) as npz:
            tables = {k: npz[k] for k in npz.files}
        return cls(folder, manifest, tables)

    @property
    def hash(self) -> str:
        return self.manifest["hash"]

    @property
    def hash_prefix(self) -> bytes:
        """The 4 bytes stored in the file header's model_hash field."""
        return bytes.fromhex(self.hash)[:4]

    @property
    def latent_channels(self) -> int:
        return int(self.manifest["latent_channels"])

    @property
    def hyperprior_channels(self) -> int:
        return int(self.manifest["hyperprior_channels"])

    @property
    def transform_channels(self) -> int:
        """Width of the analysis/synthesis transforms (wider than the hyperprior's since the
        session-3 widening option; bundles before it have none: the hyperprior's)."""
        return int(self.manifest.get("transform_channels", self.hyperprior_channels))

    @property
    def levels(self) -> int:
        return int(self.manifest["levels"])

    @property
    def scale_path(self) -> str:
        """How scale indexes are computed: "integer" (our bundles: the exact integer head,
        INTEGERIZED streams) or "float" (imported bundles: hyper_synthesis outputs the
        scale and the host indexes it in float, docs/COMPRESSAI.md)."""
        return str(self.manifest.get("scale_path", "integer"))

    @property
    def integerized(self) -> bool:
        return self.scale_path == "integer"

    @property
    def has_checkerboard(self) -> bool:
        """Context tables for I-frame latents (codec/checkerboard.py); integer scale path only."""
        return self.integerized and "ctx_lut" in self.tables

    @property
    def single_rate(self) -> bool:
        """True for bundles with one rate point (e.g. imported CompressAI models): quality is ignored."""
        return bool(self.manifest.get("single_rate", False))

    @property
    def alignment(self) -> int:
        return int(self.manifest.get("alignment", 64))

    def graph_path(self, name: str, precision: str = "fp32") -> Path:
        variants = self.manifest["graphs"].get(name)
        if variants is None:
            raise InputError(f"model bundle {self.folder} has no graph {name!r}")
        if precision not in variants:
            raise InputError(
                f"model bundle {self.folder} has no {precision} variant of {name} (has {sorted(variants)})"
            )
        return self.folder / variants[precision]

    def check_stream(self, model_hash: bytes) -> None:
        if model_hash != self.hash_prefix:
            raise ModelMismatchError(
                f"stream was encoded with model {model_hash.hex()}, this decoder has {self.hash_prefix.hex()} "
                f"({self.folder}); decode with --model pointing at the bundle the stream was made with"
            )


@cache
def default_bundle_hash() -> str:
    return json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())["hash"][:16]
