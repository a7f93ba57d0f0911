"""Batch scoring on Apache Spark: ``missile-classifier spark-predict`` and :func:`score_dataframe`.

The rows are grouped by stream (track_id, sensor_id) with Spark's grouped map,
``groupBy(...).applyInPandas``, and each group is scored by exactly the code ``predict`` runs on
a chunk (:func:`missile_classifier.predict._score_chunk`: schema validation, the shared
feature and window code, ONNX Runtime, probabilities rounded to 6 decimals). A whole stream is
one group, so the answers equal ``predict``'s on the same rows.

The bundle is verified on the driver, its scoring files are shipped to the executors with
``SparkContext.addFile``, and every Python worker loads (and verifies) it once and keeps it.

A row number column (:data:`ROW`, from ``monotonically_increasing_id`` in read order) travels
with the rows: a single output file is sorted on it, so it has the input's row order; a
partitioned output keeps it for the reader to sort on. Install with ``pip install
"missile-classifier[spark]"`` (PySpark, pandas, PyArrow; Spark needs Java 17 or newer).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from pyspark import Accumulator, SparkFiles
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from missile_classifier.columns import SENSOR_ID, TRACK_ID
from missile_classifier.predict import PREDICTION, PROBABILITY, _score_chunk
from missile_classifier.schema import SchemaError, validate_frame
from missile_classifier.scoring import bundle as bundles
from missile_classifier.scoring.inference import ModelInferenceService

#: The input row number carried through the job (increasing in read order, not consecutive).
ROW: Final = "_input_row"
FORMATS: Final = ("csv", "parquet")
#: ONNX Runtime threads per Python worker: Spark runs one task per core already.
EXECUTOR_THREADS: Final = 1
#: CSV options for reading and writing: cells as text, quotes doubled (RFC 4180, as pandas
#: writes them), spaces kept.
_CSV_OPTIONS: Final = {
    "header": "true",
    "escape": '"',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
#: First file line of the first data row: line 1 of a CSV is its header.
_FIRST_LINE: Final = {"csv": 2, "parquet": 1}
#: Marks the rejected rows' details in the text of an executor's exception, so the driver can
#: raise the same :class:`SchemaError` whatever Spark wraps it in.
_TAG: Final = "@@missile-classifier-rejected@@"
_TAGGED: Final = re.compile(re.escape(_TAG) + r"(\{.*?\})" + re.escape(_TAG))
#: Bundles already shipped in this process: (application id, bundle@digest) → shipped name.
_SHIPPED: dict[tuple[str, str], str] = {}
#: Bundles loaded in this Python worker: shipped name → service.
_SERVICES: dict[str, ModelInferenceService] = {}


@dataclass(frozen=True)
class SparkSummary:
    """What a ``spark-predict`` run did."""

    rows: int
    seconds: float
    output: Path | str

    @property
    def rows_per_second(self) -> float:
        """Throughput, reading and writing included."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def file_format(path: str | Path, given: str | None = None) -> str:
    """``csv`` or ``parquet``: ``given``, else from the name's extension.

    Raises:
        ValueError: If neither says which.
    """
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"format must be csv or parquet, got {given!r}")
        return given
    suffix = Path(str(path).rstrip("/")).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise ValueError(f"{path}: cannot tell CSV from Parquet by the name; pass the format")


def read_tracks(spark: SparkSession, path: str | Path, fmt: str | None = None) -> DataFrame:
    """A track file (or folder of part files) as a DataFrame: CSV cells as text, as
    ``predict`` reads them; Parquet columns as typed in the file."""
    kind = file_format(path, fmt)
    if "://" not in str(path) and not Path(path).exists():
        raise SchemaError(str(path), "file not found")
    if kind == "csv":
        return spark.read.options(**_CSV_OPTIONS).csv(str(path))
    return spark.read.parquet(str(path))


def score_dataframe(
    df: DataFrame,
    model: str | Path,
    *,
    source: str = "<dataframe>",
    row_column: str | None = None,
) -> DataFrame:
    """Score a DataFrame of track rows (labeled or not), grouped by stream.

    Args:
        df: Rows with at least the schema's feature columns (text or numbers); other columns
            are carried through unchanged.
        model: A bundle folder, or a folder with a ``latest`` link, on the driver.
        source: Name used in error messages (the input path).
        row_column: A column giving the rows' order; by default :data:`ROW` is added from
            ``monotonically_increasing_id()`` (read order).

    Returns:
        The input's columns, the row column, then ``reentry_probability`` (double, rounded to
        6 decimals) and ``predicted_reentry_phase`` (0/1). Lazy: a rejected row raises when
        an action runs, as an exception that :func:`schema_error` turns into a SchemaError.

    Raises:
        SchemaError: If a schema column is missing (checked here, before any job runs).
        BundleError: If the bundle is missing, tampered with or cannot be scored.
    """
    row = row_column or ROW
    if row_column is None:
        df = df.withColumn(ROW, sf.monotonically_increasing_id())
    return _grouped(df, model, source, row)


