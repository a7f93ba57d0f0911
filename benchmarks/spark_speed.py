"""Benchmark: rows per second of ``spark-predict`` in Spark local mode against ``predict``.

Usage:
    python benchmarks/spark_speed.py --model models [--tracks 56] [--repeats 3] [--master local[2]]

Simulates ``--tracks`` ballistic tracks (1–3 sensors each) into a CSV, then times, on the same
file, ``predict_csv`` (CSV → CSV) and ``spark_predict`` (CSV → one CSV in the input's order,
reading, validating, featurising, scoring, sorting and writing) ``--repeats`` times each.
The Spark session is started once, before the timed runs (its start-up is printed apart).
Prints every run, the median and the spread (min–max).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from missile_classifier.predict import predict_csv
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.simulation.dataset import simulate_dataset, write_csv
from missile_classifier.spark_scoring import session, spark_predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--tracks", type=int, default=56)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    frame = simulate_dataset("ballistic", args.tracks, seed=9, test_fraction=0.0).train
    rows = len(frame)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.csv"
        write_csv(frame, source)
        service = ModelInferenceService(args.model)
        times: dict[str, list[float]] = {"predict": [], f"spark {args.master}": []}
        for _ in range(args.repeats):
            times["predict"].append(predict_csv(service, source, Path(tmp) / "p.csv").seconds)
        started = time.perf_counter()
        spark, _ = session(args.master, quiet=True)
        print(f"Spark session start: {time.perf_counter() - started:.1f} s (not counted)")
        for i in range(args.repeats):
            target = Path(tmp) / f"s{i}.csv"
            times[f"spark {args.master}"].append(
                spark_predict(spark, source, target, args.model).seconds
            )
        spark.stop()
    for name, runs in times.items():
        median = statistics.median(runs)
        each = ", ".join(f"{t:.2f}" for t in runs)
        print(
            f"{name:<16} {rows:>9,} rows  runs {each} s  median {median:.2f} s  "
            f"{rows / median:>8,.0f} rows/s  (spread {rows / max(runs):,.0f}–"
            f"{rows / min(runs):,.0f})"
        )


if __name__ == "__main__":
    main()
