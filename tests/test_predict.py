"""`predict_csv` scores a chunk's windows on the model-call threads while it prepares the next.

The answers must not depend on how the model calls run (one at a time, several at once, or
ONNX Runtime's own threads) or on the first chunk being scored in two parts, and a file that
stops with an error must leave no calls queued.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

import pandas as pd
import pytest

from missile_classifier import predict
from missile_classifier.predict import predict_csv
from missile_classifier.schema import SchemaError
from missile_classifier.scoring.inference import (
    INFERENCE_BATCH,
    ModelInferenceService,
    PendingScores,
)
from missile_classifier.simulation.dataset import simulate_dataset, write_csv


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve ballistic tracks (~10,000 rows), their streams interleaved in time, so every
    chunk carries streams over from the one before."""
    frame = simulate_dataset("ballistic", 12, seed=11, test_fraction=0.0).train
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    path = tmp_path_factory.mktemp("predict") / "in.csv"
    write_csv(frame, path)
    return path


@pytest.mark.parametrize(
    ("threads", "calls"),
    [(1, None), (2, None), (None, 2), (None, 3)],
    ids=["one call, one thread", "one call, two threads", "two calls", "three calls"],
)
def test_the_output_is_the_same_however_the_model_calls_run(
    trained_bundle: Path, source: Path, tmp_path: Path, threads: int | None, calls: int | None
) -> None:
    models = trained_bundle / "models"
    expected, got = tmp_path / "expected.csv", tmp_path / "got.csv"
    # The reference: the whole file in one chunk, one call at a time on one runtime thread.
    predict_csv(ModelInferenceService(models, threads=1), source, expected, chunk_rows=10**6)
    # Chunks of several model calls each, so calls of two chunks are in flight at once.
    service = ModelInferenceService(models, threads=threads, calls=calls)
    summary = predict_csv(service, source, got, chunk_rows=2 * INFERENCE_BATCH + 7)
    assert summary.rows > 3 * (2 * INFERENCE_BATCH + 7)  # at least four chunks
    assert got.read_bytes() == expected.read_bytes()


def test_a_file_that_stops_with_an_error_leaves_no_model_call_queued(
    trained_bundle: Path, source: Path, tmp_path: Path
) -> None:
    # The first chunk's 8 calls wait in the queue (the call threads are held) when the second
    # chunk's bad row stops the file: they must be cancelled, not run for nothing.
    lines = source.read_text().splitlines(keepends=True)
    chunk = 8 * INFERENCE_BATCH
    assert len(lines) > chunk + 10
    bad = lines[chunk + 5].split(",")
    bad[0] = "noon"  # the timestamp column
    lines[chunk + 5] = ",".join(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines))
    service = ModelInferenceService(trained_bundle / "models", calls=3)  # two call threads
    assert service._pool is not None
    release = threading.Event()
    holding = [service._pool.submit(release.wait, 30) for _ in range(2)]
    try:
        with pytest.raises(SchemaError, match="timestamp"):
            predict_csv(service, broken, tmp_path / "out.csv", chunk_rows=chunk)
        queued = _drained(service._pool._work_queue)
    finally:
        release.set()
    assert len(queued) == 8 and all(call.cancelled() for call in queued)
    assert all(hold.result(timeout=30) for hold in holding)
    assert not (tmp_path / "out.csv").exists()


def _drained(queue: SimpleQueue[Any]) -> list[Future[Any]]:
    """The futures of the work items waiting in an executor's queue (taking them out)."""
    futures = []
    while True:
        try:
            futures.append(queue.get_nowait().future)
        except Empty:
            return futures


@pytest.fixture(scope="module")
def by_track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight ballistic tracks, each track's rows together, latest first: a chunk's rows may
    come in any order, so a part cut by rows in place of whole tracks would go back in time."""
    frame = simulate_dataset("ballistic", 8, seed=12, test_fraction=0.0).train
    frame = frame.sort_values(
        ["track_id", "sensor_id", "timestamp"], ascending=[True, True, False], kind="stable"
    )
    path = tmp_path_factory.mktemp("predict") / "by_track.csv"
    write_csv(frame.reset_index(drop=True), path)
    return path


def test_the_first_chunk_in_two_parts_of_whole_tracks_gives_the_same_bytes(
    trained_bundle: Path, by_track: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = trained_bundle / "models"
    expected, got = tmp_path / "expected.csv", tmp_path / "got.csv"
    monkeypatch.setattr(predict, "HEAD_ROWS", 10**9)  # the reference: the chunk in one part
    predict_csv(ModelInferenceService(models, threads=1), by_track, expected, chunk_rows=10**6)
    monkeypatch.setattr(predict, "HEAD_ROWS", 500)
    service = ModelInferenceService(models, calls=2)
    submit, parts = service.submit_batch, list[set[int]]()

    def recorded(columns: Any, memories: Any) -> Any:
        parts.append(set(columns["track_id"].tolist()))
        return submit(columns, memories)

    monkeypatch.setattr(service, "submit_batch", recorded)
    predict_csv(service, by_track, got, chunk_rows=10**6)
    assert got.read_bytes() == expected.read_bytes()
    # The tracks of the first 500 rows, then the others.
    track = pd.read_csv(by_track, usecols=["track_id"])["track_id"]
    assert parts == [set(track[:500]), set(track) - set(track[:500])] and all(parts)


def test_an_interrupt_while_the_second_part_is_built_cancels_the_first_parts_calls(
    trained_bundle: Path, by_track: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predict, "HEAD_ROWS", 500)
    service = ModelInferenceService(trained_bundle / "models", calls=3)  # two call threads
    assert service._pool is not None
    release = threading.Event()
    holding = [service._pool.submit(release.wait, 30) for _ in range(2)]
    submit, submitted = service.submit_batch, list[PendingScores]()

    def interrupted_on_the_second_part(*args: Any) -> Any:
        if submitted:  # Ctrl-C lands while the rest's windows are built
            raise KeyboardInterrupt
        submitted.append(submit(*args))
        return submitted[-1]

    monkeypatch.setattr(service, "submit_batch", interrupted_on_the_second_part)
    try:
        with pytest.raises(KeyboardInterrupt):
            predict_csv(service, by_track, tmp_path / "out.csv", chunk_rows=10**6)
        queued = _drained(service._pool._work_queue)
    finally:
        release.set()
    assert len(submitted) == 1 and len(queued) == len(submitted[0].calls.calls) > 0
    assert all(call.cancelled() for call in queued)
    assert all(hold.result(timeout=30) for hold in holding)
    assert not (tmp_path / "out.csv").exists()
