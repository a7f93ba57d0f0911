"""deploy/monitoring: alert rules, their PrometheusRule, the Grafana dashboard, the kustomization.

Rules and panels are only worth something if they query what the service really exports: a
misspelt metric or label value makes an alert that never fires and a panel that stays empty,
and nothing else would notice. So the slow tests start the real server, make every kind of
request, and check each name used by any rule or panel against the server's /metrics page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.metrics import MetricWrapperBase

from missile_classifier.service import metrics
from redis_server import RedisServer
from server import Server

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
RULE_TESTS = MONITORING / "alerts.test.yaml"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
KUSTOMIZATION = MONITORING / "kustomization.yaml"
BASE = ROOT / "deploy" / "kubernetes" / "base"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

#: Series Prometheus makes itself for every target; the service cannot export them.
PROMETHEUS_SERIES = frozenset({"up"})
#: Labels the scrape adds (ServiceMonitor target labels); they are not on the /metrics page.
TARGET_LABELS = frozenset({"namespace", "job", "pod", "instance"})
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REGENERATE = (
    "cd deploy/monitoring && { sed '/^spec:$/q' prometheusrule.yaml; "
    "sed -n '/^groups:/,$p' alerts.rules.yaml | sed 's/^./  &/'; } > prometheusrule.yaml.new "
    "&& mv prometheusrule.yaml.new prometheusrule.yaml"
)

# --- reading PromQL -------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")
# An identifier not glued to a number (the "m" of "[5m]") or to a variable.
_IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
#: PromQL keywords and number words (case-insensitive, like PromQL).
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    """Every metric (or recorded series) name a PromQL expression selects."""
    text = _STRING.sub('""', expr)  # strings first: they may hold braces or brackets
    text = _MATCHERS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        followed_by = text[match.end() :].lstrip()[:1]
        if followed_by != "(" and match.group().lower() not in _KEYWORDS:  # "(": a function
            names.add(match.group())
    return names


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring/group_left/group_right clauses."""
    found: set[str] = set()
    for _, labels in _LABEL_LIST.findall(_STRING.sub('""', expr)):
        found.update(label.strip() for label in labels.split(",") if label.strip())
    return found


