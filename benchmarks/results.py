"""The results files of the benchmarks: ``docs/results/<benchmark>.json``.

Every figure the README and ``docs/`` quote from a measurement is read from one of these files
(``scripts/docs_results.py`` regenerates or checks them). A file holds the runs of one
benchmark, keyed by what was measured (``challenge-100-42``: profile, tracks, seed), each run
with when, where and how it was measured::

    {
      "benchmark": "train_targets",
      "runs": {
        "challenge-100-42": {
          "date": "2026-12-02",
          "machine": {"nproc": 2, "cpu": "AMD EPYC"},
          "command": "python benchmarks/train_targets.py --profile challenge ...",
          "commit": "a6c47d4...",
          "source": "recorded by the benchmark",
          "results": {...}
        }
      }
    }

A benchmark run with ``--record`` replaces its run's entry (the other runs stay) through
:func:`record`. This module needs only the standard library, so the docs check stays fast.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"


def machine() -> dict[str, Any]:
    """The measuring machine: number of CPUs and the CPU model."""
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu}


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def path_of(benchmark: str, results_dir: Path | None = None) -> Path:
    """Where ``benchmark``'s results file is (in :data:`RESULTS_DIR` unless told)."""
    return (results_dir or RESULTS_DIR) / f"{benchmark}.json"


def load(benchmark: str, results_dir: Path | None = None) -> dict[str, Any]:
    """The results file of ``benchmark`` (an empty one if there is none yet)."""
    path = path_of(benchmark, results_dir)
    if not path.is_file():
        return {"benchmark": benchmark, "runs": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def record(
    benchmark: str,
    key: str,
    results: dict[str, Any],
    *,
    results_dir: Path | None = None,
    argv: list[str] | None = None,
) -> Path:
    """Write ``results`` as run ``key`` of ``benchmark``'s file, dated today; return the path."""
    data = load(benchmark, results_dir)
    args = sys.argv if argv is None else argv
    script = Path(args[0])
    if script.is_absolute() and script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    data["runs"][key] = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "command": shlex.join(["python", str(script), *args[1:]]),
        "commit": _commit(),
        "source": "recorded by the benchmark",
        "results": results,
    }
    data["runs"] = dict(sorted(data["runs"].items()))
    path = path_of(benchmark, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_plain)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (what ``json`` cannot write itself)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {value!r}")


#: Samples per request of ``service_load``'s batch endpoints (the others carry one): rows/s.
ROWS_PER_REQUEST = {"/batch_predict 100": 100, "/batch_predict 1000": 1_000}


def num(value: float | None, spec: str = ".2f") -> str:
    """``value`` formatted, ``-`` for none (an onset never predicted)."""
    return "-" if value is None else format(value, spec)


def comparison_lines(results: dict[str, Any]) -> list[str]:
    """``train_targets``' comparison table, as the benchmark prints it and the README shows it."""
    lines = [
        f"{'model':<20} {'F1':>7} {'onset med s':>11} {'onset max s':>11} {'≤0.5 s':>7} "
        f"{'missed':>6} {'flicker':>7}"
    ]
    for name, m in results["models"].items():
        lines.append(
            f"{name:<20} {m['f1']:>7.4f} {num(m['onset_median_s']):>11} "
            f"{num(m['onset_max_s']):>11} {m['within_tolerance']:>7.1%} "
            f"{m['missed_onsets']:>6} {m['flicker']:>7}"
        )
    return lines


def batch_cost_lines(results: dict[str, Any]) -> list[str]:
    """``batch_cost``'s output, as the benchmark prints it and docs/reliability.md shows it."""
    points = results["points"]
    lines = []
    for name, t in results["requests"].items():
        lines.append(
            f"{points:,} points {name:<17} median {t['median_s']:.3f} s "
            f"(min {t['min_s']:.3f}, max {t['max_s']:.3f}, {t['runs']} runs)"
        )
    lines.append(f"ratio without track_id / in tracks: {results['ratio']:.2f} (target <= 2)")
    return lines


def simulate_speed_lines(results: dict[str, Any]) -> list[str]:
    """``simulate_speed``'s table, as the benchmark prints it and docs/simulator.md shows it."""
    lines = [
        f"{'profile':<10} {'tracks':>7} {'rows':>10} {'simulate s':>11} {'rows/s':>11} "
        f"{'write s':>8} {'MB':>6}"
    ]
    for profile, p in results["profiles"].items():
        lines.append(
            f"{profile:<10} {p['tracks']:>7} {p['rows']:>10,} {p['simulate_s']:>11.2f} "
            f"{p['rows_per_s']:>11,.0f} {p['write_s']:>8.2f} {p['megabytes']:>6.0f}"
        )
    return lines
