"""Tie the measured figures of README.md and docs/ to the benchmarks' results files.

Usage:
    python scripts/docs_results.py --check   # exit 1 and say where when a figure is stale
    python scripts/docs_results.py --write   # rewrite the figures from docs/results/*.json

Two kinds of figure, both read from ``docs/results/<benchmark>.json`` (see
``benchmarks/results.py``; a benchmark run with ``--record`` rewrites its file):

* **Blocks**: a table or an output listing between ``<!-- results:VIEW[:RUN] -->`` and
  ``<!-- /results -->`` (HTML comments, invisible when rendered) is generated whole by the view
  of that name in :data:`VIEWS`; ``--check`` fails unless the text between the markers is
  exactly what the view makes.
* **Figures in prose** (``docs/results/figures.toml``): a sentence such as
  ``"LSTM {models/LSTM/f1:.4f} (altitude threshold"`` names values of a results file by their
  path and how they are printed. The sentence must occur once in its document, with each value
  as the results file gives it *at the printed precision* (the tolerance: a figure printed to
  four decimals must equal the result rounded to four decimals; counts exactly). Whitespace in
  the sentence matches any whitespace, line breaks included.

Formats are Python's (``.4f``, ``,.0f``, ``.1%``) plus ``sN`` / ``,sN`` (N significant
digits, halves rounded up, ``,`` for thousands: 51,686 → ``,s4`` → 51,690) and ``pN`` (a share
as a percentage with N decimals, without the sign: 0.92 → ``p0`` → 92).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import results as results_files  # benchmarks/results.py

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(?P<open><!-- results:(?P<view>[\w.-]+)(?::(?P<run>[\w.-]+))? -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /results -->)",
    re.DOTALL,
)
PLACEHOLDER = re.compile(r"\{(?P<path>[^{}:]+)(?::(?P<spec>[^{}]*))?\}")
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?%?"
DATE = r"\d{4}-\d{2}-\d{2}"


class Results:
    """The results files under ``root``, loaded once each, with derived values added."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "docs" / "results"
        self._cache: dict[str, dict[str, Any]] = {}

    def file(self, benchmark: str) -> dict[str, Any]:
        if benchmark not in self._cache:
            path = results_files.path_of(benchmark, self.dir)
            if not path.is_file():
                raise LookupError(f"no results file {path}")
            data = results_files.load(benchmark, self.dir)
            if benchmark in DERIVED:
                data["derived"] = DERIVED[benchmark](data)
            self._cache[benchmark] = data
        return self._cache[benchmark]

    def run(self, benchmark: str, key: str | None) -> dict[str, Any]:
        runs = self.file(benchmark)["runs"]
        if key not in runs:
            raise LookupError(f"{benchmark}.json has no run {key!r} (it has {sorted(runs)})")
        results: dict[str, Any] = runs[key]["results"]
        return results

    def value(self, benchmark: str, path: str) -> Any:
        node: Any = self.file(benchmark)
        for part in path.split("/"):
            if not isinstance(node, dict) or part not in node:
                raise LookupError(f"{benchmark}.json has no value at {path!r} (no {part!r})")
            node = node[part]
        return node


# -- formatting -------------------------------------------------------------------------------


