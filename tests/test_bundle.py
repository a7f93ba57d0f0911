"""Bundles: written with checksums, refused when tampered with, `latest` follows the newest."""

from __future__ import annotations

import hashlib
import json
import re
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
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
    # Files scoring does not read (report, plots, checkpoint.pt) may be left out of a copy made
    # for serving; one that is there must still match its checksum (test above).
    (directory / "plots" / "roc.png").unlink()
    assert bundle.load(directory).path == directory.resolve()
    (directory / bundle.PREPROCESSING_FILE).unlink()
    with pytest.raises(bundle.BundleError, match=r"preprocessing.json: listed in .* but missing"):
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
    if problem == "not valid JSON":  # the decoder's own words go to the log, not the message
        assert raised.value.detail is not None
        assert ("Expecting property name" in raised.value.detail) or (
            "codec can't decode" in raised.value.detail
        )


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


# ------------------------------------------------------------------- what the files hold, exactly


def test_preprocessing_json_is_indented_and_in_a_fixed_order(tmp_path: Path) -> None:
    # People read and diff this file: two-space indent, keys in the order to_dict gives them.
    scaler = Scaler(np.array([0.5]), np.array([2.0]), 4)
    bundle.write_preprocessing(tmp_path, bundle.Preprocessing(("a",), scaler, 0.25))
    assert (tmp_path / bundle.PREPROCESSING_FILE).read_text() == (
        "{\n"
        '  "feature_names": [\n'
        '    "a"\n'
        "  ],\n"
        '  "mean": [\n'
        "    0.5\n"
        "  ],\n"
        '  "scale": [\n'
        "    2.0\n"
        "  ],\n"
        '  "sequence_length": 4,\n'
        '  "threshold": 0.25,\n'
        '  "bin_encoding": null,\n'
        '  "input_ranges": null\n'
        "}\n"
    )


def test_metadata_json_lists_every_other_file_with_its_sha256(tmp_path: Path) -> None:
    directory = tmp_path / "v1"
    (directory / "plots").mkdir(parents=True)
    (directory / bundle.MODEL_FILE).write_bytes(b"onnx bytes")
    (directory / "plots" / "roc.png").write_bytes(b"png")
    model = hashlib.sha256(b"onnx bytes").hexdigest()
    roc = hashlib.sha256(b"png").hexdigest()
    # The caller's keys first, then what write_metadata adds; not sorted, two-space indent.
    expected = (
        "{\n"
        '  "metrics": {\n'
        '    "f1": 1.0\n'
        "  },\n"
        '  "format": 3,\n'
        '  "version": "v1",\n'
        '  "files": {\n'
        f'    "model.onnx": "{model}",\n'
        f'    "plots/roc.png": "{roc}"\n'
        "  }\n"
        "}\n"
    )
    bundle.write_metadata(directory, {"metrics": {"f1": 1.0}})
    assert (directory / bundle.METADATA_FILE).read_text() == expected
    # Writing it again does not list the old metadata.json.
    bundle.write_metadata(directory, {"metrics": {"f1": 1.0}})
    assert (directory / bundle.METADATA_FILE).read_text() == expected


