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

The module's tests (``tests/test_arrow_csv.py``) compare its output with pandas' byte for byte.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
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
#: Probabilities are written with 6 decimals: multiples of one millionth.
_MILLION: Final = 10**6


class RefusedError(Exception):
    """Arrow's reader cannot read this file as pandas would; read it with pandas."""


def header(path: Path) -> list[str] | None:
    """The file's column names, or ``None`` where pandas would rename some (empty, repeated)
    or the first line is not readable text."""
    try:
        # newline="": a quoted line break in a name is kept as written, as pandas keeps it.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            names = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    if not names or any(not n for n in names) or len(set(names)) < len(names):
        return None
    return names


def chunks(
    path: Path, names: Sequence[str], rows: int, block_bytes: int = BLOCK_BYTES
) -> Iterator[pa.RecordBatch]:
    """The file's cells as text, ``rows`` rows a batch (the last may hold fewer), read
    ``block_bytes`` of the file at a time.

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
    read = pa_csv.ReadOptions(block_size=block_bytes)
    try:
        reader = pa_csv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        if reader.schema.names != list(names):
            raise RefusedError
        pending: list[pa.RecordBatch] = []  # Arrow's blocks not yet handed on
        held = 0  # their rows
        found = False
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _one_batch(table.slice(0, rows))
                found = True
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield _one_batch(pa.Table.from_batches(pending))
            found = True
    except pa.ArrowInvalid:
        raise RefusedError from None
    if not found:  # a header alone: pandas says what it makes of it
        raise RefusedError


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """A table's rows (at least one) as one contiguous batch."""
    return table.combine_chunks().to_batches()[0]


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
                values[name] = np.asarray(pc.cast(cells, pa.float64()))  # nulls → NaN
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.DataFrame(values)


def write(sink: BinaryIO, batch: pa.RecordBatch, answers: Mapping[str, np.ndarray]) -> bool:
    """Append the batch's cells, then each row's answers (columns by name: probabilities
    rounded to 6 decimals, or integers), as pandas writes them (no header). ``False``, with
    nothing written, if a cell needs quotes."""
    out = batch
    for name, values in answers.items():
        column = _float_text(values) if values.dtype.kind == "f" else pa.array(values)
        out = out.append_column(name, column)
    buffer = pa.BufferOutputStream()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    try:
        pa_csv.write_csv(out, buffer, write_options=options)
    except pa.ArrowInvalid:  # a cell holds a comma, quote or line break
        return False
    sink.write(buffer.getvalue().to_pybytes())
    return True


def _float_text(probability: np.ndarray) -> pa.Array:
    """Probabilities (6 decimals) as pandas writes them: Python's shortest ``repr``."""
    text = pc.cast(pa.array(probability), pa.string())
    small = probability < _FIXED_BELOW
    odd = small | (probability == 1.0)
    if not odd.any():
        return text
    micro = np.rint(probability * _MILLION)
    if not np.array_equal(micro[small] / _MILLION, probability[small]):
        raise ValueError("probabilities must be rounded to 6 decimals")
    index = np.where(small, micro, len(_ODD_TEXT) - 1).astype(np.int64)
    return pc.if_else(pa.array(odd), _ODD_TEXT.take(pa.array(index)), text)


#: ``repr`` of k / 10**6 for the k Arrow writes otherwise (0 to 99), then of 1.0.
_ODD_TEXT: Final = pa.array(
    [*(repr(k / _MILLION) for k in range(round(_FIXED_BELOW * _MILLION))), repr(1.0)]
)
