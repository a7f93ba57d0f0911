"""End to end through the command line: simulate → train → predict / evaluate / export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from missile_classifier.schema import frame_columns
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.scoring.windows import StreamMemory
from test_cli import run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small challenge data and a quickly trained bundle, made once for this module."""
    root = tmp_path_factory.mktemp("pipeline")
    assert (
        run(
            "simulate",
            "--tracks",
            "10",
            "--seed",
            "3",
            "--output-dir",
            str(root / "data"),
            "--test-fraction",
            "0.2",
            "-q",
        ).returncode
        == 0
    )
    result = run(
        "train",
        "--train_data",
        str(root / "data/train.csv"),
        "--test-data",
        str(root / "data/test.csv"),
        "--epochs",
        "2",
        "--batch_size",
        "256",
        "--lstm-units",
        "8",
        "--output",
        str(root / "models"),
    )
    assert result.returncode == 0, result.stderr
    assert "LSTM" in result.stdout and "random forest" in result.stdout
    # Not on a terminal (a pipe here, a log file or a Job elsewhere): a line per epoch.
    epochs = re.findall(r"epoch=(\d)/2 loss=\S+ val_loss=\S+ val_f1=\S+", result.stderr)
    assert epochs == ["1", "2"], result.stderr
    return root


def test_train_writes_a_complete_bundle(workspace: Path) -> None:
    latest = workspace / "models" / "latest"
    assert latest.is_symlink()
    names = {p.relative_to(latest).as_posix() for p in latest.rglob("*") if p.is_file()}
    assert {
        "model.onnx",
        "preprocessing.json",
        "metadata.json",
        "checkpoint.pt",
        "report.md",
        "plots/roc.png",
        "plots/pr.png",
        "plots/confusion_matrix.png",
        "plots/timelines.png",
        "plots/training.png",
    } <= names
    report = (latest / "report.md").read_text()
    assert "![Training (LSTM)](plots/training.png)" in report
    assert "thermometer inputs encoding altitude, altitude_over_max, velocity_up" in report
    meta = json.loads((latest / "metadata.json").read_text())
    assert set(meta["metrics"]) == {"LSTM", "altitude threshold", "random forest", "dummy"}
    assert meta["version"] == latest.resolve().name and meta["onnx_max_abs_difference"] < 1e-4
    preprocessing = json.loads((latest / "preprocessing.json").read_text())
    assert 0 < preprocessing["threshold"] < 1
    assert preprocessing["bin_encoding"]["kind"] == "thermometer"
    assert set(preprocessing["bin_encoding"]["edges"]) == {
        "altitude",
        "altitude_over_max",
        "velocity_up",
    }


