"""Bundles: written with checksums, refused when tampered with, `latest` follows the newest."""

from __future__ import annotations

import json
import re
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


# ----------------------------------------------------------------------------- hand-built bundles

#: Rows of one stream, as scoring takes them (enough rows to fill a few windows).
STREAM_ROWS: dict[str, np.ndarray] = {
    "track_id": np.full(6, 4),
    "sensor_id": np.full(6, 2),
    "timestamp": 1_000.0 + 0.5 * np.arange(6),
    "latitude": 45.0 + 0.001 * np.arange(6),
    "longitude": np.full(6, 7.0),
    "altitude": np.array([90e3, 87e3, 84e3, 81e3, 78e3, 75e3]),  # falling 6 km/s
    "radiometric_intensity": np.linspace(0.1, 0.9, 6),
}


def tiny_onnx_model(
    path: Path, sequence_length: int, width: int, batch: int | str = "batch", sign: float = 1.0
) -> None:
    """A real ONNX model: probability = sigmoid(sign × mean of the window's values).

    ``batch`` is the input's batch dimension: a name leaves it free (as the real export does), an
    int fixes it, as a model exported without a dynamic batch axis would.
    """
    from onnx import TensorProto, checker, helper

    windows = helper.make_tensor_value_info(
        "windows", TensorProto.FLOAT, [batch, sequence_length, width]
    )
    probability = helper.make_tensor_value_info("probability", TensorProto.FLOAT, [batch])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["windows", "axes"], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "sign"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["probability"]),
        ],
        "tiny",
        [windows],
        [probability],
        [
            helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
            helper.make_tensor("sign", TensorProto.FLOAT, [], [sign]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # readable by every onnxruntime the project allows
    checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_onnx_bundle(
    directory: Path, *, batch: int | str = "batch", sequence_length: int = 3
) -> Path:
    """A complete, checksummed bundle built by hand: the 16 features, no encoding, a tiny model."""
    from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES

    directory.mkdir(parents=True)
    tiny_onnx_model(directory / bundle.MODEL_FILE, sequence_length, N_FEATURES, batch)
    scaler = Scaler(np.zeros(N_FEATURES), np.full(N_FEATURES, 1e4), sequence_length)
    bundle.write_preprocessing(directory, bundle.Preprocessing(FEATURE_NAMES, scaler, 0.5))
    bundle.write_metadata(directory, {"metrics": {}})
    return directory


def _rewrite_metadata(directory: Path, change: dict[str, object]) -> None:
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    (directory / bundle.METADATA_FILE).write_text(json.dumps({**meta, **change}))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),  # not even UTF-8
        (b"[1, 2]", r"not a JSON object \(list\)"),
        (b'"20260101-000000"', r"not a JSON object \(str\)"),
        (b"null", r"not a JSON object \(NoneType\)"),
        (b'{"format": 3, "files": ["model.onnx"]}', "'files' is not an object"),
    ],
)
def test_unreadable_metadata_is_a_clear_bundle_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    directory = _make(tmp_path, "v1")
    (directory / bundle.METADATA_FILE).write_bytes(content)
    with pytest.raises(bundle.BundleError, match=problem) as raised:
        bundle.load(directory)
    assert str(raised.value).startswith(f"{directory / bundle.METADATA_FILE}: ")


@pytest.mark.parametrize("required", [bundle.MODEL_FILE, bundle.PREPROCESSING_FILE])
def test_metadata_must_list_the_model_and_the_preprocessing(tmp_path: Path, required: str) -> None:
    # The file is there and intact: only the list that vouches for it leaves it out.
    directory = _make(tmp_path, "v1")
    files = json.loads((directory / bundle.METADATA_FILE).read_text())["files"]
    del files[required]
    _rewrite_metadata(directory, {"files": files})
    assert (directory / required).is_file()
    with pytest.raises(bundle.BundleError, match=f"metadata lists no {re.escape(required)}$"):
        bundle.load(directory)


@pytest.mark.parametrize(
    "listed",
    ["../outside.bin", "plots/../../outside.bin", "<absolute>", "link.bin", "loop", "nul\0.bin"],
)
def test_listed_files_outside_the_bundle_are_refused(tmp_path: Path, listed: str) -> None:
    # The outside file exists and its checksum is right: loading used to read it and succeed.
    directory = _make(tmp_path, "v1")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not part of any bundle")
    if listed == "<absolute>":
        listed = str(outside)
    if listed == "link.bin":  # inside by name, outside once the link is followed
        (directory / "link.bin").symlink_to(outside)
    if listed == "loop":  # a link to itself resolves nowhere: refused like outside, not a crash
        (directory / "loop").symlink_to("loop")
    files = json.loads((directory / bundle.METADATA_FILE).read_text())["files"]
    _rewrite_metadata(directory, {"files": {**files, listed: bundle.sha256(outside)}})
    with pytest.raises(bundle.BundleError, match="a path outside the bundle folder") as raised:
        bundle.load(directory)
    assert repr(listed) in str(raised.value)


def test_a_listed_path_that_stays_inside_is_fine(tmp_path: Path) -> None:
    directory = _make(tmp_path, "v1")
    files = json.loads((directory / bundle.METADATA_FILE).read_text())["files"]
    roundabout = {"plots/../plots/roc.png": files["plots/roc.png"]}
    _rewrite_metadata(directory, {"files": {**files, **roundabout}})
    assert "plots/../plots/roc.png" in bundle.load(directory).metadata["files"]


def test_unlisted_files_are_accepted_and_never_read(tmp_path: Path) -> None:
    from missile_classifier.scoring.inference import ModelInferenceService

    directory = write_onnx_bundle(tmp_path / "v1")
    before = ModelInferenceService(directory).predict_batch(STREAM_ROWS).probability
    # Added after export, so metadata.json does not list them: another valid model that would
    # answer differently, garbage, and a link that cannot even be opened.
    (directory / "old").mkdir()
    tiny_onnx_model(directory / "old" / bundle.MODEL_FILE, 3, 16, sign=-1.0)
    (directory / "preprocessing.json.bak").write_text("{not json")
    (directory / "dangling").symlink_to(tmp_path / "nowhere")
    loaded = bundle.load(directory)
    assert set(loaded.metadata["files"]) == {bundle.MODEL_FILE, bundle.PREPROCESSING_FILE}
    after = ModelInferenceService(directory).predict_batch(STREAM_ROWS).probability
    np.testing.assert_array_equal(after, before)
    assert len(np.unique(before)) > 1  # the tiny model does depend on its input
