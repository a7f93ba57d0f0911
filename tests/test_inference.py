"""ModelInferenceService: how it builds its ONNX Runtime session and what it promises callers.

The bundles here are hand-built around tiny real ONNX graphs whose answers follow from the
graph by inspection (the newest row's first input; the size of each ONNX Runtime call), so the
expected values never come from the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import NodeProto, TensorProto, checker, helper

from missile_classifier.columns import INPUT_COLUMNS, LATITUDE, SENSOR_ID, TIMESTAMP, TRACK_ID
from missile_classifier.scoring import bundle
from missile_classifier.scoring.encoding import PIECEWISE_LINEAR, BinEncoding
from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.scoring.inference import (
    INFERENCE_BATCH,
    ModelInferenceService,
    PendingScores,
    usable_cores,
)
from missile_classifier.scoring.ranges import InputRanges
from missile_classifier.scoring.windows import ModelInputs, Scaler, StreamMemory
from test_bundle import STREAM_ROWS, write_onnx_bundle

Dims = list[int | str | None]


def _write_model(
    path: Path, dims: Dims, nodes: list[NodeProto], initializers: list[TensorProto]
) -> None:
    """An ONNX model from ``windows`` (shape ``dims``, float) to ``probability`` ``[batch]``."""
    windows = helper.make_tensor_value_info("windows", TensorProto.FLOAT, dims)
    probability = helper.make_tensor_value_info("probability", TensorProto.FLOAT, [dims[0]])
    graph = helper.make_graph(nodes, "test", [windows], [probability], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _mean_model(path: Path, dims: Dims) -> None:
    """probability = mean of everything in a row's input (any rank)."""
    axes = list(range(1, len(dims)))
    _write_model(
        path,
        dims,
        [helper.make_node("ReduceMean", ["windows", "axes"], ["probability"], keepdims=0)],
        [helper.make_tensor("axes", TensorProto.INT64, [len(axes)], axes)],
    )


def _newest_first_input_model(path: Path, sequence_length: int, width: int) -> None:
    """probability = windows[:, L − 1, 0]: the newest row's first input, bit for bit."""
    _write_model(
        path,
        ["batch", sequence_length, width],
        [
            helper.make_node("Gather", ["windows", "last"], ["newest"], axis=1),
            helper.make_node("Gather", ["newest", "zero"], ["probability"], axis=1),
        ],
        [
            helper.make_tensor("last", TensorProto.INT64, [], [sequence_length - 1]),
            helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        ],
    )


def _call_size_model(path: Path, sequence_length: int, width: int) -> None:
    """probability = the number of windows in this ONNX Runtime call, on every row."""
    _write_model(
        path,
        ["batch", sequence_length, width],
        [
            helper.make_node("Shape", ["windows"], ["shape"]),
            helper.make_node("Slice", ["shape", "zero", "one"], ["n"]),  # [n], int64
            helper.make_node("Cast", ["n"], ["n_float"], to=TensorProto.FLOAT),
            helper.make_node("Expand", ["n_float", "n"], ["probability"]),  # n copies of n
        ],
        [
            helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        ],
    )


def _rechecksum(directory: Path) -> None:
    """Rewrite metadata.json so a deliberately changed file still passes the checksums."""
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    for key in ("format", "version", "files"):
        del meta[key]
    bundle.write_metadata(directory, meta)


#: Latitude divided by 100 (every other input scaled to ~0): the newest-first-input model then
#: answers float32(latitude / 100), bit for bit; 37.5 gives exactly 0.375.
LATITUDE_SCALE = 100.0


def _latitude_bundle(directory: Path, threshold: float, sequence_length: int = 3) -> Path:
    directory.mkdir(parents=True)
    _newest_first_input_model(directory / bundle.MODEL_FILE, sequence_length, N_FEATURES)
    scale = np.full(N_FEATURES, 1e4)
    scale[FEATURE_NAMES.index(LATITUDE)] = LATITUDE_SCALE
    scaler = Scaler(np.zeros(N_FEATURES), scale, sequence_length)
    bundle.write_preprocessing(directory, bundle.Preprocessing(FEATURE_NAMES, scaler, threshold))
    bundle.write_metadata(directory, {"metrics": {}})
    return directory


def _single_rows(latitudes: np.ndarray) -> dict[str, np.ndarray]:
    """One row per stream (each its own track): no history, no jump rule, context 1."""
    n = len(latitudes)
    return {
        TIMESTAMP: np.full(n, 1_000.0),
        TRACK_ID: np.arange(n),
        SENSOR_ID: np.ones(n, dtype=np.int64),
        LATITUDE: latitudes,
        "longitude": np.zeros(n),
        "altitude": np.zeros(n),
        "radiometric_intensity": np.zeros(n),
    }


