"""Track CSVs read and written by Apache Arrow's C++ CSV reader and writer, for ``predict``.

pandas parses every cell into a Python string when a file is read as text (which ``predict``
does, to write each input cell back as it was read), converts them to numbers one by one, and
writes them back the same way: seven of every ten seconds of a CSV → CSV run went there.
Arrow does the same in C++ without a Python object per cell. It is used only where it gives
what pandas gives: the same cells (pandas' missing-value words read as missing, written back
empty), the same numbers, the same written text. Where it cannot promise that, it steps aside:

- a file whose header has an empty or repeated name (pandas renames those), a short row or any
  other structure Arrow's reader refuses: :class:`RefusedError`, and the caller lets pandas read
  the whole file;
- a chunk with a cell Arrow's casts would read differently from pandas (a hexadecimal id, an
  id written ``3.0``, a number with spaces or text): :func:`numbers` answers ``None`` and pandas
  converts that chunk, with its messages;
- a cell that needs quotes when written (a comma in an extra column): :func:`write` answers
  ``False`` and pandas writes that chunk.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from missile_classifier.columns import INTEGER_COLUMNS

#: Cells pandas reads as missing by default (``pandas.read_csv``'s ``na_values``); Arrow's own
#: list lacks ``None`` and ``<NA>``.
MISSING: Final = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
#: Bytes Arrow's reader parses at a time (its default is 1 MiB; larger blocks cost fewer
#: calls and no more than a chunk's memory).
BLOCK_BYTES: Final = 4 << 20
#: Probabilities (rounded to 6 decimals) Arrow writes unlike pandas: ``0`` and ``1`` for
#: ``0.0`` and ``1.0``, fixed notation for ``1e-05`` and smaller (checked for all 1,000,001).
_FIXED_BELOW: Final = 1e-4


class RefusedError(Exception):
    """Arrow's reader cannot read this file as pandas would; read it with pandas."""


def header(path: Path) -> list[str] | None:
    """The file's column names, or ``None`` where pandas would rename some (empty, repeated)
    or the first line is not readable text."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            names = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    if not names or any(not n for n in names) or len(set(names)) < len(names):
        return None
    return names


def chunks(path: Path, names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
    """The file's cells as text, ``rows`` rows a batch (the last may hold fewer).

    Raises:
        RefusedError: If Arrow's reader rejects the file, reads other names than ``names``, or
            finds no rows (pandas then reads it and says what it makes of it).
    """
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=True,
        null_values=list(MISSING),
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)  # as pandas: quoted line breaks
    read = pa_csv.ReadOptions(block_size=BLOCK_BYTES)
    try:
        reader = pa_csv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        if reader.schema.names != list(names):
            raise RefusedError(f"Arrow reads the header as {reader.schema.names}")
        pending: list[pa.RecordBatch] = []
        held = emitted = 0
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _one_batch(table.slice(0, rows))
                emitted += rows
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield _one_batch(pa.Table.from_batches(pending, schema=reader.schema))
            emitted += held
    except pa.ArrowInvalid as exc:
        raise RefusedError(str(exc)) from None
    if emitted == 0:
        raise RefusedError("no rows")


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """A table's rows as one contiguous batch."""
    combined = table.combine_chunks()
    batches = combined.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def numbers(batch: pa.RecordBatch, columns: Sequence[str]) -> pd.DataFrame | None:
    """The schema ``columns`` the batch has as numbers (ids int64, the rest float64; missing
    cells NaN), exactly as pandas converts them; ``None`` if any cell might convert otherwise.

    Arrow's float parsing is correctly rounded and accepts a subset of what pandas accepts (no
    spaces, no text), so a float column either converts to the same values or fails. Its
    integer cast accepts hexadecimal and refuses ``3.0``, so an id column is taken only if
    every cell is its own integer's canonical text.
    """
    values: dict[str, np.ndarray] = {}
    try:
        for name in (c for c in columns if c in batch.schema.names):
            cells = batch.column(name)
            if name in INTEGER_COLUMNS:
                if cells.null_count:
                    return None
                ids = pc.cast(cells, pa.int64())
                if not pc.all(pc.equal(pc.cast(ids, pa.string()), cells)).as_py():
                    return None
                values[name] = ids.to_numpy()
            else:
                values[name] = pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.DataFrame(values)


def write(
    sink: BinaryIO, batch: pa.RecordBatch, probability: np.ndarray, decision: np.ndarray
) -> bool:
    """Append the batch's cells, then each row's probability and decision, as pandas writes
    them (no header). ``False``, with nothing written, if a cell needs quotes."""
    out = batch.append_column(
        pa.field("reentry_probability", pa.string()), _probability_text(probability)
    ).append_column(pa.field("predicted_reentry_phase", pa.int64()), pa.array(decision))
    buffer = pa.BufferOutputStream()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    try:
        pa_csv.write_csv(out, buffer, write_options=options)
    except pa.ArrowInvalid:  # a cell holds a comma, quote or line break
        return False
    sink.write(buffer.getvalue().to_pybytes())
    return True


def _probability_text(probability: np.ndarray) -> pa.Array:
    """Probabilities (6 decimals) as pandas writes them: Python's shortest ``repr``."""
    text = pc.cast(pa.array(probability, pa.float64()), pa.string())
    small = probability < _FIXED_BELOW
    odd = small | (probability == 1.0)
    if not odd.any():
        return text
    micro = np.rint(probability * 1e6)
    if not np.array_equal(micro[small] / 1e6, probability[small]):
        raise ValueError("probabilities must be rounded to 6 decimals")
    index = np.where(small, micro, len(_ODD_TEXT) - 1).astype(np.int64)
    return pc.if_else(pa.array(odd), _ODD_TEXT.take(pa.array(index)), text)


#: ``repr`` of k / 10**6 for the k Arrow writes otherwise (0 to 99), then of 1.0.
_ODD_TEXT: Final = pa.array([*(repr(k / 1e6) for k in range(100)), repr(1.0)], pa.string())
