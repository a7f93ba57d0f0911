"""Mutation score per module after `mutmut run`, checked against the targets in pyproject.toml.

Usage (what `make mutation` runs after `mutmut run`):
    python scripts/mutation_score.py [--record]

A mutant counts as killed when a test failed or timed out under it. Mutants listed in
``tests/mutation_equivalents.toml`` are equivalent (no test can tell them from the original);
each entry records the mutated line, so an entry that no longer names that mutant (after the
code changed and mutmut renumbered) fails the check instead of hiding another mutant.
Exit status 1 when a module is below its target, has no mutants, or an entry is stale.
``--record`` also writes the table to docs/results/mutation.json, which the README's mutation
table is generated from (``make docs``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import results as results_files  # benchmarks/results.py

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(Path(sys.executable).parent / "mutmut")
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
#: ``missile_classifier.scoring.windows.xǁScalerǁtransform__mutmut_3: survived``
_RESULT = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ]\S+__mutmut_\d+: (?P<status>.+)$")
_KILLED = {"killed", "timeout"}


def _mutmut(*args: str) -> str:
    done = subprocess.run(
        [MUTMUT, *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=600
    )
    return done.stdout


def results() -> dict[str, dict[str, str]]:
    """Status of every mutant, by module then mutant name."""
    by_module: dict[str, dict[str, str]] = defaultdict(dict)
    for line in _mutmut("results", "--all", "true").splitlines():
        match = _RESULT.match(line)
        if match:
            name = line.split(":")[0].strip()
            by_module[match["module"]][name] = match["status"].strip()
    return by_module


def equivalents() -> dict[str, dict[str, str]]:
    """The listed equivalent mutants, by name."""
    if not EQUIVALENTS.is_file():
        return {}
    entries = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8")).get("equivalent", [])
    return {entry["mutant"]: entry for entry in entries}


def stale_equivalents(listed: dict[str, dict[str, str]], status: dict[str, str]) -> list[str]:
    """Listed mutants that do not exist, were killed, or no longer make the recorded change."""
    problems = []
    for name, entry in listed.items():
        if status.get(name) != "survived":
            problems.append(f"{name}: listed as equivalent but {status.get(name, 'unknown')}")
            continue
        added = [
            line[1:].strip()
            for line in _mutmut("show", name).splitlines()
            if line.startswith("+") and not line.startswith("+++")
        ]
        if entry["line"].strip() not in added:
            problems.append(f"{name}: no longer changes a line to {entry['line']!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Print the table (and record it with ``--record``); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--record", action="store_true", help="write the table to docs/results/mutation.json"
    )
    args = parser.parse_args(argv)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    targets: dict[str, float] = pyproject["tool"]["missile-classifier"]["mutation-targets"]
    by_module = results()
    listed = equivalents()
    status = {name: s for module in by_module.values() for name, s in module.items()}
    failures = stale_equivalents(listed, status)
    table: dict[str, dict[str, Any]] = {}
    print(
        f"{'module':45} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'survived':>9} "
        f"{'score':>7} {'target':>7}"
    )
    for module, target in targets.items():
        mutants = by_module.get(module, {})
        counts = Counter(
            "equivalent" if name in listed else ("killed" if s in _KILLED else s)
            for name, s in mutants.items()
        )
        judged = len(mutants) - counts["equivalent"]
        score = 100.0 * counts["killed"] / judged if judged else 0.0
        table[module] = {
            "mutants": len(mutants),
            "killed": counts["killed"],
            "equivalent": counts["equivalent"],
            "survived": judged - counts["killed"],
            "score": score,
            "target": target,
        }
        print(
            f"{module:45} {len(mutants):>8} {counts['killed']:>7} {counts['equivalent']:>7} "
            f"{judged - counts['killed']:>9} {score:>6.1f}% {target:>6.0f}%"
        )
        if not mutants:
            failures.append(f"{module}: no mutants (is it in [tool.mutmut] only_mutate?)")
        elif score < target:
            failures.append(f"{module}: {score:.1f}% killed, below the target {target:.0f}%")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if args.record:
        total = sum(row["mutants"] for row in table.values())
        record = {"mutants": total, "modules": table, "failures": failures}
        print(f"recorded {results_files.record('mutation', 'default', record)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
