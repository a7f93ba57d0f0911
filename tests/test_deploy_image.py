"""The container images, proven without a Docker engine.

The Dockerfile is read as Docker reads it and checked against what the README and the manifests
expect of it (names, user, port, model folder), and the serving stage's start command is run as
the image would run it: from a fresh install of the package without extras, with the image's ENV
(plus, as in a pod, the Kubernetes ConfigMap's data; or alone, as the README's `docker run`), as
UID 10001, from a working folder it cannot write to, with nothing writable but its /tmp and its
metrics folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from redis_server import RedisServer
from server import free_port

ROOT = Path(__file__).resolve().parents[1]  # the checkout under test
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIGMAP = ROOT / "deploy" / "kubernetes" / "base" / "configmap.yaml"

#: The images' user; the pods' securityContext uses the same numbers.
APP_UID = 10001
#: What the serving image must not contain: the `train` extra's heavy libraries.
TRAINING_LIBRARIES = ("torch", "pandas", "sklearn", "matplotlib", "pyarrow")
#: PATH of the python:3.11-slim images, which the Dockerfile does not change.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: HOME Docker gives user `app` (its passwd entry, `useradd --home-dir /nonexistent`).
IMAGE_HOME = "/nonexistent"


# --- a minimal Dockerfile reader ----------------------------------------------------------


@dataclass
class Stage:
    """One ``FROM`` and its instructions; a stage built on an earlier one inherits its settings."""

    name: str
    base: str
    parent: Stage | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def lineage(self) -> list[Stage]:
        """This stage and the stages it is built on, oldest first."""
        chain: list[Stage] = []
        stage: Stage | None = self
        while stage is not None:
            chain.insert(0, stage)
            stage = stage.parent
        return chain

    def all(self, keyword: str) -> list[str]:
        """Arguments of every ``keyword`` instruction in effect, oldest first."""
        return [args for s in self.lineage() for kw, args in s.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        """Arguments of the ``keyword`` instruction in effect (the last one), if any."""
        found = self.all(keyword)
        return found[-1] if found else None

    @property
    def env(self) -> dict[str, str]:
        """The image's ENV (values taken literally: this Dockerfile interpolates none)."""
        env: dict[str, str] = {}
        for args in self.all("ENV"):
            words = shlex.split(args)
            if "=" not in words[0]:  # the legacy `ENV KEY value` form
                env[words[0]] = " ".join(words[1:])
            else:
                for word in words:
                    key, _, value = word.partition("=")
                    env[key] = value
        return env

    @property
    def command(self) -> list[str]:
        """What the container runs: ENTRYPOINT + CMD (a shell-form ENTRYPOINT ignores CMD)."""
        entrypoint, cmd = self.last("ENTRYPOINT"), self.last("CMD")
        if entrypoint is not None and not entrypoint.startswith("["):
            return exec_form(entrypoint)
        return (exec_form(entrypoint) if entrypoint else []) + (exec_form(cmd) if cmd else [])

    @property
    def healthcheck(self) -> list[str]:
        """The HEALTHCHECK's command (options dropped); empty for none or ``NONE``."""
        args = self.last("HEALTHCHECK")
        found = re.fullmatch(r"(?:--\S+\s+)*CMD\s+(.+)", args or "", re.DOTALL)
        return exec_form(found.group(1)) if found else []


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT arguments as argv: the JSON exec form, or ``/bin/sh -c`` for shell form."""
    if not args.startswith("["):
        return ["/bin/sh", "-c", args]
    argv = json.loads(args)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), args
    return argv


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile, in order (no heredocs: this Dockerfile uses none)."""
    stages: list[Stage] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments and parser directives, also mid-line-run
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]  # drop --platform
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            parent = next((s for s in stages if s.name == words[0]), None)
            stages.append(Stage(name, words[0], parent))
        elif stages:  # an ARG before the first FROM only feeds FROM lines
            stages[-1].instructions.append((keyword, args))
    return stages