def fmt(value: Any, spec: str) -> str:
    """``value`` as the docs print it (see the module's docstring for the formats)."""
    if value is None:
        raise ValueError("the value is null (not recorded)")
    significant = re.fullmatch(r"(,?)s(\d+)", spec)
    if significant:
        comma, digits = significant[1], int(significant[2])
        if value == 0:
            return "0"
        exact = Decimal(str(value))
        places = digits - 1 - exact.adjusted()  # adjusted(): the exponent of the first digit
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        return format(rounded, f"{comma}.{max(0, places)}f")
    percent = re.fullmatch(r"p(\d+)", spec)
    if percent:
        return format(100 * value, f".{percent[1]}f")
    return format(value, spec)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _num(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


# -- views: generated blocks -------------------------------------------------------------------


def _code(lines: list[str]) -> str:
    return "```\n" + "\n".join(lines) + "\n```"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def training_comparison(results: Results, run: str | None) -> str:
    """``train_targets``' comparison table, as the benchmark prints it."""
    return _code(results_files.comparison_lines(results.run("train_targets", run)))


def mutation_table(results: Results, run: str | None) -> str:
    """The killed share per module, as ``scripts/mutation_score.py`` computes it."""
    modules = results.run("mutation", run or "default")["modules"]
    rows = [
        [
            module.removeprefix("missile_classifier."),
            str(m["mutants"]),
            str(m["killed"]),
            str(m["equivalent"]),
            str(m["survived"]),
            f"{m['score']:.1f} %",
            f"{m['target']:.0f} %",
        ]
        for module, m in modules.items()
    ]
    header = ["module", "mutants", "killed", "equivalent", "survived", "score", "target"]
    return _table(header, ["---"] + ["---:"] * 6, rows)


def robustness_table(results: Results, run: str | None) -> str:
    """One run of ``robustness``: F1, onset error, on time, flicker, max unsure per condition.

    Not-observable conditions are not starred: the text around the table says what they mean
    for the run's profile.
    """
    conditions = results.run("robustness", run)["conditions"]
    rows = [
        [
            name,
            f"{c['interval_s']:g}",
            _num(c["f1"], ".4f"),
            f"{_num(c['onset_error_median_s'])} / {_num(c['onset_error_max_s'])}",
            _pct(c["within_tolerance"]),
            _num(c["flicker"], "d"),
            _pct(c["not_established"]),
        ]
        for name, c in conditions.items()
    ]
    header = [
        "condition",
        "interval (s)",
        "F1",
        "onset error median / max, s",
        "on time",
        "flicker",
        "max unsure",
    ]
    return _table(header, ["---"] + ["---:"] * 6, rows)


def batch_cost(results: Results, run: str | None) -> str:
    """``batch_cost``'s output."""
    return _code(results_files.batch_cost_lines(results.run("batch_cost", run)))


def simulate_speed(results: Results, run: str | None) -> str:
    """``simulate_speed``'s table."""
    return _code(results_files.simulate_speed_lines(results.run("simulate_speed", run)))


def service_load(results: Results, run: str | None) -> str:
    """``service_load``'s table: every server, workers and endpoint, against the floor."""
    cells = results.run("service_load", run or "default")["cells"]
    rows = []
    for c in cells:
        size = results_files.ROWS_PER_REQUEST.get(c["endpoint"])
        rate = f"{c['median'] * size:,.0f} rows/s" if size else f"{c['median']:,.0f}"
        rows.append(
            [
                c["server"],
                str(c["workers"]),
                f"`{c['endpoint']}`",
                rate,
                " · ".join(f"{r:,.0f}" for r in c["runs"]),
                f"{c['p50_ms']:.1f} / {c['p95_ms']:.1f} / {c['p99_ms']:.1f}",
                str(c["non_2xx"] + c["socket_errors"]),
                "–" if c["floor_ratio"] is None else f"{100 * c['floor_ratio']:.0f} %",
            ]
        )
    header = [
        "server",
        "workers",
        "endpoint",
        "median req/s",
        "req/s of each run",
        "p50 / p95 / p99 ms",
        "errors",
        "of floor",
    ]
    return _table(header, ["---", "---:", "---", "---:", "---:", "---:", "---:", "---:"], rows)


def service_scoring_floor(results: Results, run: str | None) -> str:
    """``service_load``: the floor, its routes that do a prediction's unavoidable work (one point
    scored; a stream's next point scored and its memory stored in Redis), and ``/predict``."""
    cells = results.run("service_load", run or "default")["cells"]
    by = {(c["server"], c["workers"], c["endpoint"]): c for c in cells}
    rows = []
    for workers in sorted({w for s, w, e in by if s == "floor"}):
        bare = by[("floor", workers, "/")]
        for kind, route_name in _FLOOR_ROUTES.items():
            route = by.get(("floor", workers, route_name))
            if route is None:
                continue
            served = by.get(("redis", workers, f"/predict {kind}"))
            rows.append(
                [
                    str(workers),
                    kind,
                    f"{bare['median']:,.0f}",
                    f"{route['median']:,.0f}",
                    f"{100 * route['median'] / bare['median']:.1f} %",
                    "–" if served is None else f"{served['median']:,.0f}",
                    "–" if served is None else f"{100 * served['median'] / bare['median']:.1f} %",
                    "–" if served is None else f"{100 * served['median'] / route['median']:.1f} %",
                ]
            )
    header = [
        "workers",
        "prediction",
        "bare route, req/s",
        "route doing the prediction's unavoidable work",
        "of bare",
        "`/predict` (Redis)",
        "of bare",
        "of that route",
    ]
    return _table(header, ["---:", "---", "---:", "---:", "---:", "---:", "---:", "---:"], rows)


#: The floor app's route doing each kind of prediction's unavoidable work (service_load.py).
_FLOOR_ROUTES = {"single": "/score", "stream": "/score stream"}


def service_scaling(results: Results, run: str | None) -> str:
    """``service_load`` in short: median req/s (rows/s for batches) by server and workers."""
    cells = results.run("service_load", run or "default")["cells"]
    by = {(c["server"], c["workers"], c["endpoint"]): c for c in cells}
    most = max(c["workers"] for c in cells if c["server"] == "redis")
    columns = [("floor", 1), ("memory", 1), ("redis", 1), ("redis", most)]
    rows = []
    for endpoint in dict.fromkeys(c["endpoint"] for c in cells if c["server"] != "floor"):
        size = results_files.ROWS_PER_REQUEST.get(endpoint, 1)
        row = [f"`{endpoint}`" + (" (rows/s)" if size > 1 else "")]
        for server, workers in columns[1:]:
            cell = by.get((server, workers, endpoint))
            row.append("–" if cell is None else f"{cell['median'] * size:,.0f}")
        one, many = by.get(("redis", 1, endpoint)), by.get(("redis", most, endpoint))
        row.append("–" if not (one and many) else f"{many['median'] / one['median']:.2f} ×")
        rows.append(row)
    floor = [f"{by[('floor', w, '/')]['median']:,.0f}" for w in (1, most)]
    rows.append(["bare Flask app (the floor)", floor[0], floor[0], floor[1], "–"])
    header = ["requests/s", "memory, 1 worker", "Redis, 1 worker", f"Redis, {most} workers"]
    return _table([*header, f"{most} ÷ 1 worker"], ["---", "---:", "---:", "---:", "---:"], rows)


def _after(results: Results, benchmark: str, before: str | None, latest: str) -> str:
    """The run measured beside run ``before-X``: ``after-X`` once a later change re-recorded
    ``latest``, else ``latest`` itself."""
    paired = "after-" + (before or "").removeprefix("before-")
    return paired if paired in results.file(benchmark)["runs"] else latest


def service_before_after(results: Results, run: str | None) -> str:
    """``service_load``: median req/s of the code before (RUN) and after, with the floor."""
    before = results.run("service_load", run)["cells"]
    after = {
        (c["server"], c["workers"], c["endpoint"]): c
        for c in results.run("service_load", _after(results, "service_load", run, "default"))[
            "cells"
        ]
    }
    rows = []
    for c in before:
        now = after.get((c["server"], c["workers"], c["endpoint"]))
        if now is None:
            continue
        if c["server"] == "floor":
            name = "bare Flask app (floor)" if c["endpoint"] == "/" else "floor's scoring route"
        else:
            name = f"`{c['endpoint']}`"
        rows.append(
            [
                name,
                str(c["workers"]),
                f"{c['median']:,.0f} ({min(c['runs']):,.0f}–{max(c['runs']):,.0f})",
                f"{now['median']:,.0f} ({min(now['runs']):,.0f}–{max(now['runs']):,.0f})",
                f"{now['median'] / c['median']:.2f} ×",
            ]
        )
    header = ["req/s, Redis store", "workers", "before: median (range)", "after", "after ÷ before"]
    return _table(header, ["---", "---:", "---:", "---:", "---:"], rows)


def service_ab(results: Results, run: str | None) -> str:
    """``service_ab``: req/s (and, where recorded, p99 latency) of the code before (RUN) and
    after, served in alternating rounds."""
    data = results.run("service_ab", run)
    tails = all("p99_ms" in found for found in data["endpoints"].values())
    rows = []
    for endpoint, found in data["endpoints"].items():
        sides = [found["before"], found["after"]]
        row = [
            f"`{endpoint}`",
            *(f"{statistics.median(r):,.0f} ({min(r):,.0f}–{max(r):,.0f})" for r in sides),
            f"{found['ratio']:.2f} ×",
        ]
        if tails:
            row += [
                f"{statistics.median(r):.1f} (max {max(r):.1f})"
                for r in (found["p99_ms"]["before"], found["p99_ms"]["after"])
            ]
        rows.append(row)
    workers = data.get("workers", 1)
    store = "Redis store" if workers > 1 else "memory store"
    worker_text = f"{workers} worker{'s' if workers > 1 else ''}"
    header = [
        f"req/s, {worker_text}, {store}, {data['rounds']} rounds × {data['runs']} runs a side",
        "before: median (range)",
        "after",
        "after ÷ before",
    ]
    align = ["---", "---:", "---:", "---:"]
    if tails:
        header += ["p99 ms before: median (max)", "after"]
        align += ["---:", "---:"]
    return _table(header, align, rows)


def service_load_targets(results: Results, run: str | None) -> str:
    """``service_load``'s targets, each met or missed in that run."""
    targets = results.run("service_load", run or "default")["targets"]
    if all("scoring_route" in t for t in targets):
        rows = [
            [t["target"], t["value"], "✅" if t["met"] else "❌", t["scoring_route"]]
            for t in targets
        ]
        header = ["target", "measured", "met", "the floor's scoring route, same measure"]
        return _table(header, ["---", "---:", "---", "---:"], rows)
    rows = [[t["target"], t["value"], "✅" if t["met"] else "❌"] for t in targets]
    return _table(["target", "measured", "met"], ["---", "---:", "---"], rows)


def service_profile(results: Results, run: str | None) -> str:
    """``service_profile``: share of the busy samples per part, before (RUN) and after."""
    before = results.run("service_profile", run)
    after = results.run("service_profile", _after(results, "service_profile", run, "after"))
    endpoints = list(after)
    header = ["part of the request"]
    for endpoint in endpoints:
        header += [f"`{endpoint}` before", "after"]
    rows = []
    for part in after[endpoints[0]]["parts"]:
        row = [part]
        for endpoint in endpoints:
            row += [_pct1(before[endpoint]["parts"][part]), _pct1(after[endpoint]["parts"][part])]
        rows.append(row)
    rows.append(
        ["**req/s (1 worker, run without the profiler)**"]
        + [f"{side[e]['req_per_s']:,.0f}" for e in endpoints for side in (before, after)]
    )
    rows.append(
        ["**worker CPU per request, ms**"]
        + [f"{side[e]['cpu_ms_per_request']:.2f}" for e in endpoints for side in (before, after)]
    )
    return _table(header, ["---"] + ["---:"] * (len(header) - 1), rows)


def inference_threads(results: Results, run: str | None) -> str:
    """``inference_threads``: µs per call on 1 and 1,000 windows per runtime setting."""
    found = results.run("inference_threads", run or "default")
    rows = [[name, f"{t['1']:,.0f}", f"{t['1000']:,.0f}"] for name, t in found.items()]
    return _table(
        ["ONNX Runtime", "1 window, µs", "1,000 windows, µs"], ["---", "---:", "---:"], rows
    )


def _share(alone: dict[str, Any], key: str) -> str:
    """A share of the model alone, with the spread over the repeats where they were kept."""
    each = alone.get(f"{key}_each")
    spread = f" ({100 * min(each):.1f}–{100 * max(each):.1f} %)" if each else ""
    return f"{100 * alone[key]:.1f} %{spread}"


def _setup(setup: dict[str, int]) -> str:
    """How the model ran: one call at a time on several runtime threads, or calls at once."""
    if setup["calls"] == 1:
        return f"one call at a time on {setup['threads']} runtime threads"
    return f"{setup['calls']} calls at once of {setup['threads']} runtime thread each"


def predict_model_alone(results: Results, run: str | None) -> str:
    """``predict_speed``: the model alone per batch size, ``predict`` and its share of it."""
    found = results.run("predict_speed", run)
    alone = found["model_alone"]
    rows = [
        [
            f"model alone, {_setup(alone['setups'][setup])}, batches of {int(b):,}",
            f"{rate:,} windows/s",
        ]
        for setup, rates in alone["windows_per_s"].items()
        for b, rate in rates.items()
    ]
    rows.append(
        ["`predict` in memory (features, windows, model)", f"{found['memory']['median']:,} rows/s"]
    )
    rows.append(["`predict` CSV → CSV", f"{found['csv']['median']:,} rows/s"])
    top = alone["best"]
    best = f"model alone at its best ({_setup(top)}, batches of {top['batch']:,})"
    rows.append([f"`predict` CSV → CSV ÷ {best}", _share(alone, "csv_share")])
    if "csv_pandas" in found:  # runs before Arrow read the CSV have no such row
        rows.append(
            [
                "`predict` CSV → CSV, pandas reading and writing",
                f"{found['csv_pandas']['median']:,} rows/s",
            ]
        )
        rows.append([f"the same ÷ {best}", _share(alone, "pandas_share")])
    return _table(["path", "speed"], ["---", "---:"], rows)


def _pct1(value: float) -> str:
    return f"{100 * value:.1f} %"


#: Block views by name: ``<!-- results:NAME:RUN -->`` (RUN is the key of a run in the file).
VIEWS: dict[str, Callable[[Results, str | None], str]] = {
    "training-comparison": training_comparison,
    "mutation-table": mutation_table,
    "robustness-table": robustness_table,
    "batch-cost": batch_cost,
    "simulate-speed": simulate_speed,
    "service-load": service_load,
    "service-load-targets": service_load_targets,
    "service-scoring-floor": service_scoring_floor,
    "service-ab": service_ab,
    "service-profile": service_profile,
    "service-scaling": service_scaling,
    "service-before-after": service_before_after,
    "inference-threads": inference_threads,
    "predict-model-alone": predict_model_alone,
}


# -- derived values: figures the prose states about several values ----------------------------


def robustness_derived(data: dict[str, Any]) -> dict[str, Any]:
    """Per profile, over all its runs: the lowest F1s the targets speak of.

    ``derived/<profile>/lowest_f1`` (and ``lowest_condition``): over observable conditions whose
    interval is at most 2 s; ``lowest_f1_any``/``lowest_condition_any``: at any interval;
    ``min_f1/<condition>``: the lowest of the runs; ``unobservable_f1``: the lowest F1 of a
    condition whose onset is not observable; ``worst_median_s``: the largest median onset error.
    """
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for entry in data["runs"].values():
        by_profile.setdefault(entry["results"]["profile"], []).append(entry["results"])
    derived: dict[str, Any] = {}
    for profile, runs in by_profile.items():
        rows = [c for run in runs for c in run["conditions"].values()]
        seen = [c for c in rows if c["observable"] and c["f1"] is not None]
        short = [c for c in seen if c["interval_s"] <= 2.0]
        lowest = min(short, key=lambda c: c["f1"])
        lowest_any = min(seen, key=lambda c: c["f1"])
        medians = [c["onset_error_median_s"] for c in seen if c["onset_error_median_s"] is not None]
        min_f1: dict[str, float] = {}
        for c in rows:
            if c["f1"] is not None:
                min_f1[c["condition"]] = min(c["f1"], min_f1.get(c["condition"], math.inf))
        derived[profile] = {
            "lowest_f1": lowest["f1"],
            "lowest_condition": lowest["condition"],
            "lowest_f1_any": lowest_any["f1"],
            "lowest_condition_any": lowest_any["condition"],
            "min_f1": min_f1,
            "unobservable_f1": min(
                (c["f1"] for c in rows if not c["observable"] and c["f1"] is not None),
                default=None,
            ),
            "worst_median_s": max(medians, default=None),
        }
    return derived


def service_profile_derived(data: dict[str, Any]) -> dict[str, Any]:
    """``derived/redis_predictions_per_core_s``: stream predictions one Redis core can serve,
    from Redis's CPU per stream prediction in run ``after``."""
    used = data["runs"]["after"]["results"]["/predict stream"]["redis_cpu_us_per_request"]
    return {"redis_cpu_us": used, "redis_predictions_per_core_s": 1e6 / used}


def service_load_derived(data: dict[str, Any]) -> dict[str, Any]:
    """From run ``default``, with N workers, ``derived/wN/``: ``score_of_floor``, the floor's
    scoring route against its bare route; ``single_of_score``, ``/predict single`` (Redis)
    against the scoring route; ``livez_of_floor``, ``/livez`` (Redis) against the bare route;
    ``score_p99_ms``, the scoring route's p99; ``single_median`` and ``single_mean_ms``,
    ``/predict single``'s req/s and the mean latency it implies with every connection busy
    (connections ÷ req/s); ``stream_route_of_floor``, the floor's streaming route against its
    bare route, and ``stream_of_route``, ``/predict stream`` (Redis) against that route.
    ``derived/memory_livez_of_floor``: the memory store's ``/livez``."""
    results = data["runs"]["default"]["results"]
    by = {(c["server"], c["workers"], c["endpoint"]): c for c in results["cells"]}
    median = {key: cell["median"] for key, cell in by.items()}
    derived: dict[str, Any] = {}
    for workers in sorted(w for s, w, e in median if e == "/score"):
        score = median[("floor", workers, "/score")]
        single = median[("redis", workers, "/predict single")]
        derived[f"w{workers}"] = {
            "score_of_floor": score / median[("floor", workers, "/")],
            "single_of_score": single / score,
            "score_p99_ms": by[("floor", workers, "/score")]["p99_ms"],
            "single_median": single,
            "single_mean_ms": 1000 * results["connections"] / single,
        }
        if ("redis", workers, "/livez") in median:
            livez = median[("redis", workers, "/livez")] / median[("floor", workers, "/")]
            derived[f"w{workers}"]["livez_of_floor"] = livez
        if ("floor", workers, _FLOOR_ROUTES["stream"]) in median:
            route = median[("floor", workers, _FLOOR_ROUTES["stream"])]
            derived[f"w{workers}"]["stream_route_of_floor"] = (
                route / median[("floor", workers, "/")]
            )
            derived[f"w{workers}"]["stream_of_route"] = (
                median[("redis", workers, "/predict stream")] / route
            )
    if ("memory", 1, "/livez") in median:
        derived["memory_livez_of_floor"] = (
            median[("memory", 1, "/livez")] / median[("floor", 1, "/")]
        )
    return derived


def predict_speed_derived(data: dict[str, Any]) -> dict[str, Any]:
    """``derived/<run>/``: ``rest_of_model_time``, what everything but the model takes in
    ``predict`` CSV→CSV as a share of the model's own time (1 / share − 1, from the median
    share); ``repeats_at_target``, the repeats whose share reached 85 %; and, where the model
    alone ran in several set-ups, ``share_of_one_call``, the median share against one call at a
    time on ONNX Runtime's own threads alone (the ceiling of runs before calls ran at once)."""
    derived = {}
    for run, entry in data["runs"].items():
        results = entry["results"]
        alone = results.get("model_alone", {})
        if "csv_share" not in alone:
            continue
        values = {"rest_of_model_time": 1 / alone["csv_share"] - 1}
        if "csv_share_each" in alone:
            values["repeats_at_target"] = sum(v >= 0.85 for v in alone["csv_share_each"])
        if "setups" in alone:
            shares = [
                rate / max(each["threads"].values())
                for rate, each in zip(
                    results["csv"]["rows_per_s"], alone["each_round"], strict=True
                )
            ]
            values["share_of_one_call"] = statistics.median(shares)
        derived[run] = values
    return derived


DERIVED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "predict_speed": predict_speed_derived,
    "robustness": robustness_derived,
    "service_load": service_load_derived,
    "service_profile": service_profile_derived,
}