def matchers(expr: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of every label matcher."""
    return [(label, op, value) for label, op, value in _MATCHER.findall(expr)]


def template_query(query: str) -> str:
    """The PromQL inside a Grafana variable query (``label_values(selector, label)``)."""
    found = _LABEL_VALUES.match(query)
    return found.group(1) if found else query


# --- the files ------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_file() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(RULES)
    return data


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_file()["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def query_panels() -> list[dict[str, Any]]:
    """Every panel that shows data (rows only group panels)."""
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def queries() -> dict[str, str]:
    """Every PromQL expression shipped, keyed by where it is (for failure messages)."""
    found = {f"rule {r.get('record') or r.get('alert')}": str(r["expr"]) for r in all_rules()}
    for panel in query_panels():
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable {variable['name']}"] = template_query(variable["query"])
    return found


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# --- tests without a server -----------------------------------------------------------------


def test_name_extraction_sees_through_promql_syntax() -> None:
    """The cross-check below is only as good as this parser: it must miss no name."""
    expr = (
        'sum by (endpoint, le) (rate(a_bucket{x="{y}[1m]", z=~"$v|w"}[$__rate_interval] offset 5m))'
        " + max_over_time(d[1h:5m])"
        " / on (job) group_left (version) rec:b:rate5m > bool 0.5"
        " and absent(up) unless c_total or vector(1) * -Inf"
    )
    assert metric_names(expr) == {"a_bucket", "d", "rec:b:rate5m", "up", "c_total"}
    assert grouping_labels(expr) == {"endpoint", "le", "job", "version"}
    assert matchers(expr) == [("x", "=", "{y}[1m]"), ("z", "=~", "$v|w")]
    assert template_query('label_values(m{a=~"$b"}, job)') == 'm{a=~"$b"}'


def test_promtool_check_rules_passes() -> None:
    """The rule file Prometheus would load is valid (syntax, PromQL, templates)."""
    result = tool(PROMTOOL, "check", "rules", str(RULES.relative_to(ROOT)))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    """Each alert fires on its input series and stays quiet on the harmless ones."""
    result = tool(PROMTOOL, "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_alert_is_actionable_and_has_a_firing_and_a_quiet_unit_test() -> None:
    """An alert without a test could never fire (or always fire) unnoticed."""
    alerts = {rule["alert"]: rule for rule in all_rules() if "alert" in rule}
    assert len(alerts) >= 5
    for name, rule in alerts.items():
        assert rule.get("for"), f"{name}: no `for:` (would page on one bad evaluation)"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        for key in ("summary", "description", "runbook"):
            assert str(rule["annotations"].get(key, "")).strip(), f"{name}: no {key}"
    tests = load_yaml(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]  # the shipped file is the tested one
    cases = [case for group in tests["tests"] for case in group.get("alert_rule_test") or []]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert firing == set(alerts), f"firing tests missing for {set(alerts) - firing}"
    assert quiet == set(alerts), f"quiet tests missing for {set(alerts) - quiet}"
    for case in cases:
        for expected in case.get("exp_alerts") or []:
            assert "severity" in expected["exp_labels"], case["alertname"]
            assert set(expected["exp_annotations"]) == {"summary", "description", "runbook"}


def test_prometheus_rule_holds_exactly_the_rule_file() -> None:
    """One source of truth: the PrometheusRule must not drift from the tested rule file."""
    resource = load_yaml(PROMETHEUS_RULE)
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "missile-classifier-alerts"
    assert "namespace" not in resource["metadata"]  # the including base sets it
    assert "release" in resource["metadata"]["labels"]  # kube-prometheus-stack's ruleSelector
    assert resource["spec"] == rule_file(), f"out of date; regenerate it:\n{REGENERATE}"


def test_dashboard_queries_through_the_datasource_variable() -> None:
    """Every panel queries, and only through $datasource, so it works on any Grafana."""
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["uid"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    # No hard-coded datasource anywhere: panels, targets and query variables alike.
    sources = [value for key, value in walk(board) if key == "datasource"]
    assert sources and all(source == DATASOURCE for source in sources), sources
    panels = query_panels()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        targets = panel.get("targets") or []
        assert targets, f"{panel['title']}: no query"
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target.get("datasource") == DATASOURCE, panel["title"]
            assert metric_names(target.get("expr", "")), f"{panel['title']}: empty query"
    # Panels do not overlap and fit the 24-column grid.
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_dashboard_shows_every_metric_the_service_defines() -> None:
    """A metric added to the service without a panel is a blind spot: make it visible."""
    defined = {
        family.name
        for collector in vars(metrics).values()
        if isinstance(collector, MetricWrapperBase)
        for family in collector.describe()
    }
    shown = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in query_panels()
        for target in panel["targets"]
        for name in metric_names(target["expr"])
    }
    assert len(defined) >= 9
    assert defined <= shown, f"no panel for {defined - shown}"


def test_kustomization_renders_rules_and_dashboard_without_a_namespace() -> None:
    """deploy/kubernetes/base includes this folder and sets the namespace itself."""
    assert "namespace" not in load_yaml(KUSTOMIZATION)
    result = tool(KUBECTL, "kustomize", str(MONITORING.relative_to(ROOT)))
    assert result.returncode == 0, result.stderr
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout)}
    assert set(documents) == {"ConfigMap", "PrometheusRule"}
    assert all("namespace" not in doc["metadata"] for doc in documents.values())
    config_map = documents["ConfigMap"]
    assert config_map["metadata"]["name"] == "missile-classifier-grafana-dashboard"  # no hash
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # the Grafana sidecar's
    assert json.loads(config_map["data"]["missile-classifier.json"]) == dashboard()
    assert documents["PrometheusRule"]["spec"] == rule_file()


def test_base_renders_the_monitoring_objects_into_the_namespace() -> None:
    """The colleague's base must include this folder; then both objects get its namespace."""
    if not (BASE / "kustomization.yaml").exists():
        pytest.skip("deploy/kubernetes/base/kustomization.yaml is not written yet")
    result = tool(KUBECTL, "kustomize", str(BASE.relative_to(ROOT)))
    assert result.returncode == 0, result.stderr
    ours = {
        (doc["kind"], doc["metadata"]["name"]): doc["metadata"].get("namespace")
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc["kind"] in {"ConfigMap", "PrometheusRule"}
    }
    assert ours[("PrometheusRule", "missile-classifier-alerts")] == "missile-classifier"
    assert ours[("ConfigMap", "missile-classifier-grafana-dashboard")] == "missile-classifier"


# --- against the real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def scrape(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """/metrics of a real two-worker server with Redis, after every kind of request."""
    log = tmp_path_factory.mktemp("monitoring") / "server.log"
    with RedisServer() as redis:
        env = {"MODEL_PATH": str(trained_bundle / "models"), "REDIS_URL": redis.url}
        with Server(env, log, workers=2) as server:
            session = requests.Session()

            def call(method: str, path: str, status: int, **kwargs: Any) -> None:
                answer = session.request(method, server.url + path, timeout=30, **kwargs)
                assert answer.status_code == status, f"{method} {path}: {answer.text}"

            point = {"latitude": 50.0, "longitude": 8.0, "altitude": 90_000.0}
            for path in ("/livez", "/health", "/info", "/openapi.json", "/metrics"):
                call("GET", path, 200)
            for step in range(3):  # one stream, point by point (Redis-backed)
                sample = {**point, "track_id": 7, "sensor_id": 1, "timestamp": float(step)}
                call("POST", "/predict", 200, json=sample)
            call("POST", "/predict", 200, json=point)  # a point on its own
            samples = [{**point, "track_id": 1, "timestamp": float(t)} for t in range(4)]
            call("POST", "/batch_predict", 200, json={"samples": samples})
            json_header = {"Content-Type": "application/json"}
            call("POST", "/predict", 400, data=b"{not json", headers=json_header)
            call("GET", "/no-such-path", 404)  # the "unmatched" endpoint label
            return session.get(server.url + "/metrics", timeout=30).text


def exported(scrape: str) -> dict[str, list[dict[str, str]]]:
    """Series names on a /metrics page, each with the label sets of its samples."""
    series: dict[str, list[dict[str, str]]] = {}
    for line in scrape.splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            name = name.split(" ")[0]
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest.rpartition("}")[0]))
            series.setdefault(name, []).append(labels)
    return series


