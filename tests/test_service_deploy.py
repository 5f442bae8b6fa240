"""Deployment files, checked without a Docker engine: the compose file parses and reserves an NVIDIA
GPU, takes the key from a secret, keeps engines in a volume the image uses; the Dockerfile has both
targets, a TensorRT base, a non-root user, a healthcheck, and installs extras that exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def stages() -> dict[str, str]:
    """Dockerfile text per stage name."""
    parts = re.split(r"^FROM\s+", DOCKERFILE, flags=re.MULTILINE)[1:]
    out = {}
    for p in parts:
        m = re.match(r"(\S+)\s+AS\s+(\S+)", p)
        assert m, p[:80]
        out[m.group(2)] = "FROM " + p
    return out


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed: cannot parse docker-compose.yml")
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_reserves_an_nvidia_gpu(compose):
    svc = compose["services"]["zvc69"]
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d.get("count", 1) >= 1 for d in devices)
    assert svc["build"]["target"] == "gpu"


def test_compose_key_secret_volume_and_healthcheck(compose):
    svc = compose["services"]["zvc69"]
    env = svc["environment"]
    assert "ZVC69_API_KEY" not in env  # never a literal key in the file
    secret_path = env["ZVC69_API_KEY_FILE"]
    assert secret_path.startswith("/run/secrets/") and secret_path.rsplit("/", 1)[1] in svc["secrets"]
    assert secret_path.rsplit("/", 1)[1] in compose["secrets"]
    cache_env = re.search(r"ZVC69_ENGINE_CACHE=(\S+)", stages()["gpu"]).group(1)
    mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
    assert any(cache_env.startswith(path) for path in mounts)  # the engine cache lives on the volume
    assert all(src in compose["volumes"] for src in mounts.values())
    for name in ("zvc69", "zvc69-cpu"):
        hc = compose["services"][name]["healthcheck"]
        assert hc["test"][0] == "CMD" and "/readyz" in " ".join(hc["test"])
        assert compose["services"][name]["ports"][0].endswith(":8069")


def test_dockerfile_targets_base_user_healthcheck():
    st = stages()
    assert set(st) >= {"cpu", "gpu", "cpu-build", "gpu-build"}
    assert re.search(r"ARG TRT_IMAGE=nvcr\.io/nvidia/tensorrt:\S+", DOCKERFILE)
    for name in ("cpu", "gpu"):
        text = st[name]
        user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
        assert user and user[-1] not in ("root", "0"), name
        assert "HEALTHCHECK" in text and "/readyz" in text
        assert re.search(r'ENTRYPOINT \["zvc69", "serve", "--host", "0.0.0.0"', text)
        assert "COPY --from=" + name + "-build" in text  # multi-stage: no build tools in the final image
    assert "VOLUME" in st["gpu"] and "ZVC69_BACKEND=tensorrt" in st["gpu"]


def test_dockerfile_installs_existing_extras_and_every_package_folder():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    installs = {name: re.findall(r'pip install "\.\[([a-z,]+)\]"', text) for name, text in stages().items()}
    assert installs["cpu-build"] == ["cpu"]
    assert installs["gpu-build"] == ["gpu"]
    for used in ("cpu", "gpu"):
        assert used in extras
    # every folder pyproject maps to a package is copied into the build stages
    folders = {v.split("/")[0] for v in pyproject["tool"]["setuptools"]["package-dir"].values()}
    for name in ("cpu-build", "gpu-build"):
        copied = set(re.findall(r"^COPY (\S+) ", stages()[name], flags=re.MULTILINE))
        assert folders <= copied | {"zvc69_rt"}, (name, folders - copied)
        assert {"pyproject.toml", "README.md"} <= set(re.findall(r"^COPY ([^\n]+)", stages()[name],
                                                                  flags=re.MULTILINE)[0].split()[:-1])


def test_dockerignore_keeps_secrets_and_venvs_out():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "secrets", "runs"} <= ignored