def test_sha256_is_hashlibs_and_reads_a_large_file_in_1_mib_blocks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (16 << 12)  # 16 MiB, a plausible model size
    path = tmp_path / "big.onnx"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        digest = bundle.sha256(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(data).hexdigest()
    # The block being read and the one before it (2 MiB), never the whole file or bigger blocks.
    assert peak < 3 << 20


def test_fingerprint_is_the_first_16_hex_of_a_sha256_over_the_files_checksums(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "train.csv", tmp_path / "test.csv"
    first.write_bytes(b"a,b\n1,2\n")
    second.write_bytes(b"a,b\n3,4\n")
    hexes = hashlib.sha256(b"a,b\n1,2\n").hexdigest() + hashlib.sha256(b"a,b\n3,4\n").hexdigest()
    assert bundle.fingerprint([first, second]) == hashlib.sha256(hexes.encode()).hexdigest()[:16]
    assert bundle.fingerprint([second, first]) != bundle.fingerprint([first, second])
    assert bundle.fingerprint([]) == "e3b0c44298fc1c14"  # the sha256 of nothing


def test_new_version_is_the_utc_time_to_the_second() -> None:
    assert bundle.new_version(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20260102-030405"


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time 14 h ahead of UTC (a POSIX TZ string: needs no zoneinfo files)."""
    monkeypatch.setenv("TZ", "XYZ-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_new_version_defaults_to_now_in_utc_whatever_the_local_zone() -> None:
    assert time.localtime().tm_gmtoff == 14 * 3600  # the premise: local time is not UTC
    before = time.gmtime()
    version = bundle.new_version()
    after = time.gmtime()
    assert time.strftime("%Y%m%d-%H%M%S", before) <= version
    assert version <= time.strftime("%Y%m%d-%H%M%S", after)


# --------------------------------------------------------------------------------- reading bundles


def test_the_version_is_the_metadatas_or_else_the_folders_name(tmp_path: Path) -> None:
    directory = _make(tmp_path, "20260101-000000")
    # metadata.json is not in its own checksum list, so it can be rewritten here.
    _rewrite_metadata(directory, {"version": "release-7"})
    assert bundle.load(directory).version == "release-7"
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    del meta["version"]
    (directory / bundle.METADATA_FILE).write_text(json.dumps(meta))
    assert bundle.load(directory).version == "20260101-000000"


def test_unknown_format_says_which_formats_are_readable(tmp_path: Path) -> None:
    directory = _make(tmp_path, "v1")
    _rewrite_metadata(directory, {"format": "3"})  # a string is not the format 3
    with pytest.raises(bundle.BundleError) as raised:
        bundle.load(directory)
    assert str(raised.value) == (
        f"{directory / bundle.METADATA_FILE}: bundle format '3'; this version reads formats 1, 2, 3"
    )


def test_metadata_without_a_file_list_lists_no_model(tmp_path: Path) -> None:
    # No "files" at all is an empty list (nothing vouched for), not a malformed one.
    directory = _make(tmp_path, "v1")
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    del meta["files"]
    (directory / bundle.METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError) as raised:
        bundle.load(directory)
    assert str(raised.value) == f"{directory}: metadata lists no model.onnx"


def test_a_bundle_holding_a_latest_link_is_still_that_bundle(tmp_path: Path) -> None:
    # A folder with its own metadata.json is a bundle; `latest` is followed only where there is
    # none (a models folder), even if someone trained into a bundle folder.
    outer = _make(tmp_path, "v1")
    inner = _make(outer, "nested")
    assert (outer / bundle.LATEST).resolve() == inner
    assert bundle.load(outer).path == outer
    assert bundle.resolve(outer) == outer


def test_a_bundle_without_an_encoding_reads_back_as_none(tmp_path: Path) -> None:
    # Not an empty encoding: re-written, it must say "no encoding" again, as format 1 did.
    directory = _make(tmp_path, "v1")
    loaded = bundle.load(directory).preprocessing
    assert loaded.scaler.encoding is None
    written = json.loads((directory / bundle.PREPROCESSING_FILE).read_text())
    assert written["bin_encoding"] is None and loaded.to_dict() == written


def test_scaler_path_errors_say_what_to_set_instead(tmp_path: Path) -> None:
    first = _make(tmp_path, "20260101-000000")
    second = _make(tmp_path, "20260102-000000")
    expected = second / bundle.PREPROCESSING_FILE
    wrong = first / bundle.PREPROCESSING_FILE
    with pytest.raises(ValueError, match="is not the") as raised:
        bundle.check_scaler_path(tmp_path, wrong)
    assert str(raised.value) == (
        f"SCALER_PATH={wrong} is not the preprocessing.json of the bundle "
        f"MODEL_PATH={tmp_path} names ({expected}); the scaler is part of the bundle, so "
        "leave SCALER_PATH unset or point it at that file"
    )
    missing = tmp_path / "scaler.pkl"
    with pytest.raises(ValueError, match="is not a file") as raised:
        bundle.check_scaler_path(tmp_path, missing)
    assert str(raised.value) == (
        f"SCALER_PATH={missing} is not a file; the scaler is part of the model bundle, "
        f"so leave SCALER_PATH unset or set it to {expected}"
    )


#: preprocessing.json of two features, to break one field at a time.
GOOD_PREPROCESSING: dict[str, object] = {
    "feature_names": ["a", "b"],
    "mean": [0.0, 1.0],
    "scale": [1.0, 2.0],
    "sequence_length": 3,
    "threshold": 0.5,
}
SHAPE_ERROR = "preprocessing.json: mean/scale do not match the feature names"
VALUE_ERROR = "preprocessing.json: mean must be finite, scale finite and positive"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mean": [0.0]}, SHAPE_ERROR),  # the mean alone is short
        ({"scale": [1.0, 2.0, 3.0]}, SHAPE_ERROR),  # the scale alone is long
        ({"mean": [[0.0, 1.0]]}, SHAPE_ERROR),  # right size, wrong shape
        ({"scale": [1.0, 0.0]}, VALUE_ERROR),  # would divide by zero
        ({"scale": [1.0, -2.0]}, VALUE_ERROR),  # would flip the feature's sign
        # Each of these loaded and scored every row NaN (or lost the feature): NaN compares
        # False with everything, so `scale <= 0` let it through.
        ({"scale": [1.0, float("nan")]}, VALUE_ERROR),
        ({"scale": [float("inf"), 1.0]}, VALUE_ERROR),
        ({"mean": [float("nan"), 1.0]}, VALUE_ERROR),
        ({"mean": [0.0, None]}, VALUE_ERROR),  # JSON null
        ({"mean": [float("-inf"), 1.0]}, VALUE_ERROR),
        ({"scale": [1.0, None]}, VALUE_ERROR),
    ],
)
def test_preprocessing_refuses_a_mean_or_scale_that_cannot_standardise(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(bundle.BundleError) as raised:
        bundle.Preprocessing.from_dict({**GOOD_PREPROCESSING, **change})
    assert str(raised.value) == message


def test_preprocessing_reads_integers_as_floats() -> None:
    # A hand-edited file may say 1 for 1.0; the arrays are float64 whatever JSON held.
    loaded = bundle.Preprocessing.from_dict({**GOOD_PREPROCESSING, "mean": [0, 1], "scale": [1, 2]})
    assert loaded.scaler.mean.dtype == np.float64 and loaded.scaler.scale.dtype == np.float64
    np.testing.assert_array_equal(loaded.scaler.scale, [1.0, 2.0])
    assert loaded.to_dict()["mean"] == [0.0, 1.0]
    assert all(isinstance(v, float) for v in loaded.to_dict()["scale"])


def test_a_nan_scale_in_a_bundle_is_refused_at_load(tmp_path: Path) -> None:
    # End to end: checksums right, so only the values' check stands between it and NaN scores.
    directory = write_onnx_bundle(tmp_path / "v1")
    written = json.loads((directory / bundle.PREPROCESSING_FILE).read_text())
    written["scale"][2] = float("nan")  # Python's json writes and reads NaN
    (directory / bundle.PREPROCESSING_FILE).write_text(json.dumps(written))
    bundle.write_metadata(directory, {"metrics": {}})
    with pytest.raises(bundle.BundleError, match=re.escape(VALUE_ERROR)):
        bundle.load(directory)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"a": [0.0]}, "preprocessing.json: input ranges must map names to [low, high]"),
        ({"a": [1.0, 0.0]}, "preprocessing.json: input ranges: low above high"),
        (
            {"a": [0.0, 1.0], "speed": [0.0, 1.0]},
            "preprocessing.json: input ranges of unknown inputs ['speed']",
        ),
    ],
)
def test_preprocessing_refuses_input_ranges_it_cannot_use(
    ranges: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(bundle.BundleError) as raised:
        bundle.Preprocessing.from_dict({**GOOD_PREPROCESSING, "input_ranges": ranges})
    assert str(raised.value) == message


def test_input_ranges_round_trip_and_may_name_dt() -> None:
    ranges = {"b": [-1.0, 2.0], "dt": [0.25, 4.0]}
    loaded = bundle.Preprocessing.from_dict({**GOOD_PREPROCESSING, "input_ranges": ranges})
    assert loaded.scaler.ranges is not None and loaded.scaler.ranges.names == ("b", "dt")
    assert loaded.to_dict()["input_ranges"] == ranges
    assert bundle.Preprocessing.from_dict(GOOD_PREPROCESSING).scaler.ranges is None
