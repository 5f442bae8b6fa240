# syntax=docker/dockerfile:1.7
# ZVC69-RT encoder service images. Two targets (see docs/SERVICE.md):
#   docker build --target gpu -t zvc69-rt:gpu .   TensorRT base; engines built at first start into a volume
#   docker build --target cpu -t zvc69-rt:cpu .   ONNX Runtime on CPU, slim Python base
# Both run as a non-root user, need an API key to listen on 0.0.0.0 (ZVC69_API_KEY or a key file,
# e.g. a compose secret), and report health through /readyz (model loaded, engines warm).
# The install commands are the project's own (`pip install ".[cpu]"` / `".[gpu]"` from pyproject.toml).

ARG TRT_IMAGE=nvcr.io/nvidia/tensorrt:25.01-py3
ARG CPU_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------- CPU
FROM ${CPU_IMAGE} AS cpu-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/zvc69
ENV PATH=/opt/zvc69/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY zvc69_rt ./zvc69_rt
COPY service ./service
COPY engines ./engines
RUN pip install ".[cpu]"

FROM ${CPU_IMAGE} AS cpu
RUN useradd --system --uid 10069 --home-dir /home/zvc69 --create-home --shell /usr/sbin/nologin zvc69
COPY --from=cpu-build /opt/zvc69 /opt/zvc69
ENV PATH=/opt/zvc69/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    ZVC69_BACKEND=onnxruntime
USER zvc69
WORKDIR /home/zvc69
EXPOSE 8069
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8069/readyz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["zvc69", "serve", "--host", "0.0.0.0", "--port", "8069"]

# ---------------------------------------------------------------------------- GPU
FROM ${TRT_IMAGE} AS gpu-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# --system-site-packages: reuse the base image's TensorRT Python bindings
RUN python3 -m venv --system-site-packages /opt/zvc69
ENV PATH=/opt/zvc69/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY zvc69_rt ./zvc69_rt
COPY service ./service
COPY engines ./engines
RUN pip install ".[gpu]"

FROM ${TRT_IMAGE} AS gpu
RUN useradd --system --uid 10069 --home-dir /home/zvc69 --create-home --shell /usr/sbin/nologin zvc69 \
 && mkdir -p /var/cache/zvc69/engines && chown -R zvc69:zvc69 /var/cache/zvc69
COPY --from=gpu-build /opt/zvc69 /opt/zvc69
ENV PATH=/opt/zvc69/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/var/cache/zvc69/numba \
    ZVC69_ENGINE_CACHE=/var/cache/zvc69/engines \
    ZVC69_BACKEND=tensorrt \
    ZVC69_PRECISION=fp16
# Engines (and the numba cache) are built on first start by the warm-up encode and kept here;
# /readyz turns 200 once that is done, so the first start is slow and later ones are not.
VOLUME ["/var/cache/zvc69"]
USER zvc69
WORKDIR /home/zvc69
EXPOSE 8069
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8069/readyz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["zvc69", "serve", "--host", "0.0.0.0", "--port", "8069"]