def _grouped(
    df: DataFrame,
    model: str | Path,
    source: str,
    row: str,
    *,
    as_text: bool = False,
    counter: Accumulator[int] | None = None,
) -> DataFrame:
    """The grouped map: :func:`score_dataframe`, with the probability as CSV text if asked
    and the rows counted into ``counter``."""
    # The column check is validate_frame's own, on no rows.
    validate_frame(pd.DataFrame(columns=list(df.columns)), source)
    shipped = ship_bundle(df.sparkSession, model)
    probability = StructField(PROBABILITY, StringType() if as_text else DoubleType())
    added = {PROBABILITY: probability, PREDICTION: StructField(PREDICTION, LongType())}
    # As predict: the input's columns in order (a column named like an answer is replaced
    # where it stands), then the answers not already there.
    fields = [added.get(f.name, f) for f in df.schema.fields]
    fields += [f for name, f in added.items() if name not in df.columns]
    schema = StructType(fields)

    def score(key: tuple[Any, ...], group: pd.DataFrame) -> pd.DataFrame:
        scored = _score_group(key, group, shipped, source, row)
        if as_text:  # as pandas writes it in a CSV (1e-06, not Java's 1.0E-6)
            scored[PROBABILITY] = scored[PROBABILITY].astype(str)
        if counter is not None:
            counter.add(len(scored))
        return scored[schema.names]

    # Rows of one stream share the numeric ids, however the text spells them (3, 3.0): group
    # on those. A group is never finer than a stream; two streams in one group (ids beyond
    # 2**53) are told apart by the scoring code.
    keys = [sf.col(name).try_cast("double") for name in (TRACK_ID, SENSOR_ID)]
    with warnings.catch_warnings():
        # PySpark 4.3 warns that it "does not yet fully support pandas >= 3"; this module's
        # tests check its answers with pandas 3 against predict's.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        return df.groupBy(*keys).applyInPandas(score, schema)