# ------------------------------------------------------------------------ the ONNX Runtime session


def _options(service: ModelInferenceService) -> Any:
    # The options ONNX Runtime really runs with, read back from the live session.
    return service._session.get_session_options()


def test_by_default_every_core_runs_model_calls_of_one_runtime_thread(tmp_path: Path) -> None:
    service = ModelInferenceService(write_onnx_bundle(tmp_path / "v1"))
    assert _options(service).intra_op_num_threads == 1
    assert service.calls == usable_cores() == len(os.sched_getaffinity(0))  # no CPU quota here
    assert _options(service).log_severity_level == 3  # errors only: no warnings per load
    assert service._session.get_providers() == ["CPUExecutionProvider"]
    before = {t.name for t in threading.enumerate()}
    service.predict_windows(np.zeros((3 * INFERENCE_BATCH, 3, N_FEATURES), dtype=np.float32))
    started = {t.name for t in threading.enumerate()} - before
    if service.calls > 1:
        assert any(name.startswith("model-call") for name in started)  # the calls' own threads


def test_threads_or_calls_given_override_the_default_set_up(tmp_path: Path) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")

    def setup(service: ModelInferenceService) -> tuple[int, int]:
        return _options(service).intra_op_num_threads, service.calls

    # Runtime threads given: one call at a time (a server's request threads give concurrency).
    assert setup(ModelInferenceService(directory, threads=1)) == (1, 1)
    assert setup(ModelInferenceService(directory, threads=2)) == (2, 1)
    assert setup(ModelInferenceService(directory, calls=3)) == (1, 3)
    assert setup(ModelInferenceService(directory, threads=2, calls=4)) == (2, 4)
    assert ModelInferenceService(directory, threads=2)._pool is None  # no threads for one call


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_a_thread_allowed_one_core_counts_one_usable_core(tmp_path: Path) -> None:
    # The kernel's affinity mask of this thread, as a container's cpuset sets it.
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert usable_cores() == 1 and os.cpu_count() == len(allowed)
        assert ModelInferenceService(write_onnx_bundle(tmp_path / "v1")).calls == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert usable_cores() == len(allowed)


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None,
    reason="needs two cores and taskset",
)
def test_a_process_allowed_one_core_makes_one_call_at_a_time(tmp_path: Path) -> None:
    # The kernel's own affinity mask, set by taskset as a container's cpuset would: the
    # machine's core count (os.cpu_count()) is not what the process may use.
    directory = write_onnx_bundle(tmp_path / "v1")
    code = (
        "import os; from missile_classifier.scoring.inference import ModelInferenceService as M;"
        f"print(M({str(directory)!r}).calls, os.cpu_count())"
    )
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    calls, machine = map(int, pinned.stdout.split())
    assert (calls, machine) == (1, os.cpu_count())
    capped = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LOKY_MAX_CPU_COUNT": "1"},
    )
    assert capped.stdout.split()[0] == "1"


def test_the_default_model_path_is_models_with_its_latest_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle.point_latest(write_onnx_bundle(tmp_path / "models" / "20260101-000000"))
    monkeypatch.chdir(tmp_path)
    assert ModelInferenceService().model_version == "20260101-000000"


# ---------------------------------------------------------------------------- refusing a bundle


def test_a_bundle_of_other_features_is_refused_with_both_lists(tmp_path: Path) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    pre = json.loads((directory / bundle.PREPROCESSING_FILE).read_text())
    pre["feature_names"] = pre["feature_names"][::-1]  # same count: only the names tell
    (directory / bundle.PREPROCESSING_FILE).write_text(json.dumps(pre))
    _rechecksum(directory)
    with pytest.raises(bundle.BundleError) as raised:
        ModelInferenceService(directory)
    assert str(raised.value) == (
        f"{directory}: trained on the features {list(FEATURE_NAMES)[::-1]}, but this version "
        f"computes {list(FEATURE_NAMES)}; retrain the model"
    )


