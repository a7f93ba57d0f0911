"""Shared fixtures: small simulated datasets written to temporary folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from missile_classifier.simulation.challenge import simulate_challenge
from missile_classifier.simulation.dataset import write_csv


@pytest.fixture(scope="session")
def challenge_frame() -> pd.DataFrame:
    """Four challenge tracks, labeled, in canonical order."""
    return simulate_challenge([0, 1, 2, 3], seed=11)


@pytest.fixture
def good_csv(tmp_path: Path, challenge_frame: pd.DataFrame) -> Path:
    path = tmp_path / "good.csv"
    write_csv(challenge_frame, path)
    return path


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained bundle (challenge data, 2 epochs): ``<root>/models`` and ``<root>/data``."""
    from missile_classifier.simulation.dataset import simulate_dataset, write_dataset
    from missile_classifier.training.config import TrainConfig
    from missile_classifier.training.train import run_training

    root = tmp_path_factory.mktemp("bundle")
    write_dataset(simulate_dataset("challenge", 8, seed=5, test_fraction=0.25), root / "data")
    run_training(
        TrainConfig(
            train_data=root / "data" / "train.csv",
            test_data=root / "data" / "test.csv",
            output=root / "models",
            epochs=2,
            batch_size=256,
            lstm_units=8,
            baselines=("dummy",),
        )
    )
    return root
