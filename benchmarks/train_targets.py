"""Benchmark: the training targets of the README, measured end to end.

Usage:
    python benchmarks/train_targets.py [--profile challenge] [--tracks 100] [--seed 42]
        [--epochs 100] [--batch-size 32] [--lstm-units 64] [--learning-rate 0.001]
        [--patience 5] [--encode altitude,altitude_over_max,velocity_up|none]
        [--encoding-kind thermometer|piecewise-linear]
        [--workdir /tmp/train-targets]

Simulates a dataset (train and held-out test tracks), runs the same training job as
``missile-classifier train`` and prints, for the LSTM and every baseline, F1 on the held-out
rows, the onset error over held-out streams (median and maximum of |predicted − true|), the
share of streams whose onset is within 0.5 s, flicker, and the wall time of training.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

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
    print(
        f"{'model':<20} {'F1':>7} {'onset med s':>11} {'onset max s':>11} {'≤0.5 s':>7} "
        f"{'missed':>6} {'flicker':>7}"
    )
    for name, metrics in result.metrics.items():
        tracks = metrics["tracks"]
        onset = tracks["onset_error_s"]
        print(
            f"{name:<20} {metrics['f1']:>7.4f} {_num(onset['median_abs']):>11} "
            f"{_num(onset['max_abs']):>11} {tracks['within_tolerance']:>7.1%} "
            f"{tracks['missed_onsets']:>6} {tracks['flicker']['total']:>7}"
        )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