def test_a_model_onnx_runtime_cannot_load_says_so_with_its_reason(tmp_path: Path) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    model = directory / bundle.MODEL_FILE
    model.write_bytes(b"not a protobuf")
    _rechecksum(directory)
    # ONNX Runtime's own words for this file, straight from ONNX Runtime.
    with pytest.raises(Exception, match="INVALID_PROTOBUF") as direct:
        ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    with pytest.raises(bundle.BundleError) as raised:
        ModelInferenceService(directory)
    # Our words in the message (what clients may see, paths shortened); the library's own in
    # the detail, for logs and the CLI.
    assert str(raised.value) == f"{model}: ONNX Runtime cannot load it"
    assert raised.value.detail == str(direct.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("dims", "shown"),
    [
        (["batch", 3, 5], "['batch', 3, 5]"),  # free batch, wrong width
        ([7, 4, N_FEATURES], f"[7, 4, {N_FEATURES}]"),  # fixed dims, wrong window length
        (["batch", 3 * N_FEATURES], f"['batch', {3 * N_FEATURES}]"),  # flat rows: rank 2
        (["batch", 1, 3, N_FEATURES], f"['batch', 1, 3, {N_FEATURES}]"),  # rank 4
    ],
)
def test_a_model_input_that_cannot_take_the_windows_is_refused(
    tmp_path: Path, dims: Dims, shown: str
) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    model = directory / bundle.MODEL_FILE
    _mean_model(model, dims)
    _rechecksum(directory)
    with pytest.raises(bundle.BundleError) as raised:
        ModelInferenceService(directory)
    assert str(raised.value) == (
        f"{model}: the model takes windows of shape {shown}, but preprocessing.json makes "
        f"[batch, 3, {N_FEATURES}]"
    )


@pytest.mark.parametrize(
    "dims",
    [
        [1, 3, N_FEATURES],  # a fixed batch (of any size) is the model's business
        ["batch", "time", N_FEATURES],  # free dimensions match anything
        ["n", 3, "width"],
        [None, None, None],  # dimensions without even a name
    ],
)
def test_a_model_input_that_can_take_the_windows_loads(tmp_path: Path, dims: Dims) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    _mean_model(directory / bundle.MODEL_FILE, dims)
    _rechecksum(directory)
    service = ModelInferenceService(directory)
    # All 16 features of a point at 0°N 0°E, altitude 0, intensity 0 are 0: the mean is 0.
    zero = {"latitude": 0.0, "longitude": 0.0, "altitude": 0.0, "radiometric_intensity": 0.0}
    point = {"timestamp": 1_000.0, **zero}
    assert service.predict_single(point).probability.tolist() == [0.0]


# --------------------------------------------------------------------------------------- info()


def test_info_reports_every_field_of_the_bundle(tmp_path: Path) -> None:
    directory = tmp_path / "20260102-030405"
    directory.mkdir()
    altitude = FEATURE_NAMES.index("altitude")
    encoding = BinEncoding((altitude,), (np.array([0.0, 1e3, 1e5, 1e6]),), PIECEWISE_LINEAR)
    ranges = InputRanges(("altitude", "dt"), np.array([0.0, 0.25]), np.array([1e5, 4.0]))
    scaler = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 4, encoding, ranges)
    assert scaler.n_inputs == N_FEATURES + 3  # three bins
    _mean_model(directory / bundle.MODEL_FILE, ["batch", 4, N_FEATURES + 3])
    bundle.write_preprocessing(directory, bundle.Preprocessing(FEATURE_NAMES, scaler, 0.375))
    metrics = {"LSTM": {"f1": 0.875, "roc_auc": 0.9375}}
    data = {"train": "data/train.csv", "rows": 1_200}
    created = "2026-01-02T03:04:05+00:00"
    bundle.write_metadata(directory, {"created": created, "metrics": metrics, "data": data})
    assert ModelInferenceService(directory).info() == {
        "model_version": "20260102-030405",
        "created": created,
        "threshold": 0.375,
        "sequence_length": 4,
        "features": list(FEATURE_NAMES),
        "encoded_features": ["altitude"],
        "encoding_kind": "piecewise-linear",
        "input_ranges": {"altitude": [0.0, 1e5], "dt": [0.25, 4.0]},
        "metrics": metrics,
        "data": data,
    }


def test_info_of_a_bundle_without_encoding_or_optional_metadata(tmp_path: Path) -> None:
    info = ModelInferenceService(write_onnx_bundle(tmp_path / "v1")).info()
    assert info == {
        "model_version": "v1",
        "created": None,
        "threshold": 0.5,
        "sequence_length": 3,
        "features": list(FEATURE_NAMES),
        "encoded_features": [],
        "encoding_kind": None,
        "input_ranges": None,
        "metrics": {},
        "data": None,
    }


# ----------------------------------------------------------------------------------- scoring


