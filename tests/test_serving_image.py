"""The serving image has no torch, pandas, scikit-learn, matplotlib or pyarrow: scoring and the
CLI's serving commands must not need them. (The real-server tests run the whole service this
way too: see ``server.py``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server import serving_image_env
from test_cli import EXE

ABSENT = ("torch", "pandas", "sklearn", "matplotlib", "pyarrow")


def _python(code: str, import_log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **serving_image_env(import_log)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_each_training_library_is_absent_and_every_attempt_is_recorded(tmp_path: Path) -> None:
    code = f"""
for name in {ABSENT!r} + ("sklearn.metrics",):  # a submodule fails at its package
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        print(exc.name)
"""
    log = tmp_path / "imports"
    result = _python(code, log)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [*ABSENT, "sklearn"]
    recorded = [line for line in log.read_text().splitlines() if line.startswith("pid ")]
    assert [line.split()[-1].rstrip(":") for line in recorded] == [*ABSENT, "sklearn"]


def test_scoring_runs_without_the_training_libraries(trained_bundle: Path, tmp_path: Path) -> None:
    code = f"""
import numpy as np
from missile_classifier.scoring.inference import ModelInferenceService

service = ModelInferenceService({str(trained_bundle / "models")!r})
point = dict(timestamp=1.0, latitude=10.0, longitude=20.0, altitude=5e4, radiometric_intensity=0.4)
single = service.predict_single(point).probability[0]
columns = {{name: np.array([value, value]) for name, value in point.items()}}
columns.update(timestamp=np.array([1.0, 1.5]), track_id=np.array([1, 1]))
columns.update(sensor_id=np.array([3, 3]))
scores = service.predict_batch(columns)
print(float(single), float(scores.probability[0]), scores.context_points.tolist())
"""
    log = tmp_path / "imports"
    result = _python(code, log)
    assert result.returncode == 0, result.stderr
    single, first, context = result.stdout.split(maxsplit=2)
    # The first row of a stream is scored from that row alone, as a single point is.
    assert 0.0 <= float(single) <= 1.0 and float(first) == float(single)
    assert context.strip() == "[1, 2]"
    assert not log.exists(), log.read_text()


@pytest.mark.parametrize("args", [("--help",), ("serve", "--help"), ("--version",)])
def test_the_cli_serves_without_the_training_libraries(tmp_path: Path, args: tuple[str]) -> None:
    log = tmp_path / "imports"
    env = {**os.environ, **serving_image_env(log)}
    result = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not log.exists(), log.read_text()


def test_the_seed_classes_are_offered_lazily_by_the_package(tmp_path: Path) -> None:
    code = """
import missile_classifier
from missile_classifier import ModelInferenceService
print(ModelInferenceService.__module__)
try:
    missile_classifier.LSTMClassifier
except ModuleNotFoundError as exc:
    print("needs", exc.name)
"""
    log = tmp_path / "imports"
    result = _python(code, log)
    assert result.returncode == 0, result.stderr
    # The serving classes load without the training libraries; the training ones need them.
    assert result.stdout.split() == ["missile_classifier.scoring.inference", "needs", "torch"]
    recorded = [line for line in log.read_text().splitlines() if line.startswith("pid ")]
    assert [line.split()[-1].rstrip(":") for line in recorded] == ["torch"]


def test_the_seed_classes_are_the_classes_of_their_modules() -> None:
    import missile_classifier
    from missile_classifier.scoring.inference import ModelInferenceService
    from missile_classifier.training.data import DataPreprocessor
    from missile_classifier.training.models.baselines import BaselineClassifier
    from missile_classifier.training.models.lstm import LSTMClassifier

    assert missile_classifier.DataPreprocessor is DataPreprocessor
    assert missile_classifier.LSTMClassifier is LSTMClassifier
    assert missile_classifier.BaselineClassifier is BaselineClassifier
    assert missile_classifier.ModelInferenceService is ModelInferenceService
    with pytest.raises(AttributeError, match="no attribute 'Trainer'"):
        _ = missile_classifier.Trainer