# -- checking and writing ------------------------------------------------------------------------


@dataclass
class Problem:
    doc: str
    message: str

    def __str__(self) -> str:
        return f"{self.doc}: {self.message}"


def documents(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(text: str, results: Results) -> Iterator[tuple[str, str]]:
    """``(present, wanted)`` text of every block of a document, in order."""
    for match in BLOCK.finditer(text):
        view = VIEWS.get(match["view"])
        if view is None:
            raise LookupError(f"unknown view {match['view']!r} (known: {sorted(VIEWS)})")
        wanted = match["open"] + "\n" + view(results, match["run"]) + "\n\n" + match["close"]
        yield match[0], wanted


def _pattern(text: str, values: list[str]) -> re.Pattern[str]:
    """A regex for ``text`` whose placeholders match figures shaped like their ``values``."""
    parts, last = [], 0
    for match, value in zip(PLACEHOLDER.finditer(text), values, strict=True):
        parts.append(_literal(text[last : match.start()]))
        if re.fullmatch(NUMBER, value):
            parts.append(f"({NUMBER})")
        elif re.fullmatch(DATE, value):
            parts.append(f"({DATE})")
        else:
            parts.append(r"([^\n|()]+?)")
        last = match.end()
    parts.append(_literal(text[last:]))
    return re.compile("".join(parts))


def _literal(text: str) -> str:
    """A regex for ``text`` in which any run of whitespace matches any run of whitespace."""
    return r"\s+".join(re.escape(word) for word in re.split(r"\s+", text))


def figures(root: Path) -> list[dict[str, str]]:
    path = root / "docs" / "results" / "figures.toml"
    entries: list[dict[str, str]] = tomllib.loads(path.read_text(encoding="utf-8"))["figure"]
    return entries


def _figure(results: Results, entry: dict[str, str]) -> tuple[re.Pattern[str], str]:
    """The pattern finding a figure's sentence in its document, and the sentence as it should be."""
    text, prefix = entry["text"], entry.get("at", "")
    values = []
    for match in PLACEHOLDER.finditer(text):
        path = f"{prefix}/{match['path']}" if prefix else match["path"]
        try:
            values.append(fmt(results.value(entry["results"], path), match["spec"] or ""))
        except (LookupError, ValueError) as error:
            raise LookupError(f"figure {text!r}: {entry['results']}.json {path}: {error}") from None
    pieces = iter(values)
    wanted = PLACEHOLDER.sub(lambda _: next(pieces), text)
    return _pattern(text, values), wanted


def run(root: Path, write: bool) -> list[Problem]:
    """Check (or rewrite) every block and figure under ``root``; the problems left."""
    results = Results(root)
    problems: list[Problem] = []
    texts = {path: path.read_text(encoding="utf-8") for path in documents(root)}
    for path, text in texts.items():
        name = str(path.relative_to(root))
        try:
            for present, wanted in list(blocks(text, results)):
                if present != wanted:
                    if write:
                        texts[path] = texts[path].replace(present, wanted, 1)
                    else:
                        problems.append(Problem(name, _differs(present, wanted)))
        except LookupError as error:
            problems.append(Problem(name, str(error)))
    for entry in figures(root):
        path = root / entry["doc"]
        try:
            pattern, wanted = _figure(results, entry)
        except LookupError as error:
            problems.append(Problem(entry["doc"], str(error)))
            continue
        found = list(pattern.finditer(texts[path]))
        if len(found) != 1:
            how = "not found" if not found else f"found {len(found)} times"
            problems.append(Problem(entry["doc"], f"figure {entry['text']!r} {how}"))
            continue
        present = found[0][0]
        if _normal(present) != _normal(wanted):
            if write:
                start, end = found[0].span()
                texts[path] = texts[path][:start] + wanted + texts[path][end:]
            else:
                message = f"stale figure: {present!r}, results give {wanted!r}"
                problems.append(Problem(entry["doc"], message))
    if write:
        for path, text in texts.items():
            if text != path.read_text(encoding="utf-8"):
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(root)}")
    return problems


def _normal(text: str) -> str:
    return " ".join(text.split())


def _differs(present: str, wanted: str) -> str:
    for have, want in zip(present.splitlines(), wanted.splitlines(), strict=False):
        if have != want:
            return f"stale block {wanted.splitlines()[0]!r}: has {have!r}, results give {want!r}"
    return f"stale block {wanted.splitlines()[0]!r}: its length differs from the results'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail when a figure is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the figures from the results")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    problems = run(args.root, write=args.write)
    for problem in problems:
        print(f"STALE {problem}", file=sys.stderr)
    if problems:
        print(
            "README/docs figures disagree with docs/results/*.json: "
            "run `make docs` (python scripts/docs_results.py --write) or re-record the benchmark",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