def test_the_threshold_decides_at_or_above_it_reentry(tmp_path: Path) -> None:
    # Probabilities latitude / 100 = 0.25, 0.37, 0.375 (exactly the threshold), 0.38, 0.5.
    service = ModelInferenceService(_latitude_bundle(tmp_path / "v1", threshold=0.375))
    latitudes = np.array([25.0, 37.0, 37.5, 38.0, 50.0])
    scores = service.predict_batch(_single_rows(latitudes))
    np.testing.assert_array_equal(scores.probability, np.float32(latitudes / 100))
    assert scores.reentry_phase.tolist() == [0, 0, 1, 1, 1]
    assert scores.reentry_phase.dtype == np.int64
    assert scores.context_points.tolist() == [1] * 5 and scores.quarantined == 0


@pytest.mark.parametrize("calls", [1, 3])
def test_a_large_batch_is_scored_in_calls_of_inference_batch_windows(
    tmp_path: Path, calls: int
) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    _call_size_model(directory / bundle.MODEL_FILE, 3, N_FEATURES)
    _rechecksum(directory)
    service = ModelInferenceService(directory, threads=1, calls=calls)
    for n, sizes in [
        (1, [1]),
        (INFERENCE_BATCH, [INFERENCE_BATCH]),
        (INFERENCE_BATCH + 1, [INFERENCE_BATCH, 1]),
        (2 * INFERENCE_BATCH + 5, [INFERENCE_BATCH, INFERENCE_BATCH, 5]),
    ]:
        probability = service.predict_windows(np.zeros((n, 3, N_FEATURES), dtype=np.float32))
        expected = np.concatenate([np.full(size, size) for size in sizes])
        np.testing.assert_array_equal(probability, expected, err_msg=f"{n} windows")


@pytest.mark.parametrize("calls", [1, 2, 3])
def test_a_chunked_batch_answers_each_window_as_one_call_would(tmp_path: Path, calls: int) -> None:
    # 2,053 windows in three calls: every answer is its own window's newest first input, in
    # input order, so the chunks neither overlap, skip nor reorder, one call at a time or
    # several at once (then finishing in any order).
    directory = _latitude_bundle(tmp_path / "v1", threshold=0.5)
    service = ModelInferenceService(directory, threads=1, calls=calls)
    n = 2 * INFERENCE_BATCH + 5
    windows = np.random.default_rng(3).normal(size=(n, 3, N_FEATURES)).astype(np.float32)
    probability = service.predict_windows(windows)
    assert probability.dtype == np.float32
    np.testing.assert_array_equal(probability, windows[:, -1, 0])
    # And through predict_batch: one row per stream, each answering float32(latitude / 100).
    latitudes = (np.arange(n) % 720) / 8 - 45.0
    scores = service.predict_batch(_single_rows(latitudes))
    np.testing.assert_array_equal(scores.probability, np.float32(latitudes / 100))
    assert scores.reentry_phase.tolist() == (latitudes >= 50.0).astype(int).tolist()


def test_empty_inputs_give_empty_scores(tmp_path: Path) -> None:
    service = ModelInferenceService(write_onnx_bundle(tmp_path / "v1"))
    probability = service.predict_windows(np.empty((0, 3, N_FEATURES), dtype=np.float32))
    assert probability.shape == (0,) and probability.dtype == np.float32
    empty = {c: np.empty(0) for c in (TRACK_ID, SENSOR_ID, *INPUT_COLUMNS)}
    scores = service.predict_batch(empty)
    assert scores.probability.shape == (0,) and scores.probability.dtype == np.float32
    assert scores.reentry_phase.shape == (0,) and scores.context_points.shape == (0,)
    assert scores.quarantine.shape == (0,) and scores.restarted.shape == (0,)
    # A stream that has begun may get no new rows; one that has not is an error.
    _, memory = service.predict_stream({c: v[:1] for c, v in STREAM_ROWS.items()}, None)
    scores, after = service.predict_stream(empty, memory)
    assert scores.probability.shape == (0,) and after is memory
    with pytest.raises(ValueError, match="a stream needs at least one row"):
        service.predict_stream(empty, None)


def test_a_batch_in_chunks_continues_each_stream_from_its_memory(tmp_path: Path) -> None:
    service = ModelInferenceService(write_onnx_bundle(tmp_path / "v1"))
    whole = service.predict_batch(STREAM_ROWS)
    memories: dict[tuple[int, int], StreamMemory] = {}
    first = service.predict_batch({c: v[:2] for c, v in STREAM_ROWS.items()}, memories)
    assert list(memories) == [(4, 2)]  # updated in place
    second = service.predict_batch({c: v[2:] for c, v in STREAM_ROWS.items()}, memories)
    # Windows of L = 3: the second chunk's rows have two earlier rows each, as in one call.
    assert first.context_points.tolist() == [1, 2]
    assert second.context_points.tolist() == [3, 3, 3, 3]
    np.testing.assert_allclose(
        np.concatenate([first.probability, second.probability]), whole.probability, rtol=1e-6
    )
    # The chunks are not scored as fresh streams: a fresh start would differ.
    fresh = service.predict_batch({c: v[2:] for c, v in STREAM_ROWS.items()})
    assert fresh.context_points.tolist() == [1, 2, 3, 3]
    assert not np.allclose(fresh.probability, second.probability, rtol=1e-6, atol=0)


