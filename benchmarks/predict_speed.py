"""Benchmark: rows per second of ``predict`` (CSV in, CSV out) and of in-memory batch scoring.

Usage:
    python benchmarks/predict_speed.py --model models [--tracks 300] [--repeats 3] [--record]

Simulates ``--tracks`` ballistic tracks (1–3 sensors each, irregular sampling) into a CSV,
then times (a) ``predict_csv`` end to end, reading, validating, featurising, scoring and
writing, with Arrow's CSV reader and writer (the default) and, in the same repeat, with
pandas reading and writing every cell (``reader="pandas"``, the code before Arrow), (b)
``ModelInferenceService.predict_batch`` on the same rows already in memory, and (c) the model
alone: ONNX Runtime on ready windows at several batch sizes (the ceiling the scoring path is
compared with), just before and just after each repeat's (a), so that each repeat's share of
the model's speed compares figures measured seconds apart (the mean of the two rounds), not a
whole run apart. Prints the median over the repeats; ``--record`` writes every repeat's
rows/s and shares, their median, minimum and maximum as run ``ballistic-<tracks>`` of
docs/results/predict_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

import results as results_files  # benchmarks/results.py
from missile_classifier.predict import predict_csv
from missile_classifier.schema import frame_columns
from missile_classifier.scoring.inference import ModelInferenceService, usable_cores
from missile_classifier.simulation.dataset import simulate_dataset, write_csv

BATCHES = (256, 1024, 4096)
CORES = usable_cores()  # as predict counts them (affinity, CPU quota)
#: How the model alone runs: one call at a time on ONNX Runtime's threads (one per core), or a
#: call per core at once with one runtime thread each (``predict``'s set-up).
SETUPS = {"threads": {"threads": CORES, "calls": 1}, "calls": {"threads": 1, "calls": CORES}}


def model_alone(services: dict[str, ModelInferenceService]) -> dict[str, dict[str, int]]:
    """Windows/s of the bundle's ONNX session alone, per set-up and batch size, in one round."""
    rates: dict[str, dict[str, int]] = {}
    for setup, service in services.items():
        length, inputs = service.scaler.sequence_length, service.scaler.n_inputs
        session, name = service._session, service._input
        rates[setup] = {}
        with ThreadPoolExecutor(service.calls) as pool:
            for batch in BATCHES:
                windows = np.random.default_rng(0).random((batch, length, inputs), np.float32)
                call = partial(session.run, None, {name: windows})
                _run_all(pool, call, service.calls)  # warm-up, every thread
                calls = max(3 * service.calls, 80_000 // batch)
                start = time.perf_counter()
                _run_all(pool, call, calls)
                rates[setup][str(batch)] = round(batch * calls / (time.perf_counter() - start))
    return rates


def _mean_rates(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Each set-up and batch size's mean of two rounds: a ceiling measured on both sides of
    the run it is compared with, so a machine whose speed drifts within seconds (a shared
    host) moves both figures alike."""
    return {
        setup: {b: round((rate + after[setup][b]) / 2) for b, rate in rates.items()}
        for setup, rates in before.items()
    }


def _run_all(pool: ThreadPoolExecutor, call: Callable[[], object], times: int) -> None:
    for future in [pool.submit(call) for _ in range(times)]:
        future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--record", action="store_true", help="write the results to docs/results/predict_speed.json"
    )
    parser.add_argument("--key", help="the run's key in the results file (ballistic-<tracks>)")
    args = parser.parse_args()
    service = ModelInferenceService(args.model)  # predict's default: a call per core
    alone_services = {
        k: ModelInferenceService(args.model, threads=v["threads"], calls=v["calls"])
        for k, v in SETUPS.items()
    }
    frame = simulate_dataset("ballistic", args.tracks, seed=9, test_fraction=0.0).train
    columns = frame_columns(frame)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        write_csv(frame, source)
        csv_times: list[float] = []
        pandas_times: list[float] = []
        memory_times: list[float] = []
        rounds: list[dict[str, dict[str, int]]] = []
        for repeat in range(args.repeats):
            # Alternate which reader goes first, so neither always meets a warmer machine.
            for reader in ("arrow", "pandas") if repeat % 2 == 0 else ("pandas", "arrow"):
                if reader == "arrow":  # the ceiling just before and just after (see below)
                    before = model_alone(alone_services)
                seconds = predict_csv(service, source, target, reader=reader).seconds
                (csv_times if reader == "arrow" else pandas_times).append(seconds)
                if reader == "arrow":
                    rounds.append(_mean_rates(before, model_alone(alone_services)))
            start = time.perf_counter()
            service.predict_batch(columns)
            memory_times.append(time.perf_counter() - start)
    rows = len(frame)
    results: dict[str, object] = {"tracks": args.tracks, "rows": rows}
    for key, name, times in (
        ("csv", "predict CSV→CSV", csv_times),
        ("csv_pandas", "  read by pandas", pandas_times),
        ("memory", "in-memory batch", memory_times),
    ):
        median = statistics.median(times)
        print(
            f"{name:<16} {rows:>10,} rows  median {median:6.2f} s  {rows / median:>10,.0f} rows/s"
        )
        each = [round(rows / t) for t in times]
        results[key] = {
            "rows_per_s": each,
            "median": round(rows / median),
            "min": min(each),
            "max": max(each),
        }
    alone = {
        setup: {b: round(statistics.median(r[setup][b] for r in rounds)) for b in rates}
        for setup, rates in rounds[0].items()
    }
    best_setup, best_batch = max(
        ((setup, b) for setup, rates in alone.items() for b in rates),
        key=lambda key: alone[key[0]][key[1]],
    )
    for setup, rates in alone.items():
        threads, calls = SETUPS[setup]["threads"], SETUPS[setup]["calls"]
        for batch, rate in rates.items():
            print(
                f"model alone, {calls} call(s) of {threads} thread(s), batch {int(batch):>5,}"
                f"  {rate:>10,} windows/s"
            )
    # Shares within each repeat (the machine's speed drifts between repeats), then the median.
    # Each repeat's best of every set-up and batch size: a ceiling that noise can only raise.
    ceiling = [max(rate for rates in r.values() for rate in rates.values()) for r in rounds]
    csv_shares = [rows / t / c for t, c in zip(csv_times, ceiling, strict=True)]
    pandas_shares = [rows / t / c for t, c in zip(pandas_times, ceiling, strict=True)]
    speedups = [p / a for a, p in zip(csv_times, pandas_times, strict=True)]
    share, by_pandas, speedup = (
        statistics.median(v) for v in (csv_shares, pandas_shares, speedups)
    )
    spread = f"{min(csv_shares):.1%}–{max(csv_shares):.1%}"
    print(f"predict CSV→CSV is {share:.1%} ({spread}) of the model alone at its best batch")
    low, high = min(speedups), max(speedups)
    print(f"Arrow's reader and writer: {speedup:.2f} × pandas' ({low:.2f}–{high:.2f})")
    results["csv_over_pandas"] = speedup
    results["csv_over_pandas_each"] = [round(v, 3) for v in speedups]
    results["model_alone"] = {
        "setups": SETUPS,
        "windows_per_s": alone,
        "each_round": rounds,
        "best": {
            "setup": best_setup,
            **SETUPS[best_setup],
            "batch": int(best_batch),
            "windows_per_s": alone[best_setup][best_batch],
        },
        "csv_share": share,
        "csv_share_each": [round(v, 4) for v in csv_shares],
        "pandas_share": by_pandas,
        "pandas_share_each": [round(v, 4) for v in pandas_shares],
    }
    if args.record:
        key = args.key or f"ballistic-{args.tracks}"
        path = results_files.record("predict_speed", key, results)
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
