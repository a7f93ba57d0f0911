"""Batch scoring of CSV files in bounded memory: ``missile-classifier predict``.

The file is read in chunks; each stream's memory (feature state and last rows) carries over
from chunk to chunk, so the answers equal scoring the whole file at once while memory stays
proportional to the chunk size and the number of streams. Input cells are written back as
they were read (text), followed by ``reentry_probability`` and ``predicted_reentry_phase``.
"""

from __future__ import annotations

import csv
import io
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import BinaryIO, Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from missile_classifier import arrow_csv
from missile_classifier.columns import COLUMNS, TRACK_ID
from missile_classifier.progress import progress_bar
from missile_classifier.schema import SchemaError, frame_columns, validate_frame
from missile_classifier.scoring.inference import ModelInferenceService, PendingScores, Scores
from missile_classifier.scoring.windows import StreamMemory

PROBABILITY: Final = "reentry_probability"
PREDICTION: Final = "predicted_reentry_phase"
CHUNK_ROWS: Final = 200_000
#: The first chunk is scored in two parts of whole tracks, the tracks of its first this many
#: rows first: their model calls start while the rest's windows are built, where a whole
#: chunk's kept a core waiting ~0.25 s of a 3 s run (nothing before it to overlap with).
HEAD_ROWS: Final = 25_000


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count``: the tracks whose id hashes to ``index``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Read ``"i/N"`` with ``0 <= i < N``."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like i/N (e.g. 0/4), got {text!r}") from None
        if not 0 <= index < count:
            raise ValueError(f"shard index must be in 0..{count - 1}, got {text!r}")
        return cls(index, count)

    def selects(self, track_ids: np.ndarray) -> np.ndarray:
        """Mask of rows whose track belongs to this shard (CRC-32 of the id: stable everywhere)."""
        unique, inverse = np.unique(track_ids, return_inverse=True)
        owner = np.array([zlib.crc32(str(int(t)).encode()) % self.count for t in unique])
        return np.asarray(owner[inverse] == self.index)