def ship_bundle(spark: SparkSession, model: str | Path) -> str:
    """Verify the bundle and ship its scoring files to the executors (once per application).

    Returns:
        The name executors find it under (``SparkFiles.get(name)``).
    """
    bundle = ModelInferenceService(model, threads=1).bundle  # verifies it can score
    digest = bundles.sha256(bundle.path / bundles.METADATA_FILE)[:12]
    key = (spark.sparkContext.applicationId, f"{bundle.path}@{digest}")
    if key in _SHIPPED:
        return _SHIPPED[key]
    name = f"missile-classifier-bundle-{bundle.version}-{digest}"
    staging = Path(tempfile.mkdtemp(prefix="missile-classifier-spark-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    folder = staging / name
    folder.mkdir()
    # The checkpoint and the report are not needed to score; loading skips listed files
    # that are absent and verifies the others' checksums.
    for file in (*bundles.REQUIRED_FILES, bundles.METADATA_FILE):
        shutil.copy2(bundle.path / file, folder / file)
    spark.sparkContext.addFile(str(folder), recursive=True)
    _SHIPPED[key] = name
    return name


def _service(name: str) -> ModelInferenceService:
    """The shipped bundle, loaded once per Python worker."""
    service = _SERVICES.get(name)
    if service is None:
        service = ModelInferenceService(SparkFiles.get(name), threads=EXECUTOR_THREADS)
        _SERVICES[name] = service
    return service


def _score_group(
    key: tuple[Any, ...],
    group: pd.DataFrame,
    shipped: str,
    source: str,
    row: str,
) -> pd.DataFrame:
    """Score one group (a stream) with predict's chunk code; runs on an executor."""
    group = group.sort_values(row, kind="stable").reset_index(drop=True)
    try:
        # Line 0 is the group's first row; a rejection's line is mapped back to its row below.
        scored, _ = _score_chunk(_service(shipped), group, source, 0, {}, None)
        if any(pd.isna(k) for k in key):
            column = TRACK_ID if pd.isna(key[0]) else SENSOR_ID
            raise SchemaError(
                source,
                "holds ids that Spark cannot read as numbers to group the rows by stream",
                column=column,
                line=0,
                count=len(group),
                value=group[column].iloc[0],
            )
    except SchemaError as exc:
        raise RuntimeError(_tagged(exc, group[row])) from None
    return scored


def _tagged(exc: SchemaError, rows: pd.Series[Any]) -> str:
    """The exception's message, with its details tagged for :func:`schema_error`."""
    marker = "\x00"
    blank = str(
        SchemaError(
            exc.source,
            marker,
            column=exc.column,
            line=exc.line,
            count=exc.count,
            value=exc.value,
        )
    )
    prefix, suffix = blank.split(marker)
    message = str(exc)
    details = {
        "problem": message[len(prefix) : len(message) - len(suffix)],
        "column": exc.column,
        "row": None if exc.line is None else int(rows.iloc[exc.line]),
        "count": exc.count,
        "value": exc.value,
    }
    return f"{message} {_TAG}{json.dumps(details, default=str)}{_TAG}"


def schema_error(
    exc: BaseException, df: DataFrame | None = None, *, source: str, first_line: int = 2
) -> SchemaError | None:
    """The SchemaError an executor raised, from the exception Spark raised on the driver.

    Args:
        exc: What the action raised.
        df: The scored DataFrame's input (with :data:`ROW`), to find the rejected row's line;
            without it the error has no line.
        source: Name used in the message.
        first_line: Line of the first row (2 for a CSV with its header line).

    Returns:
        The error, or ``None`` if ``exc`` is not a rejection.
    """
    found = _TAGGED.search(str(exc))
    if found is None:
        return None
    details = json.loads(found[1])
    line = None
    if details["row"] is not None and df is not None:
        line = df.filter(sf.col(ROW) < details["row"]).count() + first_line
    return SchemaError(
        source,
        details["problem"],
        column=details["column"],
        line=line,
        count=details["count"],
        value=details["value"],
    )


def spark_predict(
    spark: SparkSession,
    input_path: str | Path,
    output_path: str | Path,
    model: str | Path,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    partitioned: bool = False,
) -> SparkSummary:
    """Score a CSV or Parquet file into a CSV or Parquet output, as ``predict`` does.

    Args:
        partitioned: Write Spark's folder of part files (any file system, in parallel) with
            the :data:`ROW` column to sort on, instead of one file in the input's row order
            (a local path, written by one task).

    Raises:
        SchemaError: If the input is missing, lacks a column or a row breaks the schema.
        BundleError: If the bundle cannot be used.
        ValueError: If a format cannot be told or the output is the input.
    """
    started = time.perf_counter()
    kind = file_format(input_path, input_format)
    out_kind = file_format(output_path, output_format)
    source, target = str(input_path), str(output_path)
    if "://" not in target and Path(target).resolve() == Path(source).resolve():
        raise ValueError("--output must differ from --input: the input is never overwritten")
    df = read_tracks(spark, input_path, kind).withColumn(ROW, sf.monotonically_increasing_id())
    rows = spark.sparkContext.accumulator(0)
    scored = _grouped(df, model, source, ROW, as_text=out_kind == "csv", counter=rows)
    try:
        if partitioned:
            _writer(scored, out_kind).mode("errorifexists").save(target)
        else:
            _write_single(
                scored.repartition(1).sortWithinPartitions(ROW).drop(ROW), target, out_kind
            )
    except Exception as exc:
        error = schema_error(exc, df, source=source, first_line=_FIRST_LINE[kind])
        if error is None:
            raise
        raise error from None
    return SparkSummary(rows.value, time.perf_counter() - started, output_path)


def _writer(df: DataFrame, kind: str) -> Any:
    writer = df.write.format(kind)
    return writer.options(**_CSV_OPTIONS) if kind == "csv" else writer


def _write_single(df: DataFrame, target: str, kind: str) -> None:
    """One local file, written to a folder beside it and moved into place at the end."""
    final = Path(target)
    folder = final.with_name(f".{final.name}.{os.getpid()}.spark")
    try:
        _writer(df, kind).mode("overwrite").save(str(folder))
        parts = sorted(folder.glob("part-*"))
        if len(parts) != 1:
            raise RuntimeError(f"{folder}: expected one part file, found {len(parts)}")
        os.replace(parts[0], final)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def session(master: str | None = None, *, quiet: bool = False) -> tuple[SparkSession, bool]:
    """A Spark session for the CLI, and whether it was started here (and so is to be stopped).

    Args:
        master: The master URL; ``None`` for the one ``spark-submit`` gave, else ``local[*]``.
            A local master runs its Python workers with this interpreter (it has the package).
        quiet: No console progress bars, only Spark's errors in the log.
    """
    from pyspark import SparkConf

    running = SparkSession.getActiveSession()
    if running is not None:
        return running, False
    if master is None and not SparkConf().contains("spark.master"):
        master = "local[*]"
    builder = SparkSession.builder.appName("missile-classifier spark-predict")
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            # The workers' interpreter: PySpark reads it from the environment only.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if quiet:
        builder = builder.config("spark.ui.showConsoleProgress", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR" if quiet else "WARN")
    return spark, True
