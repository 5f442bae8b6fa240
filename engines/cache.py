"""Engine cache: a TensorRT plan is valid only for the TensorRT version and GPU that
built it, so every plan is stored under a key over everything that decides it, with a
JSON sidecar repeating the key's fields and the plan's SHA-256. On lookup, a missing,
truncated, foreign (other GPU / TensorRT) or stale (other graph bytes, profile) plan is
rebuilt, never deserialised; plans of the same graph/precision/profile with another key
are removed when the new one is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zvc69_rt.engines.builder import build_plan
from zvc69_rt.engines.profiles import Profile, input_shapes, onnx_inputs

from zvc69_rt.errors import InputError, ZVC69Error

CACHE_FORMAT = 1
DEFAULT_WORKSPACE = 2 << 30


class EngineBuildError(ZVC69Error):
    """TensorRT could not parse or build a graph (the message carries the parser's errors)."""


def default_cache_dir() -> Path:
    env = os.environ.get("ZVC69_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zvc69" / "engines"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph to compile, with what the key and the profile need to know."""

    path: Path
    name: str  # analysis, synthesis, ...
    precision: str  # fp32 | fp16 | int8 (already in the graph: Cast/QDQ nodes)
    bundle_hash: str = ""
    alignment: int = 64
    strides: dict = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: Path, precision: str | None = None) -> GraphSpec:
        """From a bundle file name such as ``synthesis.fp16.onnx``; reads the sibling
        manifest.json (bundle hash, alignment, input strides) when there is one."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"graph {path}: no such file")
        parts = path.name.split(".")
        name = parts[0]
        if precision is None:
            precision = parts[1] if len(parts) >= 3 and parts[1] in ("fp32", "fp16", "int8") else "fp32"
        manifest = {}
        mpath = path.parent / "manifest.json"
        if mpath.is_file():
            try:
                manifest = json.loads(mpath.read_text())
            except ValueError as exc:
                raise InputError(f"{mpath}: not valid JSON ({exc})") from exc
        return cls(path, name, precision, str(manifest.get("hash", "")), int(manifest.get("alignment", 64)),
                   dict(manifest.get("input_strides", {})))


@dataclass(frozen=True)
class EngineKey:
    graph: str
    graph_sha256: str
    bundle_hash: str
    precision: str
    profile: str
    shapes: dict  # {input: [min, opt, max]}
    trt_version: str
    gpu_name: str
    compute_capability: str
    format: int = CACHE_FORMAT

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def stem(self) -> str:
        """File stem; the prefix before the digest groups plans of one graph/precision/profile."""
        return f"{_safe(self.graph)}.{self.precision}.{_safe(self.profile)}.{self.digest[:20]}"


@dataclass
class CachedEngine:
    key: EngineKey
    plan_path: Path
    plan: bytes
    built: bool  # False: loaded from the cache
    build_seconds: float = 0.0
    rebuilt_reason: str = ""  # why an existing plan was not used


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class EngineCache:
    def __init__(self, directory: Path | None, trt, gpu_name: str, compute_capability: str,
                 workspace_bytes: int = DEFAULT_WORKSPACE):
        self.dir = Path(directory) if directory else default_cache_dir()
        self.trt = trt
        self.gpu_name = gpu_name
        self.cc = compute_capability
        self.workspace_bytes = workspace_bytes
        self.trt_version = str(trt.__version__)

    @property
    def timing_cache_path(self) -> Path:
        return self.dir / f"timing.trt{_safe(self.trt_version)}.{_safe(self.gpu_name)}.sm{self.cc}.cache"

    def key_for(self, spec: GraphSpec, profile: Profile, onnx_bytes: bytes) -> EngineKey:
        shapes = input_shapes(spec.name, onnx_inputs(onnx_bytes), profile, spec.alignment, spec.strides)
        return EngineKey(
            graph=spec.name, graph_sha256=hashlib.sha256(onnx_bytes).hexdigest(), bundle_hash=spec.bundle_hash,
            precision=spec.precision, profile=profile.name,
            shapes={k: [list(s) for s in v] for k, v in shapes.items()},
            trt_version=self.trt_version, gpu_name=self.gpu_name, compute_capability=self.cc,
        )

    def _check(self, key: EngineKey, plan_path: Path, meta_path: Path) -> tuple[bytes | None, str]:
        """The cached plan if it provably belongs to this key, else (None, why not)."""
        if not plan_path.is_file() or not meta_path.is_file():
            return None, "not in cache"
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            return None, "sidecar is not valid JSON"
        if meta.get("key") != asdict(key):
            theirs = meta.get("key") if isinstance(meta.get("key"), dict) else {}
            diff = sorted(k for k, v in asdict(key).items() if theirs.get(k) != v)
            return None, f"built for another {', '.join(diff) or 'key'}"
        plan = plan_path.read_bytes()
        if hashlib.sha256(plan).hexdigest() != meta.get("plan_sha256"):
            return None, "plan file does not match its recorded SHA-256 (truncated or replaced)"
        return plan, ""

    def get_or_build(self, spec: GraphSpec, profile: Profile, force: bool = False) -> CachedEngine:
        onnx_bytes = spec.path.read_bytes()
        key = self.key_for(spec, profile, onnx_bytes)
        plan_path = self.dir / f"{key.stem}.plan"
        meta_path = self.dir / f"{key.stem}.json"
        plan, reason = (None, "forced rebuild") if force else self._check(key, plan_path, meta_path)
        if plan is not None:
            return CachedEngine(key, plan_path, plan, built=False)
        return self._build(spec, key, onnx_bytes, plan_path, meta_path, reason)

    def invalidate(self, entry: CachedEngine, why: str) -> CachedEngine:
        """The runtime refused a cached plan (deserialisation failed): rebuild it once."""
        spec_path_meta = entry.plan_path.with_suffix(".json")
        meta = json.loads(spec_path_meta.read_text())
        spec = GraphSpec(Path(meta["source"]), entry.key.graph, entry.key.precision, entry.key.bundle_hash)
        onnx_bytes = spec.path.read_bytes()
        return self._build(spec, entry.key, onnx_bytes, entry.plan_path, spec_path_meta, why)

    def _build(self, spec: GraphSpec, key: EngineKey, onnx_bytes: bytes, plan_path: Path, meta_path: Path,
               reason: str) -> CachedEngine:
        self.dir.mkdir(parents=True, exist_ok=True)
        tc_path = self.timing_cache_path
        timing = tc_path.read_bytes() if tc_path.is_file() else b""
        shapes = {k: tuple(tuple(s) for s in v) for k, v in key.shapes.items()}
        t0 = time.perf_counter()
        plan, timing_out = build_plan(self.trt, onnx_bytes, shapes, timing, self.workspace_bytes,
                                      what=f"{spec.name} ({spec.precision}, {key.profile})")
        seconds = time.perf_counter() - t0
        # Remove plans of the same graph/precision/profile built under another key.
        prefix = key.stem.rsplit(".", 1)[0] + "."
        for old in self.dir.glob(prefix + "*"):
            if old.suffix in (".plan", ".json") and old.stem != key.stem:
                old.unlink(missing_ok=True)
        _atomic_write(plan_path, plan)
        meta = {"key": asdict(key), "plan_sha256": hashlib.sha256(plan).hexdigest(), "plan_bytes": len(plan),
                "source": str(spec.path), "build_seconds": round(seconds, 3)}
        _atomic_write(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
        if timing_out:
            _atomic_write(tc_path, timing_out)
        return CachedEngine(key, plan_path, plan, built=True, build_seconds=seconds, rebuilt_reason=reason)
