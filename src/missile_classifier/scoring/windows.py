"""From rows to model inputs: streams, features, scaling and sliding windows.

NumPy only, so training, batch scoring and the service all run exactly this code. Every row
gets a window of the ``sequence_length`` rows ending at it, within its stream; the first rows of
a stream are left-padded by repeating the stream's first row (an LSTM reads that as "no change
yet"), and ``context_points`` says how many real rows a window holds.

A stream can be windowed in one call or continued chunk by chunk (or point by point) from a
:class:`StreamMemory`: the feature state plus the last ``sequence_length - 1`` scaled rows. Both
give the same windows, which is what makes streaming answers equal batch answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from missile_classifier.columns import INPUT_COLUMNS, SENSOR_ID, TIMESTAMP, TRACK_ID
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import N_FEATURES, StreamState, stream_features


@dataclass(frozen=True)
class Scaler:
    """Feature rows → model input rows, fitted on training rows; and the window length.

    A model input row is the standardised features followed by the bin encoding of some of
    them (none without an ``encoding``).
    """

    mean: np.ndarray
    scale: np.ndarray
    sequence_length: int
    encoding: BinEncoding | None = None

    @property
    def n_inputs(self) -> int:
        """Values per model input row."""
        return len(self.mean) + (self.encoding.width if self.encoding is not None else 0)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Model input rows, float32 (the model's input type)."""
        scaled: np.ndarray = ((features - self.mean) / self.scale).astype(np.float32)
        if self.encoding is None or self.encoding.width == 0:
            return scaled
        return np.concatenate([scaled, self.encoding.transform(features)], axis=1)


@dataclass
class StreamMemory:
    """Everything the next rows of a stream need: O(1) in the stream's length."""

    state: StreamState
    #: Last ``sequence_length - 1`` scaled feature rows, oldest first (fewer at the start).
    recent: np.ndarray
    #: Rows seen so far.
    count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for a shared track store)."""
        return {"state": self.state.to_dict(), "recent": self.recent.tolist(), "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamMemory:
        """Inverse of :meth:`to_dict`."""
        recent = np.asarray(data["recent"], dtype=np.float32)
        if recent.size == 0:  # windows of one row keep no history (its width is then unknown)
            recent = np.empty((0, 0), dtype=np.float32)
        return cls(StreamState.from_dict(data["state"]), recent, int(data["count"]))


def sliding_windows(rows: np.ndarray, starts: np.ndarray, sequence_length: int) -> np.ndarray:
    """Window of the last ``sequence_length`` rows of its stream for every row.

    Args:
        rows: ``(n, F)`` rows in stream-sorted order.
        starts: For each row, the index of its stream's first row.
        sequence_length: Rows per window.

    Returns:
        ``(n, sequence_length, F)``; window ``i`` ends with row ``i``.
    """
    offsets = np.arange(sequence_length) - (sequence_length - 1)
    index = np.maximum(np.arange(len(rows))[:, None] + offsets[None, :], starts[:, None])
    windows: np.ndarray = rows[index]
    return windows


def stream_windows(
    columns: Mapping[str, np.ndarray], scaler: Scaler, memory: StreamMemory | None = None
) -> tuple[np.ndarray, np.ndarray, StreamMemory]:
    """Windows for consecutive rows of one stream, continuing after ``memory``.

    Args:
        columns: The stream's new rows (time-ordered): timestamp, latitude, longitude,
            altitude, radiometric_intensity.
        scaler: The training scaler and window length.
        memory: What earlier rows left, or ``None`` at the stream's start.

    Returns:
        Windows ``(n, L, F)``, context points per row ``(n,)`` and the memory after the rows.
    """
    features, state = stream_features(
        *(np.asarray(columns[c], dtype=np.float64) for c in INPUT_COLUMNS),
        state=None if memory is None else memory.state,
    )
    scaled = scaler.transform(features)
    before = 0 if memory is None else memory.count
    if memory is not None and len(memory.recent):
        # While the stream is shorter than a window, ``recent`` still starts at its first row,
        # so padding from index 0 pads with the stream's first row, as in one batch call.
        scaled = np.concatenate([memory.recent, scaled])
    length = scaler.sequence_length
    windows = sliding_windows(scaled, np.zeros(len(scaled), dtype=np.int64), length)
    n_old = len(scaled) - len(features)
    count = before + len(features)
    context = np.minimum(np.arange(before + 1, count + 1), length)
    keep = scaled[-(length - 1) :] if length > 1 else scaled[:0]
    return windows[n_old:], context, StreamMemory(state, keep.copy(), count)


@dataclass(frozen=True)
class Streams:
    """Rows grouped into streams: ``order`` sorts rows by (track, sensor, time)."""

    order: np.ndarray
    #: Index (in sorted order) of the first row of each stream, plus the total row count.
    bounds: np.ndarray

    def inverse(self) -> np.ndarray:
        """Permutation taking sorted rows back to input order."""
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        return inverse


def group_streams(track_id: np.ndarray, sensor_id: np.ndarray, timestamp: np.ndarray) -> Streams:
    """Group rows by (track_id, sensor_id), each group ordered by time (stable)."""
    order = np.lexsort((timestamp, sensor_id, track_id))
    if len(order) == 0:
        return Streams(order, np.zeros(1, dtype=np.int64))
    t, s = np.asarray(track_id)[order], np.asarray(sensor_id)[order]
    change = np.flatnonzero((t[1:] != t[:-1]) | (s[1:] != s[:-1])) + 1
    bounds = np.concatenate([[0], change, [len(order)]]).astype(np.int64)
    return Streams(order, bounds)


def _split_streams(
    columns: Mapping[str, np.ndarray],
) -> tuple[Streams, list[tuple[slice, dict[str, np.ndarray]]]]:
    """Rows grouped into streams: the grouping, and each stream's sorted rows with their slice."""
    streams = group_streams(columns[TRACK_ID], columns[SENSOR_ID], columns[TIMESTAMP])
    sorted_columns = {
        c: np.asarray(columns[c])[streams.order] for c in (*INPUT_COLUMNS, TRACK_ID, SENSOR_ID)
    }
    parts = [
        (slice(begin, end), {c: v[begin:end] for c, v in sorted_columns.items()})
        for begin, end in zip(streams.bounds[:-1], streams.bounds[1:], strict=True)
    ]
    return streams, parts