@dataclass(frozen=True)
class PredictSummary:
    """What a ``predict`` run did."""

    rows: int
    reentry_rows: int
    seconds: float
    #: Rows with an input far outside its training range (see :mod:`.scoring.ranges`), and
    #: how many rows each such input had.
    out_of_range_rows: int = 0
    out_of_range: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Throughput, reading and writing included."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def predict_csv(
    service: ModelInferenceService,
    input_path: str | Path,
    output_path: str | Path,
    *,
    shard: Shard | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
    reader: Literal["arrow", "pandas"] = "arrow",
) -> PredictSummary:
    """Score every row of a track CSV (labeled or not) into a new CSV.

    The output is written to a temporary file beside ``output_path`` and renamed at the end, so
    a failed run leaves no half-written output.

    Args:
        reader: ``"arrow"`` reads and writes plain files with Arrow's C++ CSV code (several
            times faster) and hands pandas whatever it cannot read exactly as pandas would
            (:mod:`.arrow_csv`); ``"pandas"`` reads and writes every file with pandas. Both
            write the same bytes.

    Raises:
        SchemaError: If the input breaks the schema, or a stream's rows go back in time
            across chunks (sort the file by track, sensor and time, or raise ``chunk_rows``).
    """
    source, target = Path(input_path), Path(output_path)
    if source.resolve() == target.resolve():
        raise ValueError("--output must differ from --input: the input is never overwritten")
    if not source.is_file():
        raise SchemaError(str(source), "file not found")
    started = time.perf_counter()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    total = _count_rows(source) if progress else 0
    try:
        with temporary.open("wb") as sink:
            tally = None
            names = arrow_csv.header(source) if reader == "arrow" else None
            if names is not None:
                try:
                    chunks = arrow_csv.chunks(source, names, chunk_rows)
                    tally = _score_file(service, chunks, sink, str(source), shard, total, progress)
                except arrow_csv.RefusedError:
                    # Not plain enough for Arrow's reader (a short row, say): pandas reads it,
                    # as it reads every file, with the same answers and messages.
                    sink.seek(0)
                    sink.truncate()
            if tally is None:
                frames = pd.read_csv(source, dtype=str, chunksize=chunk_rows)
                with frames:  # closes the file when a chunk is rejected too
                    tally = _score_file(service, frames, sink, str(source), shard, total, progress)
        os.replace(temporary, target)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise SchemaError(str(source), f"cannot be parsed as CSV: {exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
    by_input = {n: int(c) for n, c in zip(service.range_names, tally.flagged, strict=True) if c}
    return PredictSummary(
        tally.rows, tally.positives, time.perf_counter() - started, tally.flagged_rows, by_input
    )


@dataclass
class _Tally:
    """What the chunks scored so far held."""

    flagged: np.ndarray
    rows: int = 0
    positives: int = 0
    flagged_rows: int = 0


def _score_file(
    service: ModelInferenceService,
    chunks: Iterable[pd.DataFrame | pa.RecordBatch],
    sink: BinaryIO,
    source: str,
    shard: Shard | None,
    total: int,
    progress: bool,
) -> _Tally:
    """Score chunks of cells as read (text; a frame from pandas or a batch from Arrow), each
    stream continuing from the chunk before, and write them to ``sink`` with a header.

    A chunk is written once the next one's windows are built: the model calls of one chunk
    run on the service's call threads while this thread reads and prepares the next.
    """
    memories: dict[tuple[int, int], StreamMemory] = {}
    tally = _Tally(np.zeros(len(service.range_names), dtype=np.int64))
    line = 2
    pending: _Scoring | None = None
    with progress_bar(total, "Scoring rows", enabled=progress) as advance:
        try:
            for index, chunk in enumerate(chunks):
                batch = chunk if isinstance(chunk, pa.RecordBatch) else None
                numbers = arrow_csv.numbers(batch, COLUMNS) if batch is not None else None
                cells: pd.DataFrame | None = None
                if numbers is None:  # pandas converts what Arrow might read otherwise, as ever
                    cells = numbers = _frame(chunk)
                valid, keep = _validated(numbers, source, line, shard)
                submit = _submit_in_two if index == 0 else _submit
                scoring = _Scoring(chunk, cells, keep, submit(service, valid, source, memories))
                if index == 0:
                    _write_header(sink, [*_names(chunk), PROBABILITY, PREDICTION])
                if pending is not None:
                    _write_scored(pending, sink, tally, advance)
                pending = scoring
                line += len(chunk)
            if pending is not None:
                _write_scored(pending, sink, tally, advance)
                pending = None
        finally:
            if pending is not None:  # an error or an interrupt: its calls are not wanted
                pending.scores.cancel()
    return tally


@dataclass(frozen=True)
class _Scoring:
    """A chunk read and validated, its model calls started."""

    chunk: pd.DataFrame | pa.RecordBatch
    #: The chunk's cells as pandas reads them, if pandas converted them (else ``None``).
    cells: pd.DataFrame | None
    #: The shard's rows of the chunk (``None``: every row).
    keep: np.ndarray | None
    scores: PendingScores | _PendingParts


def _write_scored(
    scoring: _Scoring, sink: BinaryIO, tally: _Tally, advance: Callable[[int], None]
) -> None:
    """Wait for a chunk's answers, write its rows with them and count them."""
    probability, prediction, outside = _answers(scoring.scores.result())
    chunk, cells, keep = scoring.chunk, scoring.cells, scoring.keep
    written = False
    if isinstance(chunk, pa.RecordBatch) and cells is None:
        kept = chunk.filter(pa.array(keep)) if keep is not None else chunk
        answers = {PROBABILITY: probability, PREDICTION: prediction}
        written = arrow_csv.write(sink, kept, answers)
    if not written:  # read by pandas, or a cell needs quotes: pandas writes it
        out = _answered(_frame(chunk) if cells is None else cells, keep, probability, prediction)
        sink.write(out.to_csv(header=False, index=False).encode())
    tally.rows += len(probability)
    tally.positives += int(prediction.sum())
    tally.flagged += outside.sum(axis=0)
    tally.flagged_rows += int(outside.any(axis=1).sum())
    advance(len(chunk))


def _score_chunk(
    service: ModelInferenceService,
    chunk: pd.DataFrame,
    source: str,
    line: int,
    memories: dict[tuple[int, int], StreamMemory],
    shard: Shard | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate and score one chunk of cells as read by pandas, keeping its row order and its
    cells' text; also which rows had inputs far outside the training range."""
    valid, keep = _validated(chunk, source, line, shard)
    probability, prediction, outside = _answers(_submit(service, valid, source, memories).result())
    return _answered(chunk, keep, probability, prediction), outside


def _validated(
    cells: pd.DataFrame, source: str, line: int, shard: Shard | None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The chunk's rows in canonical form and input order, and the mask of the shard's rows
    (``None``: all of them) that the returned rows are already limited to."""
    valid, _ = validate_frame(cells, source, line_offset=line, sort=False)
    if shard is None:
        return valid, None
    keep = shard.selects(valid[TRACK_ID].to_numpy())
    return valid.loc[keep], keep


def _answered(
    cells: pd.DataFrame, keep: np.ndarray | None, probability: np.ndarray, prediction: np.ndarray
) -> pd.DataFrame:
    """The kept rows' cells followed by their answers."""
    out = (cells.loc[keep] if keep is not None else cells).copy()
    out[PROBABILITY] = probability
    out[PREDICTION] = prediction
    return out


def _names(chunk: pd.DataFrame | pa.RecordBatch) -> list[str]:
    return list(chunk.columns) if isinstance(chunk, pd.DataFrame) else chunk.schema.names


def _frame(chunk: pd.DataFrame | pa.RecordBatch) -> pd.DataFrame:
    """The chunk's cells as pandas reads them (text, missing cells NaN)."""
    return chunk if isinstance(chunk, pd.DataFrame) else chunk.to_pandas()


def _write_header(sink: BinaryIO, names: list[str]) -> None:
    """The header line as pandas writes it (names quoted only where they need it)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(names)
    sink.write(text.getvalue().encode())


def _submit(
    service: ModelInferenceService,
    valid: pd.DataFrame,
    source: str,
    memories: dict[tuple[int, int], StreamMemory],
) -> PendingScores:
    """Build validated rows' windows and start their model calls (see :func:`_answers`)."""
    try:
        return service.submit_batch(frame_columns(valid), memories)
    except ValueError as exc:
        raise SchemaError(source, str(exc)) from None


def _submit_in_two(
    service: ModelInferenceService,
    valid: pd.DataFrame,
    source: str,
    memories: dict[tuple[int, int], StreamMemory],
) -> PendingScores | _PendingParts:
    """:func:`_submit` on the tracks of the first :data:`HEAD_ROWS` rows, then on the rest:
    the same answers (streams are scored whole either way), the model started sooner."""
    track = valid[TRACK_ID].to_numpy()
    head = np.isin(track, np.unique(track[:HEAD_ROWS]))
    if head.all():
        return _submit(service, valid, source, memories)
    first = _submit(service, valid.loc[head], source, memories)
    try:
        rest = _submit(service, valid.loc[~head], source, memories)
    except BaseException:
        first.cancel()
        raise
    return _PendingParts(head, first, rest)


@dataclass(frozen=True)
class _PendingParts:
    """A chunk submitted in two parts: the rows where ``head`` is set, then the others."""

    head: np.ndarray
    first: PendingScores
    rest: PendingScores

    def result(self) -> Scores:
        """Both parts' scores, merged back into the chunk's row order."""
        first, rest = self.first.result(), self.rest.result()
        merged = {}
        for name in (f.name for f in fields(Scores)):
            a, b = getattr(first, name), getattr(rest, name)
            both = np.empty((len(self.head), *a.shape[1:]), dtype=np.result_type(a, b))
            both[self.head], both[~self.head] = a, b
            merged[name] = both
        return Scores(**merged)

    def cancel(self) -> None:
        """Drop both parts' calls not started yet."""
        self.first.cancel()
        self.rest.cancel()


def _answers(scores: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probability (6 decimals), decision and out-of-range flags of the rows, in order."""
    probability = np.round(scores.probability.astype(np.float64), 6)
    return probability, scores.reentry_phase, scores.out_of_range


def _count_rows(path: Path) -> int:
    """Data rows of a CSV (lines after the header), counted in 1 MiB blocks for the bar."""
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - 1, 0)
