"""The evaluation report: report.md, its plots, and the learning curves it draws."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from missile_classifier.training.report import ModelScores, ReportData, TrainingCurves, write_report
from test_metrics import shuffled


def report_data(seed: int = 0) -> tuple[ReportData, dict[str, ModelScores]]:
    """Five small trapezoid tracks (track 4 seen by two sensors) and two models' scores."""
    rng = np.random.default_rng(seed)
    parts = []
    for track, sensor in [(0, 3), (1, 3), (2, 3), (3, 3), (4, 3), (4, 5)]:
        n = 60
        up = np.linspace(0, 100_000, 18)
        altitude = np.concatenate([up, np.full(24, 100_000.0), up[::-1]])
        truth = ((np.arange(n) >= 42) & (altitude < 50_000)).astype(int)
        parts.append(
            {
                "track_id": np.full(n, track),
                "sensor_id": np.full(n, sensor),
                "timestamp": 600.0 * track + 0.5 * np.arange(n),
                "altitude": altitude,
                "y_true": truth,
            }
        )
    rows = shuffled({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, seed)
    y = rows["y_true"]
    good = np.clip(y * 0.8 + rng.normal(0.1, 0.1, len(y)), 0, 1)
    weak = np.clip(1 - rows["altitude"] / 100_000 + rng.normal(0, 0.2, len(y)), 0, 1)
    data = ReportData(rows["track_id"], rows["sensor_id"], rows["timestamp"], rows["altitude"], y)
    return data, {"lstm": ModelScores(good, 0.5), "altitude threshold": ModelScores(weak, 0.6)}


def linked_files(report: Path) -> list[Path]:
    return [
        report.parent / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())
    ]


def test_write_report_writes_markdown_and_every_plot(tmp_path: Path) -> None:
    data, models = report_data()
    # Losses of exactly 0 happen on easy data; the log-scale plot must still be drawn.
    curves = TrainingCurves([0.3, 0.1, 0.0], [0.2, 0.05, 0.0], [1e-3, 1e-3, 5e-4], best_epoch=2)
    report = write_report(
        tmp_path / "bundle",
        title="Evaluation",
        data=data,
        models=models,
        notes="Seed 0.",
        training=curves,
    )
    assert report == tmp_path / "bundle" / "report.md"
    text = report.read_text()
    assert text.startswith("# Evaluation")
    assert "| lstm |" in text and "| altitude threshold |" in text
    assert "Seed 0." in text
    assert "6 sensor streams" in text
    links = linked_files(report)
    pngs = sorted((report.parent / "plots").glob("*.png"))
    assert sorted(links) == pngs
    assert {p.name for p in pngs} == {
        "roc.png",
        "pr.png",
        "confusion_matrix.png",
        "timelines.png",
        "training.png",
    }
    assert "### Training (lstm)" in text
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 1_000


def test_write_report_with_one_class_skips_the_curves(tmp_path: Path) -> None:
    data, models = report_data()
    negative = ReportData(
        data.track_id, data.sensor_id, data.timestamp, data.altitude, np.zeros_like(data.y_true)
    )
    report = write_report(tmp_path, title="T", data=negative, models=models)
    assert all(path.is_file() for path in linked_files(report))
    assert {p.name for p in linked_files(report)} == {"confusion_matrix.png", "timelines.png"}
    assert "omitted" in report.read_text()


def test_write_report_needs_a_model(tmp_path: Path) -> None:
    data, _ = report_data()
    with pytest.raises(ValueError, match="at least one model"):
        write_report(tmp_path, title="T", data=data, models={})


def test_importing_metrics_or_report_loads_no_plotting_or_sklearn() -> None:
    code = (
        "import sys, missile_classifier.training.metrics, missile_classifier.training.report; "
        "print(any(m.split('.')[0] in ('matplotlib', 'sklearn') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_training_curves_from_a_stored_history() -> None:
    history = {"train_loss": [0.2, 0.1], "val_loss": [0.3, 0.2], "learning_rate": [1e-3, 1e-3]}
    curves = TrainingCurves.from_history({**history, "best_epoch": 2, "seconds": 1.0})
    assert curves == TrainingCurves([0.2, 0.1], [0.3, 0.2], [1e-3, 1e-3], best_epoch=2)
    assert TrainingCurves.from_history(None) is None
    assert TrainingCurves.from_history({"train_loss": []}) is None
