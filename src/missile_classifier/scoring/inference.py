"""Scoring with a bundle: ONNX Runtime plus the shared feature and window code.

The only place that runs the model outside training. Needs NumPy and onnxruntime (and
joblib's pure-Python core count, for batch scoring's default), no torch, no pandas, so the
serving image stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from missile_classifier.scoring import bundle as bundles
from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.scoring.windows import (
    ModelInputs,
    Scaler,
    StreamMemory,
    batch_inputs,
    stream_inputs,
)

#: Windows per ONNX Runtime call: large enough to amortise the call, small enough for a call's
#: windows and activations to stay in its core's cache. Measured with a call per core on 2
#: cores: where a core has 1 MiB of L2, 256 windows a call ran 1.3× faster than 1,024 (the model
#: alone and ``predict`` CSV→CSV alike); on a machine where 256 and 1,024 ran alike, 50,000 ran
#: 10× slower.
INFERENCE_BATCH = 256


@dataclass(frozen=True)
class Scores:
    """Probabilities and decisions for rows, in the order they were given."""

    probability: np.ndarray
    reentry_phase: np.ndarray
    context_points: np.ndarray
    #: Index into :data:`~missile_classifier.scoring.plausibility.REASONS`: 0 for a row that
    #: entered its stream; else the jump rule it broke (it has its stream's previous answer).
    quarantine: np.ndarray
    #: The row started its stream afresh (earlier points kept disagreeing with it).
    restarted: np.ndarray
    #: The stream saw the climb to its running maximum; where not (a stream first seen at or
    #: after apogee), the answer relies on a maximum that may not be the track's.
    maximum_established: np.ndarray
    #: ``(n, k)`` bool: the row's inputs far outside their training range, in the order of
    #: :attr:`ModelInferenceService.range_names` (``k = 0`` for bundles without ranges).
    out_of_range: np.ndarray

    @property
    def quarantined(self) -> int:
        """Rows quarantined by the jump rule."""
        return int(np.count_nonzero(self.quarantine))


@dataclass(frozen=True)
class ModelCalls:
    """A batch's model calls, :data:`INFERENCE_BATCH` windows each: answered, or queued for or
    running on the call threads."""

    calls: list[np.ndarray | Future[np.ndarray]]
    #: Runs call ``i`` on the thread that asks (for a call no call thread has started).
    run: Callable[[int], np.ndarray]

    def answers(self) -> np.ndarray:
        """The probabilities of every call, in order, once all have answered.

        The asking thread runs every call no call thread has started instead of waiting for
        them: with a call thread fewer than the calls at once, that keeps one thread per core
        busy, where a call thread per core made the caller's next batch a third thread on two
        cores, slowing both (docs/performance.md).
        """
        here = [
            self.run(i) if isinstance(call, Future) and call.cancel() else call
            for i, call in enumerate(self.calls)
        ]
        return _joined([_answer(call) for call in here])

    def cancel(self) -> None:
        """Drop the calls not started yet (their answers will not be asked for)."""
        for call in self.calls:
            if isinstance(call, Future):
                call.cancel()


@dataclass(frozen=True)
class PendingScores:
    """A batch whose features and windows are built and whose model calls have started."""

    inputs: ModelInputs
    threshold: float
    calls: ModelCalls

    def result(self) -> Scores:
        """The scores, once every model call has answered (running those not started yet)."""
        probability = self.calls.answers()
        inputs = self.inputs
        return Scores(
            probability,
            (probability >= self.threshold).astype(np.int64),
            inputs.context_points,
            inputs.quarantine,
            inputs.restarted,
            inputs.maximum_established,
            inputs.out_of_range,
        )

    def cancel(self) -> None:
        """Drop the calls not started yet (the batch will not be used)."""
        self.calls.cancel()


class ModelInferenceService:
    """Load a verified bundle and score observations: single points, streams and batches.

    Args:
        model_path: A bundle folder, or a folder with a ``latest`` link (default ``models``).
        threads: ONNX Runtime intra-op threads of each model call.
        spinning: Whether idle runtime threads spin waiting for work (ONNX Runtime's default).
            Spinning saves a wake-up per call but keeps burning the cores for a while after
            it; a server whose request threads and other workers need those cores turns it off.
        calls: Model calls run at once for batches of more than :data:`INFERENCE_BATCH`
            windows: ``calls - 1`` on call threads of their own, and one on the thread that
            asks for the answers, which runs the calls not started yet while it waits.

    With neither ``threads`` nor ``calls``, each call has one runtime thread and there is a
    call per core the process may use (:func:`usable_cores`): batch scoring's fastest set-up,
    as whole calls side by side never wait for each other, where one call's runtime threads
    meet at every step of the LSTM, and the caller may build the next batch's windows while
    the call threads run, then joins them (docs/performance.md). With ``threads`` alone,
    calls run one at a time (a server's request threads give concurrency); with ``calls``
    alone, each has one runtime thread.
    """

    def __init__(
        self,
        model_path: str | Path = "models",
        threads: int | None = None,
        spinning: bool = True,
        calls: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if threads is None and calls is None:
            threads, calls = 1, usable_cores()
        self.bundle = bundles.load(model_path)
        pre = self.bundle.preprocessing
        if tuple(pre.feature_names) != FEATURE_NAMES:
            # The scaler's columns would be applied to other features: wrong answers, no error.
            raise bundles.BundleError(
                f"{self.bundle.path}: trained on the features {list(pre.feature_names)}, but "
                f"this version computes {list(FEATURE_NAMES)}; retrain the model"
            )
        self.scaler = pre.scaler
        self.threshold = pre.threshold
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 1
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(self.bundle.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime's errors (Fail, InvalidProtobuf…) are plain
            raise bundles.BundleError(
                f"{self.bundle.model_path}: ONNX Runtime cannot load it", detail=str(exc)
            ) from None
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        _check_input_shape(model_input.shape, self.scaler, self.bundle.model_path)
        self.calls = calls or 1
        # A call thread fewer than calls: the thread asking for the answers is the last one.
        self._pool = (
            ThreadPoolExecutor(self.calls - 1, thread_name_prefix="model-call")
            if self.calls > 1
            else None
        )

    @property
    def model_version(self) -> str:
        """The bundle's version (its folder name)."""
        return self.bundle.version

    @property
    def range_names(self) -> tuple[str, ...]:
        """The inputs whose training range is checked (columns of ``Scores.out_of_range``)."""
        return self.scaler.ranges.names if self.scaler.ranges is not None else ()

    def info(self) -> dict[str, Any]:
        """Model metadata for ``/info`` and logs."""
        meta, pre = self.bundle.metadata, self.bundle.preprocessing
        encoding = self.scaler.encoding
        return {
            "model_version": self.model_version,
            "created": meta.get("created"),
            "threshold": self.threshold,
            "sequence_length": self.scaler.sequence_length,
            "features": list(pre.feature_names),
            "encoded_features": encoding.names(pre.feature_names) if encoding is not None else [],
            "encoding_kind": encoding.kind if encoding is not None else None,
            "input_ranges": self.scaler.ranges.to_dict() if self.scaler.ranges else None,
            "metrics": meta.get("metrics"),
            "data": meta.get("data"),
        }

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probability for each window ``(n, L, F)``."""
        return self._start(len(windows), windows.__getitem__).answers()

    def _start(self, n: int, windows: Callable[[slice], np.ndarray]) -> ModelCalls:
        """Model calls on ``windows(part)`` for ``n`` windows, :data:`INFERENCE_BATCH` a call:
        queued for the call threads (each gathering its windows when it runs, so a batch's
        windows are never all held at once), or run here, one after another, with a single
        call at a time."""
        parts = [slice(b, b + INFERENCE_BATCH) for b in range(0, n, INFERENCE_BATCH)]

        def run(i: int) -> np.ndarray:
            return self._run(windows(parts[i]))

        if self._pool is not None:
            return ModelCalls([self._pool.submit(run, i) for i in range(len(parts))], run)
        return ModelCalls([run(i) for i in range(len(parts))], run)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        """One ONNX Runtime call's probabilities."""
        # A batch of no windows is never sent: ONNX Runtime aborts the whole process on one
        # (the bidirectional LSTM's batch axis of 0), where a missing answer is only an error.
        if not len(windows):
            return np.empty(0, dtype=np.float32)
        out: np.ndarray = self._session.run(None, {self._input: windows})[0]
        return out

    def submit_batch(
        self,
        columns: Mapping[str, np.ndarray],
        memories: dict[tuple[int, int], StreamMemory] | None = None,
    ) -> PendingScores:
        """:meth:`predict_batch`, returning once the features and windows are built (and
        ``memories`` updated): with several calls at once the model runs on the call threads
        meanwhile, and the caller may build the next chunk's windows beside it."""
        return self._pending(batch_inputs(columns, self.scaler, memories))

    def _pending(self, inputs: ModelInputs) -> PendingScores:
        return PendingScores(
            inputs, self.threshold, self._start(len(inputs.context_points), inputs.window_batch)
        )

    def predict_batch(
        self,
        columns: Mapping[str, np.ndarray],
        memories: dict[tuple[int, int], StreamMemory] | None = None,
    ) -> Scores:
        """Score rows in any order; streams are formed by (track_id, sensor_id) and time.

        Args:
            columns: Column arrays (timestamp, track_id, sensor_id, latitude, longitude,
                altitude, radiometric_intensity).
            memories: Per-stream memories to continue from (updated in place), for scoring a
                long file in chunks; ``None`` treats every stream as starting here.
        """
        return self.submit_batch(columns, memories).result()

    def predict_stream(
        self, columns: Mapping[str, np.ndarray], memory: StreamMemory | None
    ) -> tuple[Scores, StreamMemory]:
        """Score the next time-ordered rows of one stream, continuing from ``memory``."""
        inputs, new_memory = stream_inputs(columns, self.scaler, memory)
        return self._pending(inputs).result(), new_memory

    def predict_single(self, point: Mapping[str, float]) -> Scores:
        """Score one observation on its own (no history: one context point)."""
        columns = {k: np.array([v], dtype=np.float64) for k, v in point.items()}
        scores, _ = self.predict_stream(columns, None)
        return scores


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a
    container's CPU limit, which ``os.cpu_count()`` does not see) and ``LOKY_MAX_CPU_COUNT``."""
    from joblib import cpu_count  # reads the affinity mask and cgroup v1 and v2 quotas

    return max(1, int(cpu_count(only_physical_cores=False)))


def _answer(call: np.ndarray | Future[np.ndarray]) -> np.ndarray:
    return call if isinstance(call, np.ndarray) else call.result()


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The calls' probabilities as one float32 array (empty for no calls)."""
    if not parts:
        return np.empty(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def _check_input_shape(shape: list[Any], scaler: Scaler, model_path: Path) -> None:
    """Refuse a model whose input cannot take the windows the preprocessing makes.

    Dimensions the model leaves free (names such as ``batch``) match anything.
    """
    expected = ("batch", scaler.sequence_length, scaler.n_inputs)
    fits = len(shape) == 3 and all(
        not isinstance(have, int) or want == "batch" or have == want
        for have, want in zip(shape, expected, strict=True)
    )
    if not fits:
        raise bundles.BundleError(
            f"{model_path}: the model takes windows of shape {shape}, but preprocessing.json "
            f"makes [batch, {scaler.sequence_length}, {scaler.n_inputs}]"
        )
