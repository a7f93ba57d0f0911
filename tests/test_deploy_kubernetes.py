"""The Kubernetes manifests (deploy/kubernetes), checked statically: no cluster is needed.

The rendered files must be exactly what kustomize makes of the overlays, because users apply
them as they are. Both overlays must hold every object the deployment relies on, with the
properties it relies on; and names, ports and paths must agree with what the service really
serves, with the ConfigMap, with the settings' defaults and with the Dockerfile, because a
mismatch there only shows once pods fail their probes in a real cluster.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from missile_classifier.service.config import Settings
from missile_classifier.service.routes import ENDPOINTS

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
OVERLAYS = ("minikube", "production")
NAMESPACE = "missile-classifier"
NAME_LABEL = {"app.kubernetes.io/name": "missile-classifier"}
API_PODS = {**NAME_LABEL, "app.kubernetes.io/component": "api"}
REDIS_PODS = {**NAME_LABEL, "app.kubernetes.io/component": "redis"}
DEPLOYMENT = "missile-classifier-deployment"
SERVICE = "missile-classifier-service"
MODELS_CLAIM = "missile-classifier-models"
DATA_CLAIM = "missile-classifier-data"
API_KEY_SECRET = "missile-classifier-api-key"
OUR_IMAGES = ("missile-classifier:latest", "missile-classifier-train:latest")
#: Kinds from CRDs, which kubernetes-validate has no schema for: their fields are checked here.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Every object both overlays must render (the API key Secret is the production exception).
EXPECTED = {
    ("Namespace", NAMESPACE),
    ("ConfigMap", "missile-classifier-config"),
    ("Deployment", DEPLOYMENT),
    ("Service", SERVICE),
    ("Service", "missile-classifier-nodeport"),
    ("HorizontalPodAutoscaler", "missile-classifier-hpa"),
    ("Ingress", "missile-classifier-ingress"),
    ("PersistentVolumeClaim", MODELS_CLAIM),
    ("PersistentVolumeClaim", DATA_CLAIM),
    ("ServiceMonitor", "missile-classifier"),
    ("Deployment", "missile-classifier-redis"),
    ("Service", "missile-classifier-redis"),
    ("NetworkPolicy", "missile-classifier-default-deny"),
    ("NetworkPolicy", "missile-classifier-api"),
    ("NetworkPolicy", "missile-classifier-redis"),
    ("PodDisruptionBudget", "missile-classifier-pdb"),
    ("Job", "missile-classifier-train"),
    ("Job", "missile-classifier-batch-predict"),
    ("PrometheusRule", "missile-classifier-alerts"),
    ("ConfigMap", "missile-classifier-grafana-dashboard"),
}

Obj = dict[str, Any]


def kustomize(overlay: str) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize` of an overlay, from the repository root as a user would run it."""
    return subprocess.run(
        [KUBECTL, "kustomize", f"deploy/kubernetes/overlays/{overlay}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def kustomize_version() -> str:
    """The kustomize inside this kubectl: another major version renders differently."""
    result = subprocess.run(
        [KUBECTL, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    version: str = json.loads(result.stdout).get("kustomizeVersion", "unknown")
    return f"kustomize {version}"


@functools.cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    """The objects of deploy/kubernetes/rendered/<overlay>.yaml."""
    text = (KUBERNETES / "rendered" / f"{overlay}.yaml").read_text()
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def find(overlay: str, kind: str, name: str) -> Obj:
    """The one object of that kind and name."""
    found = [o for o in rendered(overlay) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: {len(found)} {kind} named {name}"
    return found[0]


def of_kind(overlay: str, kind: str) -> list[Obj]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def workloads(overlay: str) -> list[Obj]:
    """Every object with a pod template."""
    return [o for o in rendered(overlay) if o["kind"] in {"Deployment", "StatefulSet", "Job"}]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def all_containers(workload: Obj) -> Iterator[Obj]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def container(workload: Obj, name: str) -> Obj:
    found = [c for c in all_containers(workload) if c["name"] == name]
    assert len(found) == 1, f"{workload['metadata']['name']}: no container {name}"
    return found[0]


def api_container(overlay: str) -> Obj:
    return container(find(overlay, "Deployment", DEPLOYMENT), "missile-classifier")


def config(overlay: str) -> dict[str, str]:
    data: dict[str, str] = find(overlay, "ConfigMap", "missile-classifier-config")["data"]
    return data


def selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects an object with these labels."""
    return all(labels.get(key) == value for key, value in match_labels.items())


def named_port(container_spec: Obj, name: str) -> int:
    ports = [p["containerPort"] for p in container_spec.get("ports", []) if p["name"] == name]
    assert len(ports) == 1, f"container {container_spec['name']} has no port named {name}"
    return int(ports[0])


def mount(container_spec: Obj, volume: str) -> Obj:
    found: list[Obj] = [m for m in container_spec.get("volumeMounts", []) if m["name"] == volume]
    assert len(found) == 1, f"container {container_spec['name']} does not mount {volume}"
    return found[0]


def volume(workload: Obj, name: str) -> Obj:
    found: list[Obj] = [v for v in pod_spec(workload).get("volumes", []) if v["name"] == name]
    assert len(found) == 1, f"{workload['metadata']['name']}: no volume {name}"
    return found[0]


def claim_mount(workload: Obj, container_spec: Obj, claim: str) -> Obj:
    """The container's mount of the volume that is the PVC ``claim``."""
    names = [
        v["name"]
        for v in pod_spec(workload).get("volumes", [])
        if v.get("persistentVolumeClaim", {}).get("claimName") == claim
    ]
    assert len(names) == 1, f"{workload['metadata']['name']}: no volume of claim {claim}"
    return mount(container_spec, names[0])


def routes(method: str) -> set[str]:
    """Paths the service really serves for ``method`` (routes.ENDPOINTS)."""
    return {path for m, path in (e.split(" ", 1) for e in ENDPOINTS) if m == method}


def probe_path(container_spec: Obj, probe: str) -> str:
    path: str = container_spec[probe]["httpGet"]["path"]
    return path


def pod_labels(overlay: str, name: str) -> dict[str, str]:
    labels: dict[str, str] = find(overlay, "Deployment", name)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def dockerfile_serving_stage() -> list[str]:
    """The Dockerfile's instructions after its last FROM (the serving image), one per line."""
    assert DOCKERFILE.is_file(), "the root Dockerfile (serving image) is missing"
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.upper().startswith("FROM "))
    return instructions[last_from:]


# --- (a) the rendered files -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_file_is_exactly_the_overlay(overlay: str) -> None:
    """Users `kubectl apply -f` the rendered file: it must not lag behind the overlay."""
    result = kustomize(overlay)
    assert result.returncode == 0, result.stderr
    path = KUBERNETES / "rendered" / f"{overlay}.yaml"
    assert path.read_text() == result.stdout, (
        f"{path.relative_to(ROOT)} is stale: run `kubectl kustomize deploy/kubernetes/overlays/"
        f"{overlay} > {path.relative_to(ROOT)}` (`make render` does both overlays); the "
        f"committed files come from kustomize v5.5, this is {kustomize_version()}"
    )


# --- (b) the objects and their properties -----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_there_in_the_namespace(overlay: str) -> None:
    """Every object the deployment needs; everything but the Namespace inside it, labelled."""
    objects = rendered(overlay)
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert present >= EXPECTED, f"missing: {EXPECTED - present}"
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] != "Namespace":
            assert meta.get("namespace") == NAMESPACE, f"{obj['kind']} {meta['name']}"
        assert selects(NAME_LABEL, meta.get("labels", {})), f"{obj['kind']} {meta['name']}"
    policies = {name for kind, name in present if kind == "NetworkPolicy"}
    assert all(name.startswith("missile-classifier-") for name in policies)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_known_crd_kinds_lack_a_core_schema(overlay: str) -> None:
    """kubernetes-validate skips kinds it has no schema for: only these two may be such kinds."""
    core = re.compile(r"^(v1|(apps|batch|policy|autoscaling|networking\.k8s\.io)/v\d+)$")
    unknown = {o["kind"] for o in rendered(overlay) if not core.match(o["apiVersion"])}
    assert unknown == CRD_KINDS
    assert {o["apiVersion"] for o in rendered(overlay) if o["kind"] in CRD_KINDS} == {
        "monitoring.coreos.com/v1"
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_deployment_replicas_probes_and_resources(overlay: str) -> None:
    """Three replicas; startup and liveness on /livez, readiness on /health, all on `http`."""
    deployment = find(overlay, "Deployment", DEPLOYMENT)
    assert deployment["spec"]["replicas"] == 3
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(overlay, DEPLOYMENT))
    api = api_container(overlay)
    assert api["image"] == "missile-classifier:latest"
    assert probe_path(api, "startupProbe") == "/livez"
    assert probe_path(api, "livenessProbe") == "/livez"
    assert probe_path(api, "readinessProbe") == "/health"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["port"] == "http", probe
    # The startup probe must outlast gunicorn's worker timeout, which bounds model loading.
    startup = api["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > int(config(overlay)["TIMEOUT"])
    assert {"configMapRef": {"name": "missile-classifier-config"}} in api["envFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    """Without requests the HPA has no utilisation to compute and the scheduler packs blindly."""
    for workload in workloads(overlay):
        for spec in all_containers(workload):
            resources = spec.get("resources", {})
            for bound in ("requests", "limits"):
                assert set(resources.get(bound, {})) >= {"cpu", "memory"}, (
                    f"{workload['metadata']['name']}/{spec['name']}: {bound}"
                )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpa_numbers_and_behavior(overlay: str) -> None:
    """2–10 replicas of the API Deployment, CPU 70 %, memory 80 %, slow scale-down."""
    hpa = find(overlay, "HorizontalPodAutoscaler", "missile-classifier-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": DEPLOYMENT,
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    targets = {
        m["resource"]["name"]: (
            m["resource"]["target"]["type"],
            m["resource"]["target"]["averageUtilization"],
        )
        for m in spec["metrics"]
    }
    assert targets == {"cpu": ("Utilization", 70), "memory": ("Utilization", 80)}
    scale_down = spec["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 60
    assert scale_down["policies"], "a scale-down rate limit"
    # Utilisation is relative to requests: every container of the pod must have them.
    assert all(
        "requests" in c["resources"]
        for c in all_containers(find(overlay, "Deployment", DEPLOYMENT))
    )


def test_claims_access_modes_per_overlay() -> None:
    """Production: written once, read on many nodes; minikube's `standard` class: RWO only."""
    production = find("production", "PersistentVolumeClaim", MODELS_CLAIM)["spec"]
    assert "ReadOnlyMany" in production["accessModes"]
    # The training Job's single writer needs a read-write mode on the same claim.
    assert "ReadWriteOnce" in production["accessModes"]
    assert find("production", "PersistentVolumeClaim", DATA_CLAIM)["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    for claim in (MODELS_CLAIM, DATA_CLAIM):
        minikube = find("minikube", "PersistentVolumeClaim", claim)["spec"]
        assert minikube["accessModes"] == ["ReadWriteOnce"], claim
        assert minikube["storageClassName"] == "standard", claim


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_model_volume_is_read_only_for_the_api_and_written_by_the_training_job(
    overlay: str,
) -> None:
    """The API reads its model at MODEL_PATH; only the training Job writes the same claim."""
    deployment = find(overlay, "Deployment", DEPLOYMENT)
    api_mount = claim_mount(deployment, api_container(overlay), MODELS_CLAIM)
    assert api_mount["mountPath"] == config(overlay)["MODEL_PATH"] == "/app/models"
    assert api_mount["readOnly"] is True
    assert volume(deployment, api_mount["name"])["persistentVolumeClaim"]["readOnly"] is True
    train = find(overlay, "Job", "missile-classifier-train")
    trainer = container(train, "train")
    assert trainer["image"] == "missile-classifier-train:latest"
    train_mount = claim_mount(train, trainer, MODELS_CLAIM)
    assert train_mount["mountPath"] == "/app/models" and not train_mount.get("readOnly", False)
    script = " ".join(trainer.get("command", []) + trainer.get("args", []))
    assert "missile-classifier simulate" in script and "missile-classifier train" in script
    assert "--output /app/models" in script
    # It simulates only when the data volume has no training data, and trains only once.
    assert "[ -f /app/data/train.csv ]" in script
    assert "[ -e /app/models/latest/metadata.json ]" in script
    assert claim_mount(train, trainer, DATA_CLAIM)["mountPath"] == "/app/data"
    # Every other pod reads the models claim only.
    for workload in workloads(overlay):
        if workload is train:
            continue
        for spec in all_containers(workload):
            for m in spec.get("volumeMounts", []):
                claim = volume(workload, m["name"]).get("persistentVolumeClaim", {})
                if claim.get("claimName") == MODELS_CLAIM:
                    assert m.get("readOnly") is True, workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_job_shell_scripts_parse(overlay: str) -> None:
    """The Jobs' inline scripts are at least valid sh: a typo would only show in the cluster."""
    scripts = [
        c["args"][0]
        for job in of_kind(overlay, "Job")
        for c in all_containers(job)
        if c.get("command") == ["/bin/sh", "-c"]
    ]
    assert len(scripts) == 2  # training, and the batch Job's wait for its inputs
    for script in scripts:
        result = subprocess.run(
            ["/bin/sh", "-n", "-c", script], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened(overlay: str) -> None:
    """Non-root, no privilege escalation, read-only root, no capabilities, seccomp, no token."""
    assert workloads(overlay)
    # Admission then refuses any pod that would drop one of these (Pod Security "restricted").
    labels = find(overlay, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        for c in all_containers(workload):
            own = c.get("securityContext", {})

            def effective(key: str, own: Obj = own, pod: Obj = pod) -> Any:
                return own.get(key, pod.get(key))

            where = f"{name}/{c['name']}"
            assert effective("runAsNonRoot") is True, where
            assert effective("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("readOnlyRootFilesystem") is True, where
            assert own.get("privileged", False) is False, where
            assert own.get("capabilities") == {"drop": ["ALL"]}, where
            if c["image"] in OUR_IMAGES:
                assert (effective("runAsUser"), effective("runAsGroup")) == (10001, 10001), where
            else:
                assert c["image"].startswith("redis:"), where
                assert effective("runAsUser") >= 10000, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_places_are_empty_dirs(overlay: str) -> None:
    """A read-only root needs /tmp and PROMETHEUS_MULTIPROC_DIR as volumes of their own."""
    deployment = find(overlay, "Deployment", DEPLOYMENT)
    api = api_container(overlay)
    mounted = {m["mountPath"]: m["name"] for m in api["volumeMounts"]}
    metrics_dir = config(overlay)["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir == "/var/run/missile-classifier/metrics"
    for path in ("/tmp", metrics_dir):
        assert path in mounted, path
        assert "emptyDir" in volume(deployment, mounted[path]), path
    for job in of_kind(overlay, "Job"):
        main = pod_spec(job)["containers"][0]
        tmp = [m["name"] for m in main["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volume(job, tmp[0]), job["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_as_stated(overlay: str) -> None:
    """Deny by default; API port from the ingress and Prometheus namespaces; Redis from API."""
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(overlay, "NetworkPolicy")}
    deny = policies["missile-classifier-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    api = policies["missile-classifier-api"]
    assert api["podSelector"]["matchLabels"] == API_PODS
    assert api["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                for ns in ("ingress-nginx", "monitoring")
            ],
            "ports": [{"port": "http", "protocol": "TCP"}],
        }
    ]
    egress_to = [peer for rule in api["egress"] for peer in rule["to"]]
    assert {"podSelector": {"matchLabels": REDIS_PODS}} in egress_to
    redis = policies["missile-classifier-redis"]
    assert redis["podSelector"]["matchLabels"] == REDIS_PODS
    assert redis["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": API_PODS}}],
            "ports": [{"port": "redis", "protocol": "TCP"}],
        }
    ]
    assert "Egress" in redis["policyTypes"] and not redis.get("egress")
    # No other policy may open Redis; only minikube's NodePort allowance may open the API port.
    for name, spec in policies.items():
        if name in {
            "missile-classifier-default-deny",
            "missile-classifier-api",
            "missile-classifier-redis",
        }:
            continue
        assert not selects(spec["podSelector"].get("matchLabels", {}), REDIS_PODS), name
        assert overlay == "minikube" and name == "missile-classifier-api-nodeport", name
        assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
        assert "egress" not in spec
    redis_port = named_port(
        container(find(overlay, "Deployment", "missile-classifier-redis"), "redis"), "redis"
    )
    assert any({"port": redis_port, "protocol": "TCP"} in rule["ports"] for rule in api["egress"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_covers_the_api(overlay: str) -> None:
    """Drains take API pods one at a time."""
    pdb = find(overlay, "PodDisruptionBudget", "missile-classifier-pdb")["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    assert pdb["selector"]["matchLabels"] == API_PODS
    assert selects(pdb["selector"]["matchLabels"], pod_labels(overlay, DEPLOYMENT))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_key_comes_from_the_secret(overlay: str) -> None:
    """API_KEY from the Secret, required (no pod runs open because the Secret is missing)."""
    env = {e["name"]: e for e in api_container(overlay)["env"]}
    reference = env["API_KEY"]["valueFrom"]["secretKeyRef"]
    assert (reference["name"], reference["key"]) == (API_KEY_SECRET, "API_KEY")
    assert reference.get("optional", False) is False
    assert "API_KEY" not in config(overlay), "the key belongs in the Secret, not the ConfigMap"


def test_only_minikube_ships_the_api_key_secret_and_it_is_empty() -> None:
    """Applying production must never reset the real key; the repository holds no key at all."""
    assert not of_kind("production", "Secret")
    secret = find("minikube", "Secret", API_KEY_SECRET)
    assert secret.get("stringData", {}) == {"API_KEY": ""} and not secret.get("data")
    # An empty key means "no key required" to the service, as the Secret's comment says.
    assert Settings(api_key="").api_key is None
    for path in KUBERNETES.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                values = {**doc.get("data", {}), **doc.get("stringData", {})}
                assert all(value == "" for value in values.values()), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topology_spread(overlay: str) -> None:
    """Across nodes everywhere, across zones in production, counting API pods only."""
    constraints = pod_spec(find(overlay, "Deployment", DEPLOYMENT))["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c for c in constraints}
    expected = {"kubernetes.io/hostname"} | (
        {"topology.kubernetes.io/zone"} if overlay == "production" else set()
    )
    assert set(by_key) == expected
    for constraint in constraints:
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"] == API_PODS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_for_shared_track_state(overlay: str) -> None:
    """A pinned Redis with probes, reached at the address REDIS_URL names."""
    redis = find(overlay, "Deployment", "missile-classifier-redis")
    assert redis["spec"]["replicas"] == 1
    server = container(redis, "redis")
    repository, _, tag = server["image"].partition(":")
    assert repository == "redis" and re.fullmatch(r"7\.\d+\.\d+-alpine", tag), server["image"]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(server)
    service = find(overlay, "Service", "missile-classifier-redis")["spec"]
    assert selects(service["selector"], pod_labels(overlay, "missile-classifier-redis"))
    (port,) = service["ports"]
    assert port["targetPort"] == "redis"
    url = config(overlay)["REDIS_URL"]
    assert url == f"redis://missile-classifier-redis:{port['port']}/0"
    assert port["port"] == named_port(server, "redis") == 6379
    # With Redis set, the service runs WORKERS processes; the CPU limit gives each one a core.
    assert Settings(redis_url=url, workers=int(config(overlay)["WORKERS"])).effective_workers() == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_batch_job_shards_equal_completions(overlay: str) -> None:
    """An Indexed Job whose pod i scores shard i of N, with N equal to completions."""
    job = find(overlay, "Job", "missile-classifier-batch-predict")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert 1 < spec["parallelism"] <= spec["completions"]
    scorer = container(job, "batch-predict")
    assert scorer["image"] == "missile-classifier-train:latest"
    args = scorer["command"] + scorer["args"]
    assert args[:2] == ["missile-classifier", "predict"]
    options = {name: value for name, value in itertools.pairwise(args) if name.startswith("--")}
    match = re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/(\d+)", options["--shard"])
    assert match, options["--shard"]
    assert int(match.group(1)) == spec["completions"]
    assert "$(JOB_COMPLETION_INDEX)" in options["--output"]
    models = claim_mount(job, scorer, MODELS_CLAIM)
    assert options["--model"] == models["mountPath"] and models["readOnly"] is True
    data = claim_mount(job, scorer, DATA_CLAIM)["mountPath"]
    assert options["--input"].startswith(data + "/") and options["--output"].startswith(data + "/")
    # The init container waits for exactly that model and input before the shards start.
    wait = container(job, "wait-for-inputs")["args"][0]
    assert f"{options['--model']}/latest/metadata.json" in wait and options["--input"] in wait
    assert str(Path(options["--output"]).parent) in wait  # it creates the output folder


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_skips_are_well_formed_and_justified(overlay: str) -> None:
    """checkov splits `ID=reason` on "=" and crashes on a second one; every skip says why."""
    skips = [
        (obj["metadata"]["name"], key, value)
        for obj in rendered(overlay)
        for key, value in obj["metadata"].get("annotations", {}).items()
        if key.startswith("checkov.io/skip")
    ]
    assert skips, "the skips are expected in place, on the objects they concern"
    for name, key, value in skips:
        assert re.fullmatch(r"checkov\.io/skip\d+", key), (name, key)
        assert re.fullmatch(r"CKV2?_K8S_\d+=[^=]{20,}", value), (name, value)


# --- (c) agreement with the service, the ConfigMap and the Dockerfile ---------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_real_routes_on_the_configured_port(overlay: str) -> None:
    """Probe paths are served; port `http` is PORT in the ConfigMap and the settings' default."""
    api = api_container(overlay)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe_path(api, probe) in routes("GET"), probe
    port = named_port(api, "http")
    assert port == int(config(overlay)["PORT"]) == Settings.model_fields["port"].default == 8000


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_is_valid_service_settings(overlay: str) -> None:
    """Every key is a setting the service reads (or prometheus_client's folder), and valid."""
    data = config(overlay)
    fields = {name.upper() for name in Settings.model_fields}
    assert set(data) - fields == {"PROMETHEUS_MULTIPROC_DIR"}
    # Values given explicitly take precedence over this process's environment.
    settings = Settings.model_validate({key.lower(): value for key, value in data.items()})
    assert settings.store_kind == "redis" and settings.port == int(data["PORT"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_target_the_named_port(overlay: str) -> None:
    """ClusterIP on 80 and NodePort on 30080, both to the container port `http`."""
    labels = pod_labels(overlay, DEPLOYMENT)
    cluster = find(overlay, "Service", SERVICE)["spec"]
    node = find(overlay, "Service", "missile-classifier-nodeport")["spec"]
    assert cluster.get("type", "ClusterIP") == "ClusterIP" and node["type"] == "NodePort"
    for spec in (cluster, node):
        assert selects(spec["selector"], labels) and spec["selector"] == API_PODS
        (port,) = spec["ports"]
        assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")
    assert node["ports"][0]["nodePort"] == 30080


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_the_api_service_once(overlay: str) -> None:
    """It selects the ClusterIP Service only (not the NodePort one), on its port, at /metrics."""
    monitor = find(overlay, "ServiceMonitor", "missile-classifier")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    chosen = [
        s["metadata"]["name"]
        for s in of_kind(overlay, "Service")
        if selects(selector, s["metadata"].get("labels", {}))
    ]
    assert chosen == [SERVICE]
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = find(overlay, "Service", SERVICE)["spec"]["ports"]
    assert endpoint["port"] == port["name"] == "http"
    assert endpoint["path"] == "/metrics" and "/metrics" in routes("GET")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_rule_essentials(overlay: str) -> None:
    """The CRD object kubernetes-validate cannot check: groups of named rules with expressions."""
    rule = find(overlay, "PrometheusRule", "missile-classifier-alerts")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    assert groups and all(g["name"] and g["rules"] for g in groups)
    for group in groups:
        for entry in group["rules"]:
            assert entry.get("expr") and ("alert" in entry) != ("record" in entry), entry


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_exposes_real_routes_but_not_metrics(overlay: str) -> None:
    """Every path is served by the API Service's `http` port; /metrics stays in the cluster."""
    ingress = find(overlay, "Ingress", "missile-classifier-ingress")["spec"]
    paths = [p for rule in ingress["rules"] for p in rule["http"]["paths"]]
    served = routes("GET") | routes("POST")
    assert {p["path"] for p in paths} >= {"/predict", "/batch_predict"}
    for entry in paths:
        assert entry["path"] in served and entry["pathType"] == "Exact", entry["path"]
        assert entry["backend"]["service"] == {"name": SERVICE, "port": {"name": "http"}}
    assert "/metrics" not in {p["path"] for p in paths}
    if overlay == "production":
        assert ingress["tls"][0]["hosts"] == [ingress["rules"][0]["host"]]


def test_dockerfile_exposes_and_checks_the_same_port_and_path() -> None:
    """The serving image's EXPOSE and HEALTHCHECK agree with the probes and the container port."""
    stage = dockerfile_serving_stage()
    exposed = {
        int(port)
        for line in stage
        if line.upper().startswith("EXPOSE ")
        for port in re.findall(r"\d+", line)
    }
    port = named_port(api_container("production"), "http")
    assert exposed == {port}
    (healthcheck,) = [line for line in stage if line.upper().startswith("HEALTHCHECK ")]
    url = re.search(r"http://[^/'\"\s]+:(\d+)(/[^'\"\s]*)", healthcheck)
    assert url, healthcheck
    assert int(url.group(1)) == port
    assert url.group(2) == probe_path(api_container("production"), "readinessProbe")
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users and users[-1] == "10001:10001"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_briefs_debugging_commands_name_real_objects(overlay: str) -> None:
    """`kubectl logs -f deployment/missile-classifier-deployment -n missile-classifier`,
    `kubectl get hpa -n missile-classifier` and
    `kubectl port-forward svc/missile-classifier-service 8080:80 -n missile-classifier`."""
    assert find(overlay, "Namespace", NAMESPACE)
    assert find(overlay, "Deployment", DEPLOYMENT)["metadata"]["namespace"] == NAMESPACE
    service = find(overlay, "Service", SERVICE)
    assert service["metadata"]["namespace"] == NAMESPACE
    assert 80 in {p["port"] for p in service["spec"]["ports"]}
    assert [h["metadata"]["namespace"] for h in of_kind(overlay, "HorizontalPodAutoscaler")] == [
        NAMESPACE
    ]


def readme_deploy_section() -> str:
    """The README's Deploy section: the commands users copy."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Deploy\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_deploy_steps_name_what_the_manifests_hold() -> None:
    section = readme_deploy_section()
    objects = {(obj["kind"], obj["metadata"]["name"]) for obj in rendered("minikube")}
    kinds = {
        "deployment": "Deployment",
        "svc": "Service",
        "job": "Job",
        "hpa": "HorizontalPodAutoscaler",
    }
    references = re.findall(r"\b(deployment|svc|job)/([a-z0-9-]+)", section)
    assert len(references) >= 4, references
    for kind, name in references:
        assert (kinds[kind], name) in objects, f"README names {kind}/{name}, the manifests do not"
    for name in re.findall(r"minikube service ([a-z0-9-]+)", section):
        assert ("Service", name) in objects
    # Every namespace the kubectl and minikube commands use is the one the objects are in.
    commands = [line for line in section.splitlines() if re.search(r"\b(kubectl|minikube) ", line)]
    assert {ns for line in commands for ns in re.findall(r" -n ([a-z0-9-]+)", line)} == {NAMESPACE}
    # The port-forward reaches the Service's port; the Ingress host is the manifests' host.
    forwarded = re.findall(r"port-forward svc/\S+ \d+:(\d+)", section)
    service_ports = {p["port"] for p in find("minikube", "Service", SERVICE)["spec"]["ports"]}
    assert forwarded and {int(port) for port in forwarded} <= service_ports
    host = find("minikube", "Ingress", "missile-classifier-ingress")["spec"]["rules"][0]["host"]
    assert f"Host: {host}" in section
    # The files and the images the steps use exist under those names.
    for path in re.findall(r"deploy/[\w/.-]+\w", section):
        assert (ROOT / path).exists(), path
    images = {c["image"] for w in workloads("minikube") for c in all_containers(w)}
    for image in re.findall(r"-t (missile-classifier[\w-]*:latest)", section):
        assert image in images, f"the README builds {image}, no workload runs it"
