"""Shared fixtures: small simulated datasets written to temporary folders."""

from __future__ import annotations

import os
import shutil
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


#: A folder that keeps the trained bundle between pytest sessions. `make mutation` sets it: each
#: mutant runs its tests in a new session, and training the bundle costs ~20 s every time.
BUNDLE_CACHE = "MISSILE_CLASSIFIER_TEST_BUNDLE_CACHE"


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained bundle (challenge data, 2 epochs): ``<root>/models`` and ``<root>/data``."""
    root = tmp_path_factory.mktemp("bundle")
    cache = os.environ.get(BUNDLE_CACHE)
    if not cache:
        _train_small_bundle(root)
        return root
    if not (Path(cache) / "models" / "latest").is_dir():
        _train_small_bundle(Path(cache))
    # A copy per session: no test can change what the next session gets.
    shutil.copytree(cache, root, symlinks=True, dirs_exist_ok=True)
    return root


def _train_small_bundle(root: Path) -> None:
    from missile_classifier.simulation.dataset import simulate_dataset, write_dataset
    from missile_classifier.training.config import TrainConfig
    from missile_classifier.training.train import run_training

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
