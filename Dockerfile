# syntax=docker/dockerfile:1.7
#
# Images of missile-classifier (BuildKit; Docker 23+ uses it by default):
#
#   docker build -t missile-classifier:latest .                              serving API (last stage)
#   docker build --target train -t missile-classifier-train:latest .        training, batch scoring
#   docker run -p 8000:8000 -v $(pwd)/models:/app/models missile-classifier:latest
#
# Baking a model into the serving image (demos, or a cluster without a models volume): the empty
# `model` stage below is a named build context that the build can replace with a folder, whose
# files then land in /app/models (MODEL_PATH). A bundle folder (`models/latest`: the symlink is
# followed) or a models folder holding `latest` both work:
#
#   docker build --build-context model=models/latest -t missile-classifier:demo .
#
# Without --build-context nothing is baked and the service reads the volume mounted at /app/models
# (a mounted volume also hides a baked bundle). Only the named folder is sent for it: this
# directory's .dockerignore keeps models/ out of the main context. tests/test_deploy_image.py
# checks this file and runs the serving stage's command from a fresh serving-only install.

# --- build: the project's wheel, built once for both images ---------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
# Only what setuptools reads (the readme is the package's long description).
COPY pyproject.toml README.md ./
COPY src/ src/
# --no-deps: dependencies are installed from the index in the images, not vendored here.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- model: empty unless the build is given `--build-context model=<bundle folder>` ----------
FROM scratch AS model

# --- runtime: what both images share: the non-root user and the folders ---------------------
FROM python:3.11-slim-bookworm AS runtime
# Bytecode is compiled when pip installs; nothing may write .pyc files at run time (read-only
# root file system), and logs must reach `kubectl logs` unbuffered. Without
# ORT_DISABLE_TELEMETRY, ONNX Runtime writes a telemetry id under $HOME/.cache (and warns on a
# read-only file system).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ORT_DISABLE_TELEMETRY=1
# UID/GID 10001: above any host's login users; numeric USER below so Kubernetes' runAsNonRoot
# can verify it. No home folder: nothing may write outside /tmp at run time.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
WORKDIR /app

# --- train: simulate, train, evaluate, export, batch predict (Jobs set their own commands) ---
FROM runtime AS train
# The CPU build of torch first, from PyTorch's CPU index: the `train` extra's `torch==` pin is
# then already satisfied, so pip never pulls the multi-GB CUDA build from PyPI.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir "$(echo /wheels/*.whl)[train]"
# Matplotlib wants a writable config folder; the user has no home.
ENV MPLCONFIGDIR=/tmp/matplotlib
# `simulate` and `train` write to data/ and models/ under /app (volumes in the cluster).
RUN install -d -o 10001 -g 10001 /app/data /app/models
USER 10001:10001
# A Job's container: its exit code says whether it worked, no probe needed.
HEALTHCHECK NONE
CMD ["missile-classifier", "--help"]

# --- serve: the REST API, gunicorn; the default target -------------------------------------
FROM runtime AS serve
# The base install only: onnxruntime, numpy, flask, gunicorn... never torch or pandas.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
# Root-owned and read-only to the service: it never writes to its model.
COPY --from=model / /app/models/
ENV MODEL_PATH=/app/models HOST=0.0.0.0 PORT=8000 LOG_LEVEL=INFO
USER 10001:10001
EXPOSE 8000
# No curl in slim images: Python's urllib; a 503 (model not loaded yet) raises, so unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["missile-classifier", "serve"]