def copy_arguments(args: str) -> tuple[dict[str, str], list[str], str]:
    """A COPY's ``--flag=value`` options, its sources and its destination."""
    words = shlex.split(args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def stage(name: str) -> Stage:
    """The Dockerfile's stage ``name``."""
    found = {s.name: s for s in parse_dockerfile(DOCKERFILE.read_text())}
    assert name in found, f"the Dockerfile has no stage {name!r} (stages: {list(found)})"
    return found[name]


def configmap_data() -> dict[str, str]:
    """The service's environment in the cluster (the Deployment reads it with envFrom)."""
    document = yaml.safe_load(CONFIGMAP.read_text())
    data = document["data"]
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    return {str(k): str(v) for k, v in data.items()}


# --- .dockerignore, as Docker applies it ----------------------------------------------------


def _glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay within one path element."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?":
            out.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignored(path: str) -> bool:
    """Whether ``docker build`` leaves ``path`` out of the context.

    Docker's rule: the last pattern matching the path or one of its parent folders decides, and
    a ``!`` pattern takes the path back in.
    """
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    patterns = [line for line in lines if line and not line.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        regex = _glob(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not pattern.startswith("!")
    return result


def build_context(destination: Path) -> Path:
    """What the build stage copies from the context (after .dockerignore), under ``destination``.

    Installing this rather than the checkout itself proves the build stage copies all the wheel
    needs, and keeps setuptools' build/ and egg-info out of the checkout.
    """
    for args in stage("build").all("COPY"):
        flags, sources, _ = copy_arguments(args)
        if "from" in flags:
            continue
        for source in sources:
            top = ROOT / source
            for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
                relative = path.relative_to(ROOT).as_posix()
                if path.is_file() and not ignored(relative):
                    (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, destination / relative)
    return destination


# --- static checks --------------------------------------------------------------------------


def test_the_serving_image_is_the_last_stage() -> None:
    """A plain `docker build -t missile-classifier:latest .` must build the serving image."""
    stages = parse_dockerfile(DOCKERFILE.read_text())
    names = [s.name for s in stages]
    assert names[-1] == "serve", names
    assert "train" in names and len(set(names)) == len(names), names


def test_the_serving_stage_installs_the_base_package_only() -> None:
    """No extra and no training library: the serving image stays small and torch-free."""
    runs = stage("serve").all("RUN")
    assert any(re.search(r"pip install .*\.whl", run) for run in runs), runs
    for run in runs:
        assert not re.search(r"\S\[[\w,.-]+\]", run), f"installs an extra: {run}"
        heavy = r"\b(torch|pandas|scikit-learn|sklearn|matplotlib|pyarrow)\b"
        assert not re.search(heavy, run), f"names a training library: {run}"
        assert not re.search(r"\b(gcc|g\+\+|clang|build-essential)\b", run), f"compiler: {run}"
    # The wheel is built without dependencies: the serving stage resolves them itself.
    assert any(re.search(r"pip wheel .*--no-deps", run) for run in stage("build").all("RUN"))


@pytest.mark.parametrize("name", ["serve", "train"])
def test_each_image_runs_as_the_numeric_non_root_app_user(name: str) -> None:
    """A numeric USER lets Kubernetes' runAsNonRoot verify it; 10001 is the pods' runAsUser."""
    image = stage(name)
    user, _, group = (image.last("USER") or "root").partition(":")
    assert user.isdigit() and int(user) == APP_UID != 0, user
    assert group in ("", str(APP_UID)), group
    assert image.last("WORKDIR") == "/app"
    created = [run for run in image.all("RUN") if "useradd" in run]
    assert created and f"--uid {APP_UID}" in created[0] and f"--gid {APP_UID}" in created[0]


def test_the_serving_stage_listens_and_is_probed_where_the_readme_says() -> None:
    """Port, health check and command agree with each other, the README and the cluster."""
    serve = stage("serve")
    env = serve.env
    expected = {"MODEL_PATH": "/app/models", "HOST": "0.0.0.0", "PORT": "8000", "LOG_LEVEL": "INFO"}
    assert {k: env.get(k) for k in expected} == expected
    assert serve.command == ["missile-classifier", "serve"]
    assert [port.removesuffix("/tcp") for port in serve.all("EXPOSE")] == [env["PORT"]]
    check = serve.healthcheck
    assert check[:2] == ["python", "-c"], check
    assert f"'http://127.0.0.1:{env['PORT']}/health'" in check[2], check
    # The pods (ConfigMap) and a bare `docker run` look for the model and listen in one place.
    data = configmap_data()
    assert (data["MODEL_PATH"], data["PORT"]) == (env["MODEL_PATH"], env["PORT"])


def test_the_train_stage_installs_cpu_torch_before_the_project() -> None:
    """A torch from PyPI would be the multi-GB CUDA build; the CPU one must be there first."""
    runs = stage("train").all("RUN")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pinned = [r for r in pyproject["project"]["optional-dependencies"]["train"] if "torch" in r]
    torch_runs = [i for i, run in enumerate(runs) if "torch==" in run]
    project_runs = [i for i, run in enumerate(runs) if "[train]" in run]
    assert torch_runs and project_runs, runs
    torch_run = runs[torch_runs[0]]
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_run, torch_run
    # The same pin as the extra's, so pip keeps the CPU build instead of replacing it.
    pin = re.search(r"torch==\S+", torch_run)
    assert pin is not None and pinned == [pin.group(0)], (pinned, torch_run)
    assert torch_runs[0] < project_runs[0]


def test_a_model_is_baked_only_when_the_build_is_given_one() -> None:
    """The `model` stage is empty unless `--build-context model=<bundle>` replaces it."""
    model = stage("model")
    assert (model.base, model.instructions) == ("scratch", [])
    serve = stage("serve")
    copies = [copy_arguments(a) for a in serve.all("COPY") if "--from=model" in a]
    assert len(copies) == 1, serve.all("COPY")
    _, sources, destination = copies[0]
    assert sources == ["/"] and destination.rstrip("/") == serve.env["MODEL_PATH"]


def test_the_build_context_holds_what_the_build_needs_and_nothing_else() -> None:
    """Data, models, venvs and caches would make every build slow (and could leak into it)."""
    kept = ["pyproject.toml", "README.md", "src/missile_classifier/cli.py"]
    left_out = [
        "data/train.csv",
        "models/latest/model.onnx",
        ".venv/bin/python",
        ".venv-deploy/bin/checkov",
        ".git/HEAD",
        ".mypy_cache/3.11/cache.db",
        ".pytest_cache/v/cache/nodeids",
        ".coverage",
        "htmlcov/index.html",
        "tests/test_cli.py",
        "src/missile_classifier/__pycache__/cli.cpython-311.pyc",
        "src/missile_classifier.egg-info/PKG-INFO",
    ]
    assert [p for p in kept if ignored(p)] == []
    assert [p for p in left_out if not ignored(p)] == []
    # Everything the build stage copies from the context is really sent.
    for args in stage("build").all("COPY"):
        _, sources, _ = copy_arguments(args)
        assert [s for s in sources if ignored(s.rstrip("/"))] == [], args


# --- the start command, run as the image runs it ------------------------------------------


def _as_app_user() -> list[str]:
    """Command prefix that drops to UID/GID 10001 (empty when the tests already run non-root)."""
    if os.geteuid() != 0:
        return []  # already not root: the server runs as this user, still without privileges
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to run the server as UID 10001")
    return [setpriv, f"--reuid={APP_UID}", f"--regid={APP_UID}", "--clear-groups"]


def _python_for_app_user(cwd: Path) -> str:
    """A Python 3.11+ that is the same interpreter for UID 10001 as for root.

    Not just one that starts: on some machines a Python under root's 0700 home (pyenv) runs as
    another Python for other users, and a venv's packages are resolved for the Python that
    installs them (redis needs async-timeout below 3.11.3 only).
    """
    candidates = [
        str(Path(sys.base_prefix) / "bin" / "python3"),
        shutil.which("python3"),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ]
    check = "import sys, venv; print(sys.version_info >= (3, 11), sys.version, sys.prefix)"
    for python in dict.fromkeys(c for c in candidates if c and Path(c).is_file()):
        runs = [
            subprocess.run(
                [*prefix, python, "-c", check], cwd=cwd, capture_output=True, text=True, timeout=60
            )
            for prefix in ([], _as_app_user())
        ]
        same = all(r.returncode == 0 for r in runs) and runs[0].stdout == runs[1].stdout
        if same and runs[0].stdout.startswith("True "):
            return python
    pytest.skip(f"none of {candidates} is a Python 3.11+ that UID {APP_UID} runs as root does")


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A folder UID 10001 can traverse (pytest's tmp_path is under a 0700 root-owned folder)."""
    root = Path(tempfile.mkdtemp(prefix="missile-classifier-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def serving_install(image_root: Path) -> Path:
    """A fresh venv with the package installed as the serving image installs it: no extras.

    The venv gets no pip of its own (ensurepip takes seconds); this interpreter's pip installs
    into it with ``--python``, resolving markers for the venv's Python as its own pip would.
    """
    python = _python_for_app_user(image_root)
    venv = image_root / "venv"
    context = build_context(image_root / "context")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    started = time.monotonic()
    for command in (
        [python, "-m", "venv", "--without-pip", str(venv)],
        [*pip, "--quiet", "--disable-pip-version-check", str(context)],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    print(f"fresh serving install: {time.monotonic() - started:.1f} s")
    return venv


@pytest.fixture(scope="module")
def model_volume(trained_bundle: Path, image_root: Path) -> Path:
    """The models volume: a trained bundle's folder with ``latest``, readable by UID 10001."""
    models = image_root / "models"
    shutil.copytree(trained_bundle / "models", models, symlinks=True)
    return models


@pytest.mark.slow
def test_the_fresh_serving_install_has_no_training_library(serving_install: Path) -> None:
    """Proves the start-command test below runs without torch and friends, not just avoids them."""
    code = (
        "import importlib.util as u, json; "
        f"print(json.dumps([n for n in {TRAINING_LIBRARIES!r} if u.find_spec(n) is not None]))"
    )
    python = serving_install / "bin" / "python"
    result = subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def _children(pid: int) -> list[int]:
    """Gunicorn's workers: the children of its master."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _uids(pid: int) -> set[int]:
    """The real, effective, saved and file-system UIDs of ``pid``."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {int(n) for line in lines if line.startswith("Uid:") for n in line.split()[1:]}


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["kubernetes", "docker run"])
def test_the_image_start_command_serves(
    runtime: str, serving_install: Path, model_volume: Path, image_root: Path
) -> None:
    """CMD/ENTRYPOINT from a fresh serving install with the image's ENV (and, in the cluster, the
    ConfigMap's), as UID 10001, from a working folder it cannot write to."""
    serve = stage("serve")
    run_dir = image_root / runtime.replace(" ", "-")
    workdir, tmp, metrics = run_dir / "app", run_dir / "tmp", run_dir / "metrics"
    for folder in (workdir, tmp, metrics):
        folder.mkdir(parents=True)
    run_dir.chmod(0o755)
    workdir.chmod(0o555)  # /app under a read-only root file system
    tmp.chmod(0o1777)  # the container's /tmp, like the image's
    prefix = _as_app_user()
    if prefix:
        os.chown(metrics, APP_UID, APP_UID)  # an emptyDir the pod's user may write
    env = {
        # What the base image and Docker give every container: PATH, LANG, HOME (from passwd).
        "PATH": f"{serving_install / 'bin'}:{IMAGE_PATH}",
        "LANG": "C.UTF-8",
        "HOME": IMAGE_HOME,
        **serve.env,
    }
    if runtime == "kubernetes":
        env.update(configmap_data())  # envFrom: the ConfigMap's keys override the image's ENV
    # Only what a container gets from its runtime (mounts, its own network) and the test cannot:
    env.update(
        {
            # The volume (a PVC in the cluster) mounted at /app/models, which the test cannot make.
            "MODEL_PATH": str(model_volume),
            # The container's own /tmp: a private one, so the test sees what the server leaves.
            "TMPDIR": str(tmp),
            # A container has its own network namespace; here 8000 may be taken by someone else.
            "PORT": str(free_port()),
            # Loopback: on a shared machine the test server must not listen on every interface.
            "HOST": "127.0.0.1",
        }
    )
    log_path = run_dir / "server.log"
    with contextlib.ExitStack() as stack:
        if runtime == "kubernetes":
            # Service missile-classifier-redis resolves in the cluster's DNS only.
            env["REDIS_URL"] = stack.enter_context(RedisServer()).url
            # An emptyDir mounted there in the pods; /var/run is not the test user's to write.
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        executable = shutil.which(serve.command[0], path=env["PATH"])
        assert executable == str(serving_install / "bin" / serve.command[0]), executable
        log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [*prefix, *serve.command],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest reaches the server via SIGTERM
        )
        try:
            _check_the_running_server(process, env, serve, log_path, serving_install)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # Metrics went where the settings say; nothing was left in /tmp (gunicorn's heartbeat files
    # and the folder `serve` makes for metrics without PROMETHEUS_MULTIPROC_DIR are removed).
    if runtime == "kubernetes":
        assert sorted(metrics.glob("*.db")), "nothing written to PROMETHEUS_MULTIPROC_DIR"
    assert list(tmp.iterdir()) == [], log_path.read_text()


def _check_the_running_server(
    process: subprocess.Popen[bytes],
    env: dict[str, str],
    serve: Stage,
    log_path: Path,
    venv: Path,
) -> None:
    """Ready, every endpoint answers, the health check passes, SIGTERM stops every process."""
    url = f"http://127.0.0.1:{env['PORT']}"
    store = "redis" if env.get("REDIS_URL") else "memory"
    # The HEALTHCHECK's own command, with the test's port for the image's.
    healthcheck = [*_as_app_user(), *serve.healthcheck]
    healthcheck[-1] = healthcheck[-1].replace(f":{serve.env['PORT']}/", f":{env['PORT']}/")

    def fail(message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- server log ---\n{log_path.read_text()}")

    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise fail(f"the server exited with {process.returncode}")
        try:
            if _get(url + "/health").status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or loading
            pass
        if time.monotonic() > deadline:
            raise fail("not ready in 90 s")
        time.sleep(0.2)
    try:
        # The process the command became (setpriv and the CLI exec): gunicorn from the fresh venv.
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[0].decode().startswith(str(venv)), argv
        interpreter = Path(f"/proc/{process.pid}/exe").resolve()
        assert interpreter == (venv / "bin" / "python").resolve(), interpreter
        uids = _uids(process.pid)
        assert uids == {APP_UID} or (not _as_app_user() and 0 not in uids), uids
        workers = _children(process.pid)
        # Several workers share tracks through Redis; the in-memory store needs a single one.
        assert len(workers) == (int(env["WORKERS"]) if store == "redis" else 1), workers
        assert all(_uids(worker) == uids for worker in workers)

        assert _get(url + "/livez").status_code == 200
        health = _get(url + "/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok", health.text
        assert health.json()["store"]["kind"] == store, health.text
        point = {
            "timestamp": 1731308400.0,
            "track_id": 42,
            "sensor_id": 3,
            "latitude": 64.13,
            "longitude": -21.9,
            "altitude": 1200.0,
            "radiometric_intensity": 0.01,
        }
        for context_points in (1, 2):  # the second point finds the first in the track store
            answer = requests.post(url + "/predict", json=point, timeout=10)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert 0.0 <= body["probability"] <= 1.0, body
            assert body["context_points"] == context_points, body
            point["timestamp"] += 0.5
        scraped = _get(url + "/metrics")
        assert scraped.status_code == 200, scraped.text
        assert 'missile_classifier_predictions_total{class="' in scraped.text
        probe = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
    except (AssertionError, requests.RequestException, OSError) as exc:
        raise fail(str(exc)) from exc

    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        raise fail("still running 40 s after SIGTERM") from None
    if returncode != 0:
        raise fail(f"exited with {returncode} after SIGTERM")
    if left := [w for w in workers if Path(f"/proc/{w}").exists()]:
        raise fail(f"workers {left} outlived the master")
    # A warning here is mostly a write the container refuses (ONNX Runtime's telemetry id in
    # $HOME was one): the service must run quietly as it will in the cluster.
    warning = re.compile(r'"level": "(warning|error|critical)"|\[[WE]:onnxruntime')
    if noisy := [line for line in log_path.read_text().splitlines() if warning.search(line)]:
        raise fail("warnings in the log:\n" + "\n".join(noisy))
    probe = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0, "the health check passes with no server"
