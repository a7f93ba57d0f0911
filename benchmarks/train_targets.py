"""Benchmark: the training targets of the README, measured end to end.

Usage:
    python benchmarks/train_targets.py [--profile challenge] [--tracks 100] [--seed 42]
        [--epochs 100] [--batch-size 32] [--lstm-units 64] [--learning-rate 0.001]
        [--patience 5] [--encode altitude,altitude_over_max,velocity_up|none]
        [--encoding-kind thermometer|piecewise-linear]
        [--workdir /tmp/train-targets] [--record]

Simulates a dataset (train and held-out test tracks), runs the same training job as
``missile-classifier train`` and prints, for the LSTM and every baseline, F1 on the held-out
rows, the onset error over held-out streams (median and maximum of |predicted − true|), the
share of streams whose onset is within 0.5 s, flicker, and the wall time of training.
``--record`` writes them as run ``<profile>-<tracks>-<seed>`` of docs/results/train_targets.json,
which the README's comparison table and targets are generated from.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import results as results_files  # benchmarks/results.py
from missile_classifier.scoring.encoding import ENCODING_KINDS
from missile_classifier.simulation.dataset import simulate_dataset, write_dataset
from missile_classifier.training.config import TrainConfig
from missile_classifier.training.train import run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="challenge", choices=["challenge", "ballistic"])
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lstm-units", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument(
        "--encode",
        default=",".join(TrainConfig.encoded_features),
        help="features to bin-encode, comma-separated, or 'none'",
    )
    parser.add_argument(
        "--encoding-kind", default=TrainConfig.encoding_kind, choices=ENCODING_KINDS
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/train-targets"))
    parser.add_argument(
        "--record", action="store_true", help="write the results to docs/results/train_targets.json"
    )
    args = parser.parse_args()
    data = args.workdir / f"{args.profile}-{args.tracks}-{args.seed}"
    if not (data / "train.csv").exists():
        write_dataset(simulate_dataset(args.profile, args.tracks, args.seed), data)
    models = args.workdir / "models"
    shutil.rmtree(models, ignore_errors=True)
    result = run_training(
        TrainConfig(
            train_data=data / "train.csv",
            test_data=data / "test.csv",
            output=models,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lstm_units=args.lstm_units,
            learning_rate=args.learning_rate,
            patience=args.patience,
            seed=args.seed,
            encoded_features=tuple(n for n in args.encode.split(",") if n and n != "none"),
            encoding_kind=args.encoding_kind,
        )
    )
    print(
        f"profile={args.profile} tracks={args.tracks} seed={args.seed} epochs<={args.epochs} "
        f"batch={args.batch_size} units={args.lstm_units} lr={args.learning_rate} "
        f"patience={args.patience} encode={args.encode} ({args.encoding_kind}): "
        f"trained in {result.seconds:.0f} s"
    )
    models = {}
    for name, metrics in result.metrics.items():
        tracks = metrics["tracks"]
        models[name] = {
            "f1": metrics["f1"],
            "onset_median_s": tracks["onset_error_s"]["median_abs"],
            "onset_max_s": tracks["onset_error_s"]["max_abs"],
            "within_tolerance": tracks["within_tolerance"],
            "missed_onsets": tracks["missed_onsets"],
            "flicker": tracks["flicker"]["total"],
        }
    results = {
        "profile": args.profile,
        "tracks": args.tracks,
        "seed": args.seed,
        "config": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lstm_units": args.lstm_units,
            "learning_rate": args.learning_rate,
            "patience": args.patience,
            "encode": args.encode,
            "encoding_kind": args.encoding_kind,
        },
        "seconds": round(result.seconds, 1),
        "streams": result.metrics["LSTM"]["tracks"]["streams"],
        "models": models,
    }
    print("\n".join(results_files.comparison_lines(results)))
    if args.record:
        key = f"{args.profile}-{args.tracks}-{args.seed}"
        print(f"recorded {results_files.record('train_targets', key, results)}")


if __name__ == "__main__":
    main()