def test_a_single_point_is_one_row_with_one_context_point(tmp_path: Path) -> None:
    service = ModelInferenceService(_latitude_bundle(tmp_path / "v1", threshold=0.375))
    point = {"timestamp": 1_000.0, "latitude": 37.5, "longitude": 0.0, "altitude": 0.0}
    scores = service.predict_single({**point, "radiometric_intensity": 0.0})
    assert scores.probability.tolist() == [0.375] and scores.reentry_phase.tolist() == [1]
    assert scores.context_points.tolist() == [1] and scores.quarantine.tolist() == [0]
    assert scores.restarted.shape == (1,)


def test_a_batch_of_no_windows_is_never_sent_to_onnx_runtime(trained_bundle: Path) -> None:
    # ONNX Runtime aborts the process (not an exception) on a bidirectional LSTM given a batch
    # axis of 0; were such a batch sent, this test would take pytest down with it.
    service = ModelInferenceService(trained_bundle / "models")
    shape = (service.scaler.sequence_length, service.scaler.n_inputs)
    windows = np.random.default_rng(3).random((5, *shape), dtype=np.float32)
    empty = np.empty((0, *shape), dtype=np.float32)
    assert service._run(empty).shape == (0,) and service._run(empty).dtype == np.float32
    run = service._run
    parts = np.concatenate([run(windows[:2]), run(empty), run(windows[2:])])
    np.testing.assert_array_equal(parts, service.predict_windows(windows))
    assert service.predict_windows(empty).shape == (0,)


def test_calls_not_started_are_cancelled_and_never_run(tmp_path: Path) -> None:
    service = ModelInferenceService(write_onnx_bundle(tmp_path / "v1"), calls=3)
    release, asked = threading.Event(), []

    def windows(part: slice) -> np.ndarray:
        asked.append(part.start)
        release.wait(timeout=30)  # both call threads hold their call until released
        return np.zeros((part.stop - part.start, 3, N_FEATURES), dtype=np.float32)

    calls = service._start(10 * INFERENCE_BATCH, windows)
    pending = PendingScores(_no_inputs(), 0.5, calls)
    pending.cancel()
    release.set()
    futures = [c for c in calls.calls if isinstance(c, Future)]
    assert [c.cancelled() for c in futures] == [False, False] + [True] * 8
    assert [c.result().shape for c in futures[:2]] == [(INFERENCE_BATCH,)] * 2  # the two ran
    assert sorted(asked) == [0, INFERENCE_BATCH]  # and no other call gathered its windows


def test_the_thread_asking_for_the_answers_runs_the_calls_not_started(tmp_path: Path) -> None:
    # Two calls at once: one call thread, and the asking thread, which takes every call the
    # call thread has not started while it waits, so both cores work (and no third thread).
    service = ModelInferenceService(write_onnx_bundle(tmp_path / "v1"), calls=2)
    n, shape = 10 * INFERENCE_BATCH, (3, N_FEATURES)
    windows = np.random.default_rng(5).random((n, *shape), dtype=np.float32)
    expected = ModelInferenceService(write_onnx_bundle(tmp_path / "v2"), threads=1)
    release, ran_by = threading.Event(), {}

    def gather(part: slice) -> np.ndarray:
        ran_by[part.start] = threading.current_thread().name
        if part.start == 0:
            release.wait(timeout=30)  # the call thread holds the first call…
        elif len(ran_by) == 10:
            release.set()  # …until the asking thread has taken all the others
        return windows[part]

    calls = service._start(n, gather)
    got = calls.answers()
    main = threading.current_thread().name
    assert ran_by[0].startswith("model-call")
    assert [ran_by[b] for b in range(INFERENCE_BATCH, n, INFERENCE_BATCH)] == [main] * 9
    np.testing.assert_array_equal(got, expected.predict_windows(windows))  # in call order


def _no_inputs() -> ModelInputs:
    empty = np.empty(0)
    return ModelInputs(np.empty((0, 3, N_FEATURES), np.float32), empty, empty, empty, empty, empty)
