"""Batch scoring of CSV files in bounded memory: ``missile-classifier predict``.

The file is read in chunks; each stream's memory (feature state and last rows) carries over
from chunk to chunk, so the answers equal scoring the whole file at once while memory stays
proportional to the chunk size and the number of streams. Input cells are written back as
they were read (text), followed by ``reentry_probability`` and ``predicted_reentry_phase``.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from missile_classifier.columns import TRACK_ID
from missile_classifier.progress import progress_bar
from missile_classifier.schema import SchemaError, frame_columns, validate_frame
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.scoring.windows import StreamMemory

PROBABILITY: Final = "reentry_probability"
PREDICTION: Final = "predicted_reentry_phase"
CHUNK_ROWS: Final = 200_000


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
) -> PredictSummary:
    """Score every row of a track CSV (labeled or not) into a new CSV.

    The output is written to a temporary file beside ``output_path`` and renamed at the end, so
    a failed run leaves no half-written output.

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
    memories: dict[tuple[int, int], StreamMemory] = {}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    rows = positives = flagged_rows = 0
    flagged = np.zeros(len(service.range_names), dtype=np.int64)
    line = 2
    try:
        reader = pd.read_csv(source, dtype=str, chunksize=chunk_rows)
        total = _count_rows(source) if progress else 0
        with (
            reader,  # closes the file when a chunk is rejected too
            progress_bar(total, "Scoring rows", enabled=progress) as advance,
            temporary.open("w", newline="") as sink,
        ):
            for index, chunk in enumerate(reader):
                scored, outside = _score_chunk(service, chunk, str(source), line, memories, shard)
                line += len(chunk)
                scored.to_csv(sink, header=index == 0, index=False)
                rows += len(scored)
                positives += int(scored[PREDICTION].sum())
                flagged += outside.sum(axis=0)
                flagged_rows += int(outside.any(axis=1).sum())
                advance(len(chunk))
        os.replace(temporary, target)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise SchemaError(str(source), f"cannot be parsed as CSV: {exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
    by_input = {n: int(c) for n, c in zip(service.range_names, flagged, strict=True) if c}
    return PredictSummary(rows, positives, time.perf_counter() - started, flagged_rows, by_input)


def _score_chunk(
    service: ModelInferenceService,
    chunk: pd.DataFrame,
    source: str,
    line: int,
    memories: dict[tuple[int, int], StreamMemory],
    shard: Shard | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate and score one chunk, keeping its row order and its cells' text; also which
    rows had inputs far outside the training range."""
    numbers, _ = validate_frame(chunk, source, line_offset=line, sort=False)
    if shard is not None:
        keep = shard.selects(numbers[TRACK_ID].to_numpy())
        chunk, numbers = chunk.loc[keep], numbers.loc[keep]
    try:
        scores = service.predict_batch(frame_columns(numbers), memories)
    except ValueError as exc:
        raise SchemaError(source, str(exc)) from None
    out = chunk.copy()
    out[PROBABILITY] = np.round(scores.probability.astype(np.float64), 6)
    out[PREDICTION] = scores.reentry_phase
    return out, scores.out_of_range


def _count_rows(path: Path) -> int:
    """Data rows of a CSV (lines after the header), counted in 1 MiB blocks for the bar."""
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - 1, 0)
