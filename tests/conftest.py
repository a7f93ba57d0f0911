"""Shared fixtures: small simulated datasets written to temporary folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from missile_classifier.simulate import simulate_challenge, write_csv


@pytest.fixture(scope="session")
def challenge_frame() -> pd.DataFrame:
    """Four challenge tracks, labeled, in canonical order."""
    return simulate_challenge([0, 1, 2, 3], seed=11)


@pytest.fixture
def good_csv(tmp_path: Path, challenge_frame: pd.DataFrame) -> Path:
    path = tmp_path / "good.csv"
    write_csv(challenge_frame, path)
    return path