def test_train_encodes_the_features_asked_for(workspace: Path, tmp_path: Path) -> None:
    data = workspace / "data"
    args = ["train", "--train-data", str(data / "train.csv"), "--epochs", "1", "-q"]
    args += ["--batch-size", "512", "--lstm-units", "4"]
    unknown = run(*args, "--encode", "altitude,warp_factor", "--output", str(tmp_path))
    assert unknown.returncode == 2 and "warp_factor" in unknown.stderr
    assert "Traceback" not in unknown.stderr and not any(tmp_path.iterdir())
    kind = run(*args, "--encoding-kind", "sigmoid", "--output", str(tmp_path))
    assert kind.returncode == 2 and "sigmoid" in kind.stderr and not any(tmp_path.iterdir())
    result = run(
        *args,
        *("--encode", "altitude", "--encoding-bins", "3", "--encoding-kind", "piecewise-linear"),
        *("--output", str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    preprocessing = json.loads((tmp_path / "latest" / "preprocessing.json").read_text())
    edges = preprocessing["bin_encoding"]["edges"]
    assert preprocessing["bin_encoding"]["kind"] == "piecewise-linear"
    assert list(edges) == ["altitude"] and 2 <= len(edges["altitude"]) <= 4
    service = ModelInferenceService(tmp_path)
    assert service.scaler.n_inputs == 16 + len(edges["altitude"]) - 1
    assert service.info()["encoding_kind"] == "piecewise-linear"
    frame = pd.read_csv(data / "test.csv")
    scored = service.predict_batch(frame_columns(frame))
    assert np.all((scored.probability >= 0) & (scored.probability <= 1))


@pytest.mark.parametrize("labeled", [True, False])
def test_predict_keeps_rows_order_and_columns(workspace: Path, labeled: bool) -> None:
    source = pd.read_csv(workspace / "data/test.csv", dtype=str)
    if not labeled:
        source = source.drop(columns=["reentry_phase"])
    shuffled = source.sample(frac=1.0, random_state=0)
    shuffled.to_csv(workspace / "in.csv", index=False)
    result = run(
        "predict",
        "--model",
        str(workspace / "models"),
        "--input",
        str(workspace / "in.csv"),
        "--output",
        str(workspace / "out.csv"),
    )
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(workspace / "out.csv", dtype=str)
    assert list(out.columns) == [*source.columns, "reentry_probability", "predicted_reentry_phase"]
    pd.testing.assert_frame_equal(out[source.columns], shuffled.reset_index(drop=True))
    probability = out["reentry_probability"].astype(float)
    assert probability.between(0, 1).all()
    threshold = json.loads((workspace / "models/latest/preprocessing.json").read_text())[
        "threshold"
    ]
    decided = out["predicted_reentry_phase"].astype(int)
    # The file keeps 6 decimals, so only rows within 1e-6 of the threshold could go either way.
    assert ((probability >= threshold + 1e-6) <= (decided == 1)).all()
    assert ((probability < threshold - 1e-6) <= (decided == 0)).all()
    # Not one class everywhere (the checks above allow it when every probability is on one
    # side of the threshold): the data has both phases, and so do the answers.
    labels = pd.read_csv(workspace / "data/test.csv")["reentry_phase"]
    assert set(labels) == {0, 1} and set(decided) == {0, 1}
    assert "rows/s" in result.stderr
    assert "training range" not in result.stderr  # the model's own kind of data


def test_predict_warns_of_rows_far_outside_the_training_ranges(workspace: Path) -> None:
    # The same test tracks moved to the southern hemisphere: every row's latitude is beyond the
    # training range; the rows are still scored.
    source = pd.read_csv(workspace / "data/test.csv")
    moved = source.assign(latitude=-source["latitude"])
    moved.to_csv(workspace / "south.csv", index=False)
    for quiet in ([], ["--quiet"]):
        result = run(
            "predict",
            "--model",
            str(workspace / "models"),
            "--input",
            str(workspace / "south.csv"),
            "--output",
            str(workspace / "south-out.csv"),
            *quiet,
        )
        assert result.returncode == 0, result.stderr
        warning = re.search(
            r"warning: ([\d,]+) rows have inputs far outside the model's training range "
            r"\((.*)\); their answers are extrapolations",
            result.stderr,
        )
        assert warning is not None, result.stderr
        assert int(warning[1].replace(",", "")) == len(source)
        assert f"latitude {len(source):,}" in warning[2]
    assert len(pd.read_csv(workspace / "south-out.csv")) == len(source)


def test_chunks_and_shards_give_the_same_answers(workspace: Path) -> None:
    args = [
        "predict",
        "--model",
        str(workspace / "models"),
        "--input",
        str(workspace / "data/train.csv"),
        "-q",
    ]
    assert run(*args, "--output", str(workspace / "whole.csv")).returncode == 0
    assert (
        run(*args, "--output", str(workspace / "chunks.csv"), "--chunk-rows", "97").returncode == 0
    )
    whole = pd.read_csv(workspace / "whole.csv")
    pd.testing.assert_frame_equal(whole, pd.read_csv(workspace / "chunks.csv"))
    shards = []
    for i in range(3):
        assert (
            run(*args, "--output", str(workspace / f"s{i}.csv"), "--shard", f"{i}/3").returncode
            == 0
        )
        shards.append(pd.read_csv(workspace / f"s{i}.csv"))
    tracks = [set(s["track_id"]) for s in shards]
    assert (
        not (tracks[0] & tracks[1]) and not (tracks[1] & tracks[2]) and not (tracks[0] & tracks[2])
    )
    merged = pd.concat(shards).sort_values(["track_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        merged, whole.sort_values(["track_id", "timestamp"]).reset_index(drop=True)
    )


def test_streaming_point_by_point_equals_batch(workspace: Path) -> None:
    service = ModelInferenceService(workspace / "models")
    frame = pd.read_csv(workspace / "data/test.csv")
    columns = frame_columns(frame)
    batch = service.predict_batch(columns)
    track = frame[frame["track_id"] == frame["track_id"].iloc[0]]
    memory: StreamMemory | None = None
    streamed = []
    for _, row in track.iterrows():
        point = {c: np.array([row[c]]) for c in frame.columns}
        scores, memory = service.predict_stream(point, memory)
        memory = StreamMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
        streamed.append(scores.probability[0])
    np.testing.assert_allclose(streamed, batch.probability[: len(track)], atol=1e-6)


def test_evaluate_and_export(workspace: Path) -> None:
    result = run(
        "evaluate",
        "--model",
        str(workspace / "models"),
        "--data",
        str(workspace / "data/test.csv"),
        "--report",
        str(workspace / "report"),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert 0 <= metrics["f1"] <= 1 and metrics["tracks"]["streams"] == 2
    assert (workspace / "report/report.md").is_file()
    # The learning curves come from the bundle's metadata: training is not rerun.
    assert (workspace / "report/plots/training.png").is_file()
    before = ModelInferenceService(workspace / "models")
    exported = run("export", "--model", str(workspace / "models"))
    assert exported.returncode == 0, exported.stderr
    after = ModelInferenceService(workspace / "models")
    assert after.model_version != before.model_version
    frame = pd.read_csv(workspace / "data/test.csv")
    columns = frame_columns(frame)
    np.testing.assert_allclose(
        after.predict_batch(columns).probability,
        before.predict_batch(columns).probability,
        atol=1e-6,
    )


def test_bad_inputs_are_clear_errors(workspace: Path) -> None:
    model = ["--model", str(workspace / "models")]
    missing = run("predict", *model, "--input", str(workspace / "nope.csv"), "--output", "x.csv")
    assert missing.returncode == 1 and "file not found" in missing.stderr
    frame = pd.read_csv(workspace / "data/test.csv")
    frame.loc[3, "latitude"] = 91.0
    frame.to_csv(workspace / "bad.csv", index=False)
    bad = run(
        "predict",
        *model,
        "--input",
        str(workspace / "bad.csv"),
        "--output",
        str(workspace / "bad_out.csv"),
    )
    assert bad.returncode == 1 and "line 5" in bad.stderr and "Traceback" not in bad.stderr
    assert not (workspace / "bad_out.csv").exists()
    shard = run(
        "predict",
        *model,
        "--input",
        str(workspace / "bad.csv"),
        "--output",
        "x.csv",
        "--shard",
        "3/3",
    )
    assert shard.returncode == 2 and "shard" in shard.stderr
    same = run(
        "predict",
        *model,
        "--input",
        str(workspace / "bad.csv"),
        "--output",
        str(workspace / "bad.csv"),
    )
    assert same.returncode == 1 and "differ" in same.stderr
    (workspace / "empty").mkdir(exist_ok=True)
    nothing = run(
        "evaluate", "--model", str(workspace / "empty"), "--data", str(workspace / "bad.csv")
    )
    assert nothing.returncode == 1 and "train one first" in nothing.stderr
    nowhere = run(
        "evaluate", "--model", str(workspace / "nowhere"), "--data", str(workspace / "bad.csv")
    )
    assert nowhere.returncode == 1 and "no such file or folder" in nowhere.stderr


def test_tampered_bundle_is_refused(workspace: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(workspace / "models", copy, symlinks=True)
    with (copy / "latest" / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    result = run(
        "predict",
        "--model",
        str(copy),
        "--input",
        str(workspace / "data/test.csv"),
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert result.returncode == 1 and "checksum mismatch" in result.stderr