@pytest.mark.slow
def test_every_metric_in_rules_and_dashboard_is_exported(scrape: str) -> None:
    """A metric the service does not export (or a typo) would make a silent rule or panel."""
    names = set(exported(scrape))
    recorded = {rule["record"] for rule in all_rules() if "record" in rule}
    assert recorded and all(":" in name for name in recorded)  # cannot clash with metrics
    missing = {
        where: sorted(metric_names(expr) - names - recorded - PROMETHEUS_SERIES)
        for where, expr in queries().items()
    }
    assert not {where: gone for where, gone in missing.items() if gone}


@pytest.mark.slow
def test_every_label_and_value_matched_on_is_exported(scrape: str) -> None:
    """A label or value that never occurs (endpoint="/batch-predict") matches nothing."""
    series = exported(scrape)
    values: dict[str, set[str]] = {}
    for samples in series.values():
        for labels in samples:
            for label, value in labels.items():
                values.setdefault(label, set()).add(value)
    problems = []
    for where, expr in queries().items():
        for label in grouping_labels(expr) - TARGET_LABELS:
            if label not in values:
                problems.append(f"{where}: groups by {label}, which no series has")
        for label, op, value in matchers(expr):
            if label in TARGET_LABELS or "$" in value:
                continue  # added by the scrape, or a dashboard variable
            if label not in values:
                problems.append(f"{where}: matches on {label}, which no series has")
                continue
            # Literal values and literal alternatives ("/livez|/health") must each occur;
            # patterns such as "5.." are left alone (no 5xx was provoked).
            literals = [value] if op in ("=", "!=") else value.split("|")
            for literal in literals:
                if re.fullmatch(r"[\w/+-]+(\.json)?", literal) and literal not in values[label]:
                    problems.append(f"{where}: {label}{op}{value!r}: no series has {literal!r}")
    assert not problems, "\n".join(problems)