def batch_windows(
    columns: Mapping[str, np.ndarray],
    scaler: Scaler,
    memories: dict[tuple[int, int], StreamMemory] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows and context points of every row, in the input order of ``columns``.

    Args:
        columns: Column arrays of rows in any order (grouped into streams here).
        scaler: The training scaler and window length.
        memories: Optional per-stream memories to continue from; updated in place, so a
            caller can score a long file chunk by chunk.

    Raises:
        ValueError: If a stream's rows do not come after the time its memory has reached.
    """
    streams, parts = _split_streams(columns)
    n = len(streams.order)
    windows = np.empty((n, scaler.sequence_length, scaler.n_inputs), dtype=np.float32)
    context = np.empty(n, dtype=np.int64)
    for rows, part in parts:
        key = (int(part[TRACK_ID][0]), int(part[SENSOR_ID][0]))
        memory = memories.get(key) if memories is not None else None
        if memory is not None and part[TIMESTAMP][0] <= memory.state.timestamp:
            raise ValueError(
                f"stream (track_id={key[0]}, sensor_id={key[1]}): timestamp {part[TIMESTAMP][0]} "
                f"is not after {memory.state.timestamp}, already seen; rows of a stream must come "
                "in time order across chunks"
            )
        windows[rows], context[rows], new_memory = stream_windows(part, scaler, memory)
        if memories is not None:
            memories[key] = new_memory
    inverse = streams.inverse()
    return windows[inverse], context[inverse]


def batch_features(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Unscaled features of every row, in input order (what the scaler is fitted on)."""
    streams, parts = _split_streams(columns)
    features = np.empty((len(streams.order), N_FEATURES))
    for rows, part in parts:
        features[rows], _ = stream_features(*(part[c] for c in INPUT_COLUMNS))
    in_input_order: np.ndarray = features[streams.inverse()]
    return in_input_order
