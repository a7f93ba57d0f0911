"""Benchmark: a bundle on held-out tracks as deployed sensors see them (the degradation suite).

Usage:
    python benchmarks/robustness.py --model models --data data/test.csv [--seed 0] [--record]

Scores the labeled tracks intact and under every condition of
``missile_classifier.training.robustness.CONDITIONS`` (other sampling rates, irregular sampling,
lost rows, noise, missing intensity, a sensor bias, several sensors, late pick-up), labels
taken from the intact tracks, and prints one row per condition: F1, the onset error (median and
maximum, in seconds and in samples of the condition's interval), onsets on time (within one
interval + 0.5 s), missed / false onsets, flicker, and the share of rows whose answer says the
stream's maximum is not established (it never saw the climb to it). ``--record`` writes every
row as run ``<profile>-<tracks>-<seed>`` of docs/results/robustness.json, named after the
``manifest.json`` that ``simulate`` wrote beside ``--data`` (else after the data's folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import results as results_files  # benchmarks/results.py
from missile_classifier.schema import load_tracks
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.training.robustness import robustness


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, default=Path("data/test.csv"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--record", action="store_true", help="write the results to docs/results/robustness.json"
    )
    args = parser.parse_args()
    service = ModelInferenceService(args.model)
    frame = load_tracks(args.data, require_labels=True)
    print(f"{service.model_version} on {args.data} (seed {args.seed})")
    print(
        f"{'condition':<33} {'dt s':>5} {'F1':>7} {'onset med s/smp':>16} "
        f"{'onset max s/smp':>16} {'on time':>8} {'miss/false':>10} {'flicker':>7} "
        f"{'max unsure':>10}"
    )
    rows = robustness(service, frame, seed=args.seed)
    for row in rows:
        name = row["condition"] + ("" if row["observable"] else " *")
        median = (
            f"{_cell(row['onset_error_median_s'], '.2f')}/"
            f"{_cell(row['onset_error_median_samples'], '.1f')}"
        )
        worst = (
            f"{_cell(row['onset_error_max_s'], '.2f')}/"
            f"{_cell(row['onset_error_max_samples'], '.1f')}"
        )
        print(
            f"{name:<33} {row['interval_s']:>5.2f} {row['f1']:>7.4f} {median:>16} {worst:>16} "
            f"{_cell(row['within_tolerance'], '.0%'):>8} "
            f"{row['missed_onsets']:>4}/{row['false_onsets']:<5} {row['flicker']:>7} "
            f"{row['not_established']:>10.0%}"
        )
    print("* onset not observable (the track is first seen after its apogee)")
    print("max unsure: rows answered with maximum_established false (the climb not seen)")
    if args.record:
        dataset = _dataset(args.data)
        results = {
            **dataset,
            "model_version": service.model_version,
            "degradation_seed": args.seed,
            "conditions": {row["condition"]: row for row in rows},
        }
        key = "-".join(str(dataset[k]) for k in ("profile", "tracks", "seed"))
        print(f"recorded {results_files.record('robustness', key, results)}")


def _dataset(data: Path) -> dict[str, Any]:
    """Profile, number of tracks and seed of the dataset ``data`` belongs to."""
    manifest = data.parent / "manifest.json"
    if not manifest.is_file():
        return {"profile": data.parent.name, "tracks": "?", "seed": "?"}
    info = json.loads(manifest.read_text(encoding="utf-8"))
    tracks = info["train"]["tracks"] + info["test"]["tracks"]
    return {"profile": info["profile"], "tracks": tracks, "seed": info["seed"]}


if __name__ == "__main__":
    main()
