"""Bundles: written with checksums, refused when tampered with, `latest` follows the newest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from missile_classifier.scoring import bundle
from missile_classifier.scoring.encoding import PIECEWISE_LINEAR, BinEncoding
from missile_classifier.scoring.windows import Scaler


def _make(root: Path, name: str) -> Path:
    directory = root / name
    (directory / "plots").mkdir(parents=True)
    (directory / bundle.MODEL_FILE).write_bytes(b"onnx bytes")
    (directory / "plots" / "roc.png").write_bytes(b"png")
    bundle.write_preprocessing(
        directory, bundle.Preprocessing(("a", "b"), Scaler(np.zeros(2), np.ones(2), 10), 0.42)
    )
    bundle.write_metadata(directory, {"metrics": {"f1": 1.0}})
    bundle.point_latest(directory)
    return directory


def test_round_trip_and_latest(tmp_path: Path) -> None:
    first = _make(tmp_path, "20260101-000000")
    loaded = bundle.load(tmp_path)  # a models folder resolves through `latest`
    assert loaded.path == first and loaded.version == "20260101-000000"
    assert loaded.preprocessing.threshold == 0.42
    assert loaded.preprocessing.scaler.sequence_length == 10
    assert set(loaded.metadata["files"]) == {"model.onnx", "preprocessing.json", "plots/roc.png"}
    second = _make(tmp_path, "20260102-000000")
    assert bundle.load(tmp_path).path == second
    assert bundle.load(first).path == first


@pytest.mark.parametrize("victim", ["model.onnx", "preprocessing.json", "plots/roc.png"])
def test_tampered_file_is_refused(tmp_path: Path, victim: str) -> None:
    directory = _make(tmp_path, "v1")
    with (directory / victim).open("ab") as handle:
        handle.write(b" ")
    with pytest.raises(bundle.BundleError, match="checksum mismatch"):
        bundle.load(directory)


def test_missing_file_unknown_format_and_no_bundle(tmp_path: Path) -> None:
    directory = _make(tmp_path, "v1")
    (directory / "plots" / "roc.png").unlink()
    with pytest.raises(bundle.BundleError, match="missing"):
        bundle.load(directory)
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    (directory / bundle.METADATA_FILE).write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(bundle.BundleError, match="format 99"):
        bundle.load(directory)
    with pytest.raises(bundle.BundleError, match="no such file or folder"):
        bundle.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(bundle.BundleError, match=r"no model bundle here.*train one first"):
        bundle.load(tmp_path / "empty")


def test_a_file_of_a_bundle_names_its_bundle(tmp_path: Path) -> None:
    # The original brief sets MODEL_PATH to the model file.
    first = _make(tmp_path, "20260101-000000")
    second = _make(tmp_path, "20260102-000000")
    assert bundle.load(first / bundle.MODEL_FILE).path == first
    assert bundle.load(tmp_path / bundle.LATEST / bundle.MODEL_FILE).path == second


def test_scaler_path_must_be_the_preprocessing_of_the_bundle(tmp_path: Path) -> None:
    first = _make(tmp_path, "20260101-000000")
    second = _make(tmp_path, "20260102-000000")
    for same in (
        tmp_path / bundle.LATEST / bundle.PREPROCESSING_FILE,
        second / "preprocessing.json",
    ):
        bundle.check_scaler_path(tmp_path, same)
    bundle.check_scaler_path(first / bundle.MODEL_FILE, first / bundle.PREPROCESSING_FILE)
    with pytest.raises(ValueError, match=r"not the preprocessing.json of the bundle.*20260102"):
        bundle.check_scaler_path(tmp_path, first / bundle.PREPROCESSING_FILE)
    with pytest.raises(ValueError, match=r"SCALER_PATH=.*scaler\.pkl is not a file"):
        bundle.check_scaler_path(tmp_path, tmp_path / "scaler.pkl")


def test_preprocessing_must_fit_its_features() -> None:
    with pytest.raises(bundle.BundleError, match="do not match"):
        bundle.Preprocessing.from_dict(
            {
                "feature_names": ["a"],
                "mean": [0, 1],
                "scale": [1, 1],
                "sequence_length": 3,
                "threshold": 0.5,
            }
        )


def _write_old_bundle(directory: Path, preprocessing: dict[str, object], fmt: int) -> None:
    directory.mkdir()
    (directory / bundle.MODEL_FILE).write_bytes(b"onnx bytes")
    (directory / bundle.PREPROCESSING_FILE).write_text(json.dumps(preprocessing))
    meta = bundle.write_metadata(directory, {})
    (directory / bundle.METADATA_FILE).write_text(json.dumps({**meta, "format": fmt}))


def test_encoding_round_trips_and_format_1_and_2_bundles_still_load(tmp_path: Path) -> None:
    encoding = BinEncoding((1,), (np.array([0.0, 5.0, 9.0]),))
    pre = bundle.Preprocessing(("a", "b"), Scaler(np.zeros(2), np.ones(2), 4, encoding), 0.5)
    directory = tmp_path / "v3"
    directory.mkdir()
    (directory / bundle.MODEL_FILE).write_bytes(b"onnx bytes")
    bundle.write_preprocessing(directory, pre)
    bundle.write_metadata(directory, {})
    loaded = bundle.load(directory).preprocessing.scaler
    assert loaded.encoding is not None and loaded.encoding.columns == (1,)
    assert loaded.encoding.kind == "thermometer" and loaded.n_inputs == 3
    data = pre.to_dict()
    # Format 2 stored piecewise-linear edges under their own key, without a kind.
    edges = data.pop("bin_encoding")["edges"]
    _write_old_bundle(tmp_path / "v2", {**data, "piecewise_linear_encoding": edges}, 2)
    old = bundle.load(tmp_path / "v2").preprocessing.scaler
    assert old.encoding is not None and old.encoding.kind == PIECEWISE_LINEAR
    assert old.n_inputs == 4
    # Format 1 predates the encoding: its preprocessing.json has no such key.
    _write_old_bundle(tmp_path / "v1", data, 1)
    assert bundle.load(tmp_path / "v1").preprocessing.scaler.n_inputs == 2
    with pytest.raises(bundle.BundleError, match=r"'b'.*increasing"):
        bundle.Preprocessing.from_dict({**data, "piecewise_linear_encoding": {"b": [3.0, 1.0]}})
    bad_kind = {"kind": "sigmoid", "edges": edges}
    with pytest.raises(bundle.BundleError, match="unknown encoding kind 'sigmoid'"):
        bundle.Preprocessing.from_dict({**data, "bin_encoding": bad_kind})
    with pytest.raises(bundle.BundleError, match="bin_encoding has no 'kind' entry"):
        bundle.Preprocessing.from_dict({**data, "bin_encoding": {"edges": edges}})
