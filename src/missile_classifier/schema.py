"""Track CSV schema: the validation every file goes through, and frames as column arrays.

A track file is rejected with a :class:`SchemaError` that names the file, the column, the first
offending line and how many rows are affected. Two problems are repaired instead, with a logged
warning, because they lose no information: rows out of time order within a stream (sorted), and
integral ids written as floats (``3.0``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from missile_classifier.columns import (
    ALTITUDE,
    COLUMNS,
    FEATURE_COLUMNS,
    INTEGER_COLUMNS,
    INTENSITY,
    LABEL,
    LATITUDE,
    LONGITUDE,
    SCORING_COLUMNS,
    SENSOR_ID,
    STREAM_KEY,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.scoring.plausibility import ID_LIMITS, LIMITS

if TYPE_CHECKING:  # pandas is a training-side dependency; the service never loads CSVs.
    import pandas as pd

log = logging.getLogger(__name__)

#: Columns that must be finite on every row. The intensity may be missing (empty cell / NaN):
#: real sensors drop it, and the feature function fills it (documented there).
REQUIRED_FINITE: Final = (TIMESTAMP, TRACK_ID, SENSOR_ID, LATITUDE, LONGITUDE, ALTITUDE)
#: Inclusive limits of every value (see :mod:`missile_classifier.scoring.plausibility`); a
#: missing intensity is allowed, an intensity out of its limits is not.
RANGES: Final = {
    **LIMITS,
    TRACK_ID: ID_LIMITS,
    SENSOR_ID: ID_LIMITS,
}

#: Data starts on line 2 of a CSV file (line 1 is the header).
_FIRST_DATA_LINE: Final = 2


class SchemaError(ValueError):
    """A track file breaks the schema; the message says where and how often."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        column: str | None = None,
        line: int | None = None,
        count: int = 0,
        value: object = None,
    ) -> None:
        self.source, self.column, self.line, self.count, self.value = (
            source,
            column,
            line,
            count,
            value,
        )
        where = f"column {column!r}: " if column else ""
        detail = ""
        if count:
            detail = f" ({count} row{'s' if count != 1 else ''}"
            if line is not None:
                detail += f"; first at line {line}"
                if value is not None:
                    detail += f", value {value!r}"
            detail += ")"
        super().__init__(f"{source}: {where}{problem}{detail}")


