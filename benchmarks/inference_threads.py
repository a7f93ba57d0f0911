"""Benchmark: ONNX Runtime threads per worker — time per call of the bundle's model.

Usage:
    python benchmarks/inference_threads.py --model models [--record]

Times the bundle's ONNX session on random windows of one row (a ``/predict``) and of 1,000
rows (a large ``/batch_predict``), with one intra-op thread, with two spinning (ONNX Runtime's
default) and with two not spinning (what a server must use to leave idle cores alone). Prints
microseconds per call, the median of five rounds; ``--record`` writes run ``default`` of
docs/results/inference_threads.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import results as results_files  # benchmarks/results.py
from missile_classifier.scoring.inference import ModelInferenceService

SETTINGS = {"1 thread": (1, True), "2 spinning": (2, True), "2 not spinning": (2, False)}


def per_call_us(service: ModelInferenceService, rows: int) -> float:
    """Median over five rounds of the microseconds one call on ``rows`` windows takes."""
    windows = np.random.default_rng(0).random(
        (rows, service.scaler.sequence_length, service.scaler.n_inputs), dtype=np.float32
    )
    service.predict_windows(windows)  # warm-up
    calls = max(10, 2_000 // rows)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            service.predict_windows(windows)
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return round(statistics.median(rounds), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    found: dict[str, dict[str, float]] = {}
    for name, (threads, spinning) in SETTINGS.items():
        service = ModelInferenceService(args.model, threads=threads, spinning=spinning)
        found[name] = {str(rows): per_call_us(service, rows) for rows in (1, 1_000)}
        print(
            f"{name:<15} 1 window {found[name]['1']:8.1f} µs   "
            f"1,000 windows {found[name]['1000']:9.1f} µs"
        )
    if args.record:
        print(f"recorded {results_files.record('inference_threads', 'default', found)}")


if __name__ == "__main__":
    main()
