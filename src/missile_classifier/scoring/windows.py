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

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from missile_classifier.columns import (
    ALTITUDE,
    INPUT_COLUMNS,
    INTENSITY,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import (
    FEATURE_NAMES,
    N_FEATURES,
    RunStates,
    StateArrays,
    StreamState,
    ecef,
    point_features,
    run_features,
)
from missile_classifier.scoring.plausibility import Reference, Screening, judge_point, screen
from missile_classifier.scoring.ranges import DT, InputRanges

#: A stream's key: ``(track_id, sensor_id)``.
StreamKey = tuple[int, int]
_ESTABLISHED = FEATURE_NAMES.index("maximum_established")


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
    #: The training range of every feature and of Δt (``None``: not recorded, nothing flagged).
    ranges: InputRanges | None = None

    @property
    def n_inputs(self) -> int:
        """Values per model input row."""
        return len(self.mean) + (self.encoding.width if self.encoding is not None else 0)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Model input rows, float32 (the model's input type)."""
        # Each part written into its columns of one array: no float32 copy of each joined.
        inputs = np.empty((len(features), self.n_inputs), dtype=np.float32)
        standard = np.subtract(features, self.mean)
        np.divide(standard, self.scale, out=standard)
        inputs[:, : len(self.mean)] = standard  # rounded to float32 once, as astype
        if self.encoding is not None and self.encoding.width:
            self.encoding.transform(features, out=inputs[:, len(self.mean) :])
        return inputs


@dataclass
class StreamMemory:
    """Everything the next rows of a stream need: O(1) in the stream's length."""

    state: StreamState
    #: The window of the stream's last accepted row: its last ``sequence_length`` scaled rows,
    #: oldest first (fewer at the stream's start). A quarantined next point is answered with it.
    recent: np.ndarray
    #: Rows the stream holds (accepted since it started).
    count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for a shared track store).

        The rows go as the base64 of their float32 bytes (little-endian), ``width`` values
        each: exact, and a tenth of the time of writing them as JSON numbers, which the Redis
        store pays on every point (~0.17 ms for a window of 10 × 37). Earlier versions wrote
        lists of numbers; :meth:`from_dict` reads both.
        """
        rows = np.ascontiguousarray(self.recent, dtype="<f4")
        return {
            "state": self.state.to_dict(),
            "recent": base64.b64encode(rows.tobytes()).decode("ascii"),
            "width": rows.shape[1],  # a memory holds at least one row (from_dict checks)
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamMemory:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` is not a memory of this version.
        """
        try:
            recent = _recent_rows(data["recent"], data)
            memory = cls(StreamState.from_dict(data["state"]), recent, int(data["count"]))
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a stream memory of this version: {exc}") from None
        if recent.ndim != 2 or len(recent) == 0:
            raise ValueError("not a stream memory of this version: no recent rows")
        return memory


def _recent_rows(recent: object, data: dict[str, Any]) -> np.ndarray:
    """A memory's rows from their stored form: base64 float32 bytes, or (earlier) lists."""
    if not isinstance(recent, str):
        return np.asarray(recent, dtype=np.float32)
    flat = np.frombuffer(base64.b64decode(recent, validate=True), dtype="<f4")
    width = data["width"]
    if not isinstance(width, int) or width <= 0 or len(flat) % width:
        raise ValueError(f"not a stream memory of this version: rows of width {width!r}")
    return flat.reshape(-1, width).astype(np.float32)  # native byte order, writable


@dataclass(frozen=True)
class WindowRows:
    """Windows not gathered yet: window ``i`` holds the ``length`` rows of ``rows`` ending at
    ``ends[i]``, left-padded with the row at ``starts[i]``.

    A 200,000-row chunk's windows are ~300 MB of float32 (``length`` copies of every row);
    gathered a model batch at a time, each batch is built while the cache holds it and read
    from there by the model, which makes the batch path faster as well as smaller.
    """

    rows: np.ndarray
    ends: np.ndarray
    starts: np.ndarray
    length: int

    def __len__(self) -> int:
        return len(self.ends)

    def gather(self, part: slice = slice(None)) -> np.ndarray:
        """The windows in ``part``, ``(k, length, n_inputs)``."""
        return _gather(self.rows, self.ends[part], self.starts[part], self.length)

    def take(self, index: np.ndarray) -> WindowRows:
        """The windows at ``index``, in that order, still not gathered."""
        return WindowRows(self.rows, self.ends[index], self.starts[index], self.length)


@dataclass(frozen=True)
class ModelInputs:
    """What the model reads for each row, and how the row was treated."""

    #: The windows, ``(n, sequence_length, n_inputs)`` float32, or the rows to gather them
    #: from (see :attr:`windows` and :meth:`window_batch`).
    window_source: np.ndarray | WindowRows
    #: Real rows in each window.
    context_points: np.ndarray
    #: Index into :data:`~missile_classifier.scoring.plausibility.REASONS`: 0 if the row
    #: entered its stream, else the rule it broke (it then has its stream's previous window).
    quarantine: np.ndarray
    #: The row started its stream afresh after points that kept disagreeing with it.
    restarted: np.ndarray
    #: The stream's running maximum is the track's (see ``MIN_RISE_M`` in :mod:`.features`):
    #: where it is not, "below half of the maximum" is a guess.
    maximum_established: np.ndarray
    #: ``(n, len(scaler.ranges.names))`` bool: the row's inputs far outside their training
    #: range (:mod:`.ranges`); ``(n, 0)`` without ranges. False for a quarantined row.
    out_of_range: np.ndarray

    @property
    def windows(self) -> np.ndarray:
        """``(n, sequence_length, n_inputs)`` float32 (gathered at each call if not yet)."""
        source = self.window_source
        return source if isinstance(source, np.ndarray) else source.gather()

    def window_batch(self, part: slice) -> np.ndarray:
        """The windows of the rows in ``part``, gathered now if not yet."""
        source = self.window_source
        return source[part] if isinstance(source, np.ndarray) else source.gather(part)

    def take(self, index: np.ndarray) -> ModelInputs:
        """The rows at ``index``, in that order."""
        source = self.window_source
        return ModelInputs(
            source[index] if isinstance(source, np.ndarray) else source.take(index),
            self.context_points[index],
            self.quarantine[index],
            self.restarted[index],
            self.maximum_established[index],
            self.out_of_range[index],
        )


def sliding_windows(rows: np.ndarray, starts: np.ndarray, sequence_length: int) -> np.ndarray:
    """Window of the last ``sequence_length`` rows of its stream for every row.

    Args:
        rows: ``(n, F)`` rows in stream-sorted order.
        starts: For each row, the index of its stream's first row.
        sequence_length: Rows per window.

    Returns:
        ``(n, sequence_length, F)``; window ``i`` ends with row ``i``.
    """
    return _gather(rows, np.arange(len(rows)), starts, sequence_length)


def _gather(rows: np.ndarray, ends: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows of ``rows`` ending at ``ends``, left-padded with the row at ``starts``."""
    offsets = np.arange(length) - (length - 1)
    index = np.maximum(ends[:, None] + offsets[None, :], starts[:, None])
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
    inputs, after = stream_inputs(columns, scaler, memory)
    return inputs.windows, inputs.context_points, after


def stream_inputs(
    columns: Mapping[str, np.ndarray], scaler: Scaler, memory: StreamMemory | None = None
) -> tuple[ModelInputs, StreamMemory]:
    """Like :func:`stream_windows`, with how each row was treated (see :class:`ModelInputs`)."""
    n = len(columns[TIMESTAMP])
    if n == 0:
        if memory is None:
            raise ValueError("a stream needs at least one row")
        return _no_inputs(scaler), memory
    values = {c: np.asarray(columns[c], dtype=np.float64) for c in INPUT_COLUMNS}
    if n == 1:  # a point of a stream, as the service gets them
        return _point_inputs(values, scaler, memory)
    inputs, memories = _inputs_of_streams(values, np.array([0, n]), [memory], scaler, True)
    assert memories is not None
    return inputs, memories[0]


def _no_inputs(scaler: Scaler) -> ModelInputs:
    return ModelInputs(
        np.empty((0, scaler.sequence_length, scaler.n_inputs), dtype=np.float32),
        np.empty(0, dtype=np.int64),
        np.empty(0, dtype=np.int8),
        np.empty(0, dtype=bool),
        np.empty(0, dtype=bool),
        np.empty((0, len(scaler.ranges.names) if scaler.ranges else 0), dtype=bool),
    )


def _point_inputs(
    values: Mapping[str, np.ndarray], scaler: Scaler, memory: StreamMemory | None
) -> tuple[ModelInputs, StreamMemory]:
    """:func:`_inputs_of_streams` for one row of one stream, without its array machinery.

    The same steps (jump rule, features, scaling, window, memory) on plain values, each
    arriving at what the array code computes for a one-row stream: the tests check that a
    stream fed point by point through here equals the same stream scored in one call.
    """
    t, altitude, intensity = (float(values[c][0]) for c in (TIMESTAMP, ALTITUDE, INTENSITY))
    prior = memory.state if memory is not None else None
    if prior is not None and t <= prior.timestamp:
        raise ValueError("timestamps of a stream must strictly increase")
    arrays = ecef(values[LATITUDE], values[LONGITUDE], values[ALTITUDE])
    xyz = (float(arrays[0][0]), float(arrays[1][0]), float(arrays[2][0]))
    reason, restart = 0, False
    if prior is not None:
        reason, restart = judge_point(
            (t, altitude, *xyz),
            (prior.timestamp, prior.altitude, prior.x, prior.y, prior.z),
            prior.quarantined,
        )
    length = scaler.sequence_length
    if reason:  # quarantined: the stream's last window answers, and the memory stays
        assert memory is not None and prior is not None
        inputs = ModelInputs(
            _padded(memory.recent, length)[None],
            np.array([min(memory.count, length)], dtype=np.int64),
            np.array([reason], dtype=np.int8),
            np.zeros(1, dtype=bool),
            np.array([prior.maximum_established > 0]),
            np.zeros((1, len(scaler.ranges.names) if scaler.ranges else 0), dtype=bool),
        )
        quarantined = replace(prior, quarantined=prior.quarantined + 1)
        return inputs, StreamMemory(quarantined, memory.recent, memory.count)
    continued = memory if not restart else None
    state = continued.state if continued is not None else None
    row, after = point_features(
        t, values[LATITUDE], values[LONGITUDE], altitude, intensity, state, xyz
    )
    features = np.array([row])
    scaled = scaler.transform(features)
    if continued is not None:
        rows, count = np.concatenate((continued.recent, scaled)), continued.count + 1
    else:
        rows, count = scaled, 1
    recent = rows[-length:]
    dt = np.array([t - state.timestamp if state is not None else np.nan])
    inputs = ModelInputs(
        _padded(recent, length)[None],
        np.array([min(count, length)], dtype=np.int64),
        np.zeros(1, dtype=np.int8),
        np.array([restart]),
        np.array([row[_ESTABLISHED] > 0]),
        _out_of_range(features, dt, scaler.ranges),
    )
    return inputs, StreamMemory(after, recent, count)


def _padded(rows: np.ndarray, length: int) -> np.ndarray:
    """The window of the last of ``rows``: its last ``length``, left-padded with the first."""
    if len(rows) >= length:
        return rows[-length:]
    return np.concatenate((np.repeat(rows[:1], length - len(rows), axis=0), rows))


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


def _sorted_streams(
    columns: Mapping[str, np.ndarray],
) -> tuple[Streams, dict[str, np.ndarray], list[StreamKey]]:
    """Rows grouped into streams: the grouping, the sorted input columns and each stream's key."""
    streams = group_streams(columns[TRACK_ID], columns[SENSOR_ID], columns[TIMESTAMP])
    values = {c: np.asarray(columns[c], dtype=np.float64)[streams.order] for c in INPUT_COLUMNS}
    first = streams.bounds[:-1]
    tracks = np.asarray(columns[TRACK_ID])[streams.order][first].tolist()
    sensors = np.asarray(columns[SENSOR_ID])[streams.order][first].tolist()
    return streams, values, list(zip(tracks, sensors, strict=True))


def batch_inputs(
    columns: Mapping[str, np.ndarray],
    scaler: Scaler,
    memories: dict[StreamKey, StreamMemory] | None = None,
) -> ModelInputs:
    """Model inputs of every row, in the input order of ``columns``.

    Args:
        columns: Column arrays of rows in any order (grouped into streams here).
        scaler: The training scaler and window length.
        memories: Optional per-stream memories to continue from; updated in place, so a
            caller can score a long file chunk by chunk.

    Raises:
        ValueError: If a stream's rows do not come after the time its memory has reached, or
            two rows of a stream share a timestamp.
    """
    streams, values, keys = _sorted_streams(columns)
    if len(streams.order) == 0:
        return _no_inputs(scaler)
    priors = [memories.get(key) for key in keys] if memories is not None else [None] * len(keys)
    inputs, after = _inputs_of_streams(
        values,
        streams.bounds,
        priors,
        scaler,
        keep_memories=memories is not None,
        keys=keys,
        order=streams.inverse(),
    )
    if memories is not None and after is not None:
        memories.update(zip(keys, after, strict=True))
    return inputs


def batch_windows(
    columns: Mapping[str, np.ndarray],
    scaler: Scaler,
    memories: dict[StreamKey, StreamMemory] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows and context points of every row, in input order (see :func:`batch_inputs`)."""
    inputs = batch_inputs(columns, scaler, memories)
    return inputs.windows, inputs.context_points


def batch_features(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Unscaled features of every row, in input order (what the scaler is fitted on).

    A quarantined row (see :mod:`.plausibility`) has the features of its stream's last
    accepted row, as it has that row's window when scored.
    """
    streams, values, _ = _sorted_streams(columns)
    if len(streams.order) == 0:
        return np.empty((0, N_FEATURES))
    rows = _accepted_rows(values, streams.bounds, [None] * (len(streams.bounds) - 1))
    features, _ = _run_features(values, rows)
    in_sorted_order = features[np.maximum(rows.source, 0)]
    in_input_order: np.ndarray = in_sorted_order[streams.inverse()]
    return in_input_order


@dataclass(frozen=True)
class _Rows:
    """The accepted rows of streams, split into runs (see :func:`_accepted_rows`)."""

    screening: Screening
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray]
    #: Sorted-row index of every accepted row.
    accepted: np.ndarray
    #: Stream of every accepted row.
    stream: np.ndarray
    #: Run bounds over the accepted rows (index of each run's first row, then the count).
    run_bounds: np.ndarray
    #: Stream of each run, and whether the run continues its stream's memory.
    run_stream: np.ndarray
    continues: np.ndarray
    run_states: list[StreamState | None]
    #: For every sorted row, the accepted row (index into ``accepted``) whose window it gets:
    #: itself if accepted, else its stream's last accepted row; -1 if that came before these rows.
    source: np.ndarray


def _accepted_rows(
    values: Mapping[str, np.ndarray], bounds: np.ndarray, states: Sequence[StreamState | None]
) -> _Rows:
    """Screen rows with the jump rule and cut the accepted ones into runs of one state each.

    A run is the accepted rows of a stream up to a restart; the first run continues the
    stream's memory (if any) unless a restart begins it.
    """
    t = values[TIMESTAMP]
    n = len(t)
    first = np.asarray(bounds[:-1], dtype=np.int64)
    later = np.ones(n, dtype=bool)
    later[first] = False
    if np.any(np.diff(t)[later[1:]] <= 0):
        raise ValueError("timestamps of a stream must strictly increase")
    xyz = ecef(values[LATITUDE], values[LONGITUDE], values[ALTITUDE])
    carried = StateArrays(states)
    known = ~carried.fresh
    reference = Reference(
        known,
        timestamp=carried.get("timestamp", np.nan),
        altitude=carried.get("altitude", np.nan),
        x=carried.get("x", np.nan),
        y=carried.get("y", np.nan),
        z=carried.get("z", np.nan),
        quarantined=carried.get("quarantined", 0.0).astype(np.int64),
    )
    screening = screen(t, values[ALTITUDE], xyz, bounds, reference)
    accepted = np.flatnonzero(screening.accepted)
    row_stream = np.repeat(np.arange(len(first)), np.diff(bounds))
    stream = row_stream[accepted]
    new_stream = np.ones(len(accepted), dtype=bool)
    new_stream[1:] = stream[1:] != stream[:-1]
    starts = np.flatnonzero(new_stream | screening.restart[accepted])
    run_stream = stream[starts]
    continues = new_stream[starts] & ~screening.restart[accepted[starts]] & known[run_stream]
    # The last accepted row at or before every row (-1 before any), kept within the stream.
    last = np.where(screening.accepted, np.cumsum(screening.accepted) - 1, -1)
    np.maximum.accumulate(last, out=last)
    if len(accepted):
        source = np.where((last >= 0) & (row_stream == stream[np.maximum(last, 0)]), last, -1)
    else:  # every row here quarantined: all are answered from their streams' memories
        source = last
    return _Rows(
        screening,
        xyz,
        accepted,
        stream,
        np.append(starts, len(accepted)),
        run_stream,
        continues,
        [states[s] if c else None for s, c in zip(run_stream, continues, strict=True)],
        source,
    )


def _check_after_memory(
    t: np.ndarray,
    bounds: np.ndarray,
    priors: Sequence[StreamMemory | None],
    keys: Sequence[StreamKey] | None,
) -> None:
    """Refuse rows of a stream that do not come after the last point its memory accepted."""
    for s, (prior, begin) in enumerate(zip(priors, bounds[:-1], strict=True)):
        if prior is not None and t[begin] <= prior.state.timestamp:
            if keys is None:
                raise ValueError("timestamps of a stream must strictly increase")
            raise ValueError(
                f"stream (track_id={keys[s][0]}, sensor_id={keys[s][1]}): timestamp {t[begin]} "
                f"is not after {prior.state.timestamp}, already seen; rows of a stream must come "
                "in time order across chunks"
            )


def _own_or(
    own: np.ndarray, values: np.ndarray, index: np.ndarray, other: np.ndarray
) -> np.ndarray:
    """``values[index]`` where ``own``, else ``other`` (``values`` may be empty: none own)."""
    if len(values) == 0:
        return other
    picked: np.ndarray = np.where(own, values[np.maximum(index, 0)], other)
    return picked


def _run_features(values: Mapping[str, np.ndarray], rows: _Rows) -> tuple[np.ndarray, RunStates]:
    """Features of the accepted rows, run by run."""
    a = rows.accepted
    return run_features(
        values[TIMESTAMP][a],
        values[LATITUDE][a],
        values[LONGITUDE][a],
        values[ALTITUDE][a],
        values[INTENSITY][a],
        rows.run_bounds,
        rows.run_states,
        xyz=(rows.xyz[0][a], rows.xyz[1][a], rows.xyz[2][a]),
    )


def accepted_dt(values: Mapping[str, np.ndarray], rows: _Rows) -> np.ndarray:
    """Seconds since the stream's previous accepted row, for every accepted row (NaN on a
    stream's first)."""
    t = values[TIMESTAMP][rows.accepted]
    before = np.empty(len(t))
    before[1:] = t[:-1]
    starts = rows.run_bounds[:-1]
    before[starts] = [s.timestamp if s is not None else np.nan for s in rows.run_states]
    dt: np.ndarray = t - before
    return dt


def _out_of_range(features: np.ndarray, dt: np.ndarray, ranges: InputRanges | None) -> np.ndarray:
    """Which inputs of each accepted row (its features and ``dt``) lie far outside the
    training range."""
    if ranges is None:
        return np.zeros((len(features), 0), dtype=bool)
    if ranges.names == (*FEATURE_NAMES, DT):  # as training writes them: no copy of the features
        flagged = np.empty((len(features), len(ranges.names)), dtype=bool)
        flagged[:, :-1] = ranges.outside(features, slice(0, N_FEATURES))
        flagged[:, -1] = ranges.outside(dt[:, None], slice(N_FEATURES, None))[:, 0]
        return flagged
    columns = {name: features[:, j] for j, name in enumerate(FEATURE_NAMES)}
    columns[DT] = dt
    return ranges.outside(np.column_stack([columns[name] for name in ranges.names]))


def _inputs_of_streams(
    values: Mapping[str, np.ndarray],
    bounds: np.ndarray,
    priors: Sequence[StreamMemory | None],
    scaler: Scaler,
    keep_memories: bool,
    keys: Sequence[StreamKey] | None = None,
    order: np.ndarray | None = None,
) -> tuple[ModelInputs, list[StreamMemory] | None]:
    """Model inputs of rows grouped into time-ordered streams, each continuing its memory.

    The accepted rows of every stream are laid out in one array after the stream's remembered
    rows (``recent``), so one gather builds every window: a row's window is the
    ``sequence_length`` rows ending at it, left-padded with the first row of its run (or of the
    remembered rows it continues). A quarantined row gets the window of its stream's last
    accepted row. With ``order`` (a permutation of the rows), the inputs come out in that order:
    the windows are gathered there directly, not gathered then copied (a second pass over
    ``n × sequence_length × n_inputs`` floats).
    """
    length = scaler.sequence_length
    n_streams = len(bounds) - 1
    _check_after_memory(values[TIMESTAMP], bounds, priors, keys)
    rows = _accepted_rows(values, bounds, [m.state if m is not None else None for m in priors])
    features, ends = _run_features(values, rows)
    scaled = scaler.transform(features)

    # Layout: per stream, its remembered rows, then its accepted rows (all runs).
    remembered = np.array([len(m.recent) if m is not None else 0 for m in priors], dtype=np.int64)
    accepted_per_stream = np.bincount(rows.stream, minlength=n_streams)
    block_start = np.concatenate([[0], np.cumsum(remembered + accepted_per_stream)[:-1]])
    first_accepted = np.concatenate([[0], np.cumsum(accepted_per_stream)[:-1]])
    position = (
        block_start[rows.stream]
        + remembered[rows.stream]
        + (np.arange(len(rows.accepted)) - first_accepted[rows.stream])
    )
    layout = np.empty(
        (int(block_start[-1] + remembered[-1] + accepted_per_stream[-1]), scaled.shape[1]),
        dtype=np.float32,
    )
    layout[position] = scaled
    for s, prior in enumerate(priors):
        if prior is not None:
            layout[block_start[s] : block_start[s] + remembered[s]] = prior.recent

    # Where each accepted row's window may start, and its context.
    run_of = np.repeat(np.arange(len(rows.run_stream)), np.diff(rows.run_bounds))
    run_begin = rows.run_bounds[:-1][run_of]
    prior_count = np.array([m.count if m is not None else 0 for m in priors], dtype=np.int64)
    counted = np.where(rows.continues, prior_count[rows.run_stream], 0)
    continues = rows.continues[run_of]
    start = np.where(continues, block_start[rows.stream], position[run_begin])
    context = np.minimum(counted[run_of] + np.arange(len(rows.accepted)) - run_begin + 1, length)

    # Every row's window end, start and context: its own, or its stream's last accepted row's.
    row_stream = np.repeat(np.arange(n_streams), np.diff(bounds))
    own = rows.source >= 0
    prior_end = block_start + remembered - 1
    prior_context = np.minimum(prior_count, length)
    ends_at = _own_or(own, position, rows.source, prior_end[row_stream])
    starts_at = _own_or(own, start, rows.source, block_start[row_stream])
    row_context = _own_or(own, context, rows.source, prior_context[row_stream]).astype(np.int64)
    prior_established = np.array(
        [m is not None and m.state.maximum_established > 0 for m in priors], dtype=bool
    )
    established = _own_or(
        own, features[:, _ESTABLISHED] > 0, rows.source, prior_established[row_stream]
    )
    flagged = _out_of_range(features, accepted_dt(values, rows), scaler.ranges)
    row_flagged = np.zeros((len(row_stream), flagged.shape[1]), dtype=bool)
    row_flagged[rows.accepted] = flagged
    reason, restart = rows.screening.reason, rows.screening.restart
    if order is not None:  # reorder the small per-row arrays, not the windows gathered from them
        ends_at, starts_at, row_context = ends_at[order], starts_at[order], row_context[order]
        reason, restart, established = reason[order], restart[order], established[order]
        row_flagged = row_flagged[order]
    inputs = ModelInputs(
        WindowRows(layout, ends_at, starts_at, length),
        row_context,
        reason,
        restart,
        established,
        row_flagged,
    )
    if not keep_memories:
        return inputs, None
    memories = []
    last_run = np.full(n_streams, -1)
    last_run[rows.run_stream] = np.arange(len(rows.run_stream))
    for s, prior in enumerate(priors):
        quarantined = int(rows.screening.trailing_quarantined[s])
        r = int(last_run[s])
        if r < 0:  # nothing accepted here: the memory stays, counting the quarantined points
            assert prior is not None
            memories.append(
                StreamMemory(
                    replace(prior.state, quarantined=quarantined), prior.recent, prior.count
                )
            )
            continue
        end = int(position[rows.run_bounds[r + 1] - 1])
        begin = max(int(start[rows.run_bounds[r + 1] - 1]), end - length + 1)
        state = ends.state(r, quarantined)
        count = int(counted[r] + rows.run_bounds[r + 1] - rows.run_bounds[r])
        memories.append(StreamMemory(state, layout[begin : end + 1].copy(), count))
    return inputs, memories
