"""Scoring on Spark (local[2]) gives predict's output: same rows, order, columns and answers.

PySpark and Java are required (the `spark` extra, installed by `make test`): without them this
module fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from missile_classifier.cli import app
from missile_classifier.predict import PREDICTION, PROBABILITY, predict_csv
from missile_classifier.schema import SchemaError
from missile_classifier.scoring.bundle import BundleError
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.simulation.dataset import simulate_dataset
from missile_classifier.spark_scoring import ROW, score_dataframe, ship_bundle, spark_predict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    # The workers run this interpreter, which has the package (PySpark reads only this).
    python = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("test_spark_scoring")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if python is None:
        del os.environ["PYSPARK_PYTHON"]
    else:
        os.environ["PYSPARK_PYTHON"] = python


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four ballistic tracks seen by 1–3 sensors each (9 streams, some intensities missing),
    rows shuffled so that streams interleave, as text."""
    frame = simulate_dataset("ballistic", 4, seed=9, test_fraction=0.0).train
    assert frame.groupby(["track_id", "sensor_id"]).ngroups > frame["track_id"].nunique()
    path = tmp_path_factory.mktemp("spark") / "tracks.csv"
    frame.sample(frac=1.0, random_state=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(trained_bundle: Path) -> Path:
    return trained_bundle / "models"


@pytest.fixture(scope="module")
def expected(tracks: Path, model: Path) -> pd.DataFrame:
    """predict's output for ``tracks``, as text."""
    target = tracks.with_name("predict.csv")
    predict_csv(ModelInferenceService(model), tracks, target)  # one chunk: rows shuffled
    return pd.read_csv(target, dtype=str, keep_default_na=False)


def assert_same_answers(out: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns and rows in the same order; probabilities within the file's 6 decimals."""
    assert list(out.columns) == list(expected.columns)
    inputs = [c for c in expected.columns if c != PROBABILITY]
    pd.testing.assert_frame_equal(out[inputs].astype(str), expected[inputs], check_dtype=False)
    got, want = out[PROBABILITY].astype(float), expected[PROBABILITY].astype(float)
    np.testing.assert_allclose(got, want, rtol=0, atol=1.5e-6)


def test_csv_to_csv_equals_predict(
    spark: SparkSession, tracks: Path, model: Path, expected: pd.DataFrame, tmp_path: Path
) -> None:
    summary = spark_predict(spark, tracks, tmp_path / "out.csv", model)
    assert summary.rows == len(expected)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert_same_answers(out, expected)
    assert set(out[PREDICTION]) == {"0", "1"}
    # The same text, probabilities written as pandas writes them (1e-06, not 1.0E-6).
    assert (tmp_path / "out.csv").read_text() == tracks.with_name("predict.csv").read_text()


def test_parquet_in_and_out_and_the_python_api(
    spark: SparkSession, tracks: Path, model: Path, expected: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "tracks.parquet"
    pd.read_csv(tracks).to_parquet(source)  # typed columns: ids int64, coordinates float64
    spark_predict(spark, source, tmp_path / "out.parquet", model)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out[PREDICTION].dtype == np.int64 and out[PROBABILITY].dtype == np.float64
    np.testing.assert_array_equal(out[PREDICTION], expected[PREDICTION].astype(int))
    np.testing.assert_allclose(out[PROBABILITY], expected[PROBABILITY].astype(float), atol=1.5e-6)
    # The Python API on a DataFrame: partitioned, in any order; the row column sorts it.
    scored = score_dataframe(spark.read.parquet(str(source)), model)
    assert scored.columns == [*pd.read_csv(tracks, nrows=0).columns, ROW, *expected.columns[-2:]]
    rows = sorted(scored.select(ROW, PROBABILITY).collect())
    assert [p for _, p in rows] == out[PROBABILITY].tolist()


def test_the_cli_scores_an_unlabeled_file(
    spark: SparkSession, tracks: Path, model: Path, expected: pd.DataFrame, tmp_path: Path
) -> None:
    unlabeled = tmp_path / "unlabeled.csv"
    pd.read_csv(tracks, dtype=str).drop(columns=["reentry_phase"]).to_csv(unlabeled, index=False)
    args = ["spark-predict", "--input", str(unlabeled), "--model", str(model)]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert f"{len(expected):,} rows scored on Spark" in result.output
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert_same_answers(out, expected.drop(columns=["reentry_phase"]))
    # The session the CLI found running is left running.
    assert spark.range(1).count() == 1


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda f: f.drop(columns=["altitude"]), "missing column(s) altitude"),
        (lambda f: f.assign(latitude=f["latitude"].mask(f.index == 700, "north")), "not a number"),
    ],
    ids=["missing-column", "bad-cell"],
)
def test_bad_input_is_reported_as_predict_reports_it(
    spark: SparkSession, tracks: Path, model: Path, tmp_path: Path, change: object, expect: str
) -> None:
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(tracks, dtype=str)).to_csv(bad, index=False)  # type: ignore[operator]
    with pytest.raises(SchemaError) as by_predict:
        predict_csv(ModelInferenceService(model), bad, tmp_path / "p.csv")
    # Through the CLI, which reports the SchemaError it gets: the same message as predict's
    # (file, column, problem, line: 702 is the header and then row 700, value).
    args = ["spark-predict", "--input", str(bad), "--model", str(model)]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 1, result.output
    assert f"error: {by_predict.value}" in result.output and expect in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.csv").exists()


def test_a_tampered_bundle_is_refused_before_any_job(
    spark: SparkSession, model: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(model / "latest", copy)
    with (copy / "preprocessing.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match="checksum mismatch"):
        ship_bundle(spark, copy)