@dataclass
class ValidationReport:
    """What validation found and repaired in one file."""

    source: str
    rows: int
    labeled: bool
    streams: int
    warnings: list[str] = field(default_factory=list)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read ``1.5``, not ``np.float64``."""
    return value.item() if isinstance(value, np.generic) else value


def _number(value: float) -> str:
    """A limit as people write it: ``-1,000``, ``9,223,372,036,854,775,807``."""
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def _reject(
    df: pd.DataFrame, mask: np.ndarray, source: str, column: str, problem: str, line_offset: int
) -> None:
    """Raise a :class:`SchemaError` for the rows flagged in ``mask`` (if any)."""
    if not mask.any():
        return
    first = int(np.flatnonzero(mask)[0])
    raise SchemaError(
        source,
        problem,
        column=column,
        line=first + line_offset,
        count=int(mask.sum()),
        value=_plain(df[column].iloc[first]),
    )


def _coerce_numeric(df: pd.DataFrame, source: str, line_offset: int) -> None:
    """Turn every schema column into float64 in place, rejecting text that is not a number."""
    import pandas as pd

    for column in (c for c in COLUMNS if c in df.columns):
        raw = df[column]
        if pd.api.types.is_bool_dtype(raw) or not (
            pd.api.types.is_numeric_dtype(raw)
            or raw.dtype == object
            or pd.api.types.is_string_dtype(raw)
        ):
            raise SchemaError(source, f"has type {raw.dtype}, expected numbers", column=column)
        if column in INTEGER_COLUMNS and raw.dtype == object:
            # Ids beyond int64 and uint64 come as exact Python ints: judge them as such, since
            # float64 rounds -2**63 - 1 to -2**63, an id int64 holds (two tracks would merge).
            low, high = ID_LIMITS
            beyond = [isinstance(v, int) and not low <= v <= high for v in raw]
            limits = f"is outside [{_number(low)}, {_number(high)}]"
            _reject(df, np.array(beyond), source, column, limits, line_offset)
        numbers = pd.to_numeric(raw, errors="coerce")
        if column in INTEGER_COLUMNS and pd.api.types.is_signed_integer_dtype(numbers):
            df[column] = numbers.astype("int64")  # as read: float64 would round ids beyond 2**53
            continue
        numbers = numbers.astype("float64")
        _reject(
            df,
            (numbers.isna() & raw.notna()).to_numpy(),
            source,
            column,
            "is not a number",
            line_offset,
        )
        df[column] = numbers


def validate_frame(
    df: pd.DataFrame,
    source: str = "<data>",
    *,
    require_labels: bool = False,
    line_offset: int = _FIRST_DATA_LINE,
    sort: bool = True,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a frame of track rows against the schema and return it in canonical form.

    Canonical form: schema columns as float64 except the ids (int64) and the label (int64),
    extra columns kept unchanged, rows sorted by (track_id, sensor_id, timestamp) with the
    original order kept where it was already sorted (stable sort).

    Args:
        df: Rows as read from a CSV file (or built in code).
        source: Name used in messages, usually the file path.
        require_labels: Reject a frame without the ``reentry_phase`` column (training data).
        line_offset: File line of the frame's first row, so messages point into the file.
        sort: Sort rows into canonical order; ``False`` keeps the input order (scoring, whose
            output must keep the input's row order).

    Returns:
        The canonical frame and a report of what was found and repaired.

    Raises:
        SchemaError: On a missing column, non-numeric value, missing or infinite coordinate,
            out-of-range latitude/longitude, non-integral id, label other than 0/1, or duplicate
            (track_id, sensor_id, timestamp) rows.
    """
    wanted = COLUMNS if require_labels else FEATURE_COLUMNS
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise SchemaError(source, f"missing column(s) {', '.join(missing)}", column=missing[0])
    df = df.reset_index(drop=True).copy()
    report = ValidationReport(source, len(df), LABEL in df.columns, 0)
    _coerce_numeric(df, source, line_offset)

    for column in REQUIRED_FINITE:
        values = df[column].to_numpy()
        _reject(df, np.isnan(values), source, column, "has missing values", line_offset)
        _reject(df, np.isinf(values), source, column, "has infinite values", line_offset)
    intensity = df[INTENSITY].to_numpy()
    _reject(df, np.isinf(intensity), source, INTENSITY, "has infinite values", line_offset)
    for column, (low, high) in RANGES.items():
        values = df[column].to_numpy()
        _reject(
            df,
            (values < low) | (values > high),
            source,
            column,
            f"is outside [{_number(low)}, {_number(high)}]",
            line_offset,
        )
    for column in INTEGER_COLUMNS:
        values = df[column].to_numpy()
        if values.dtype.kind == "f":
            _reject(
                df, values != np.round(values), source, column, "is not an integer", line_offset
            )
            # The float64 nearest 2**63 - 1 is 2**63 itself, which int64 cannot hold.
            _reject(df, values >= 2.0**63, source, column, "is beyond the int64 range", line_offset)
            # A column read as floats (one id written 3.0 is enough) holds ids beyond 2**53
            # rounded to a neighbour: two tracks could merge. Refuse rather than guess.
            _reject(
                df,
                np.abs(values) > 2.0**53,
                source,
                column,
                "is beyond 2**53 in a column of ids written as decimals, where it may have been "
                "rounded; write the ids as integers (no '.0')",
                line_offset,
            )
        df[column] = values.astype("int64")
    if report.labeled:
        labels = df[LABEL].to_numpy()
        _reject(df, np.isnan(labels), source, LABEL, "has missing values", line_offset)
        _reject(df, (labels != 0) & (labels != 1), source, LABEL, "is not 0 or 1", line_offset)
        df[LABEL] = labels.astype("int64")

    key = [TRACK_ID, SENSOR_ID, TIMESTAMP]
    _reject(
        df,
        df.duplicated(key, keep="first").to_numpy(),
        source,
        TIMESTAMP,
        "repeats a (track_id, sensor_id, timestamp) already seen",
        line_offset,
    )
    order = np.lexsort(
        (df[TIMESTAMP].to_numpy(), df[SENSOR_ID].to_numpy(), df[TRACK_ID].to_numpy())
    )
    if sort and not np.array_equal(order, np.arange(len(df))):
        moved = int((order != np.arange(len(df))).sum())
        report.warnings.append(
            f"{source}: {moved} rows were not in (track_id, sensor_id, timestamp) order; sorted"
        )
        df = df.iloc[order].reset_index(drop=True)
    report.streams = int(df.groupby(list(STREAM_KEY), sort=False).ngroups) if len(df) else 0
    for message in report.warnings:
        log.warning(message)
    return df, report


def read_tracks(
    path: str | Path, *, require_labels: bool = False
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate one track CSV file.

    Args:
        path: CSV file with a header row holding at least the schema columns.
        require_labels: Reject a file without ``reentry_phase`` (training and evaluation data).

    Returns:
        The canonical frame (see :func:`validate_frame`) and the validation report.

    Raises:
        SchemaError: If the file is missing, empty, not CSV or breaks the schema.
    """
    import pandas as pd

    source = str(path)
    try:
        df = pd.read_csv(path, low_memory=False)
    except FileNotFoundError:
        raise SchemaError(source, "file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SchemaError(source, f"cannot be parsed as CSV: {exc}") from None
    return validate_frame(df, source, require_labels=require_labels)


def load_tracks(path: str | Path, *, require_labels: bool = False) -> pd.DataFrame:
    """Read and validate one track CSV file; see :func:`read_tracks`."""
    return read_tracks(path, require_labels=require_labels)[0]


def frame_columns(
    df: pd.DataFrame, names: Sequence[str] = SCORING_COLUMNS
) -> dict[str, np.ndarray]:
    """Column arrays of a validated frame, as the scoring code takes them.

    Args:
        df: A frame in canonical form (see :func:`validate_frame`).
        names: Columns to take; by default what scoring needs (stream key and feature inputs).
    """
    return {name: df[name].to_numpy() for name in names}
