"""Command-line interface: ``missile-classifier COMMAND`` (or ``python -m missile_classifier``).

Heavy libraries are imported inside the commands so that ``--help`` is instant and the serving
install (no pandas, no torch) can still run the commands it needs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from missile_classifier import __version__
from missile_classifier.columns import (
    ALTITUDE,
    LABEL,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.training.config import TrainConfig


def _spelling(token: str) -> str:
    """Option names with ``_`` and ``-`` are the same option (``--train_data``, ``--train-data``);
    click applies this to declared and given names (and to choice values) before matching."""
    return token.replace("_", "-")


app = typer.Typer(
    help="Classify the reentry phase of missile tracks: simulate, validate, train, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"token_normalize_func": _spelling},
)
# Tables stay readable when stdout is a pipe or a file (Rich would assume 80 columns); messages
# are never hard-wrapped there, so one message stays one line for grep and log collectors.
out = Console(width=None if sys.stdout.isatty() else 120, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
log = logging.getLogger("missile_classifier")

#: Files ``simulate`` writes; it replaces them only when they came from an earlier simulation.
_SIMULATED_FILES = ("train.csv", "test.csv", "tracks.csv", "manifest.json")


class ProfileChoice(StrEnum):
    """Simulator profiles (see ``docs/simulator.md``)."""

    challenge = "challenge"
    ballistic = "ballistic"


class EncodingKindChoice(StrEnum):
    """Bin encodings (see ``docs/training.md``); values as in ``ENCODING_KINDS``."""

    thermometer = "thermometer"
    piecewise_linear = "piecewise-linear"


_DEFAULT_ENCODING_KIND = EncodingKindChoice(TrainConfig.encoding_kind)


def _version(value: bool) -> None:
    if value:
        out.print(f"missile-classifier {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version.", metavar=""
        ),
    ] = False,
) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    # Our messages at the chosen level; other libraries' (torch, onnx) only when they warn.
    logging.basicConfig(
        level=max(level, logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(level)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _message(exc: Exception) -> str:
    """An error's message, with the library detail behind it when it has one (a BundleError)."""
    detail = getattr(exc, "detail", None)
    return f"{exc} ({detail})" if detail else str(exc)


def _show_progress(quiet: bool) -> bool:
    """Progress unless --quiet: a bar on a terminal, log lines elsewhere (see progress.py)."""
    return not quiet


def _check_overwrite(output_dir: Path, overwrite: bool) -> None:
    """Refuse to replace CSV files that an earlier simulation did not write."""
    if overwrite or (output_dir / "manifest.json").is_file():
        return
    existing = [n for n in _SIMULATED_FILES if (output_dir / n).exists()]
    if existing:
        raise _fail(
            f"{output_dir} already holds {', '.join(existing)} not written by `simulate`; "
            "pass --overwrite to replace them or choose another --output-dir",
            code=2,
        )


@app.command()
def simulate(
    profile: Annotated[
        ProfileChoice, typer.Option(help="challenge: the public data's shape; ballistic: physics.")
    ] = ProfileChoice.challenge,
    tracks: Annotated[int, typer.Option(min=1, help="Number of tracks (ids 0..N-1).")] = 100,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed; a track depends on (seed, id) only.")
    ] = 42,
    output_dir: Annotated[
        Path,
        typer.Option("--output-dir", help="Folder for train.csv and test.csv."),
    ] = Path("data"),
    test_fraction: Annotated[
        float,
        typer.Option(
            "--test-fraction",
            "--test_fraction",
            min=0.0,
            max=0.9,
            help="Share of tracks in test.csv.",
        ),
    ] = 0.1,
    interface_altitude: Annotated[
        float,
        typer.Option(
            "--interface-altitude",
            "--interface_altitude",
            min=1.0,
            help="ballistic: label rows below this altitude (m) while descending.",
        ),
    ] = 100_000.0,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace train.csv/test.csv not written by an earlier simulate.", metavar=""
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.", metavar="")
    ] = False,
) -> None:
    """Simulate labeled tracks into OUTPUT_DIR/train.csv and OUTPUT_DIR/test.csv."""
    from missile_classifier.simulation.dataset import simulate_dataset, write_dataset

    _check_overwrite(output_dir, overwrite)
    started = time.perf_counter()
    dataset = simulate_dataset(
        profile.value,
        tracks,
        seed,
        test_fraction=test_fraction,
        interface_altitude_m=interface_altitude,
        progress=_show_progress(quiet),
    )
    written = write_dataset(dataset, output_dir)
    if quiet:
        return
    elapsed = time.perf_counter() - started
    table = Table(title=f"{output_dir}/ ({profile.value} profile, seed {seed}, {elapsed:.1f} s)")
    for column in ("file", "rows", "tracks", "streams", "reentry rows"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, frame in (("train.csv", dataset.train), ("test.csv", dataset.test)):
        streams = frame.groupby([TRACK_ID, SENSOR_ID]).ngroups if len(frame) else 0
        share = f"{frame[LABEL].mean():.1%}" if len(frame) else "-"
        table.add_row(
            written[name].name,
            f"{len(frame):,}",
            f"{frame[TRACK_ID].nunique():,}",
            f"{streams:,}",
            share,
        )
    out.print(table)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Track CSV files to check.")],
    labeled: Annotated[
        bool, typer.Option(help="Require the reentry_phase column.", metavar="")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the reports as JSON.", metavar="")
    ] = False,
) -> None:
    """Check track CSV files against the schema; exit 1 on the first bad file.

    With --json, stdout holds one JSON list in every case: a report per file checked, the bad
    file's with "ok": false and where the problem is (the error is on stderr too).
    """
    from dataclasses import asdict

    from missile_classifier.schema import SchemaError, read_tracks

    reports: list[dict[str, Any]] = []
    for path in files:
        try:
            _, report = read_tracks(path, require_labels=labeled)
        except SchemaError as exc:
            if as_json:
                where = {"column": exc.column, "line": exc.line, "count": exc.count}
                failed = {"source": str(path), "ok": False, "error": str(exc), **where}
                out.print_json(json.dumps([*reports, failed]))
            raise _fail(_message(exc)) from None
        reports.append({**asdict(report), "ok": True})
        if not as_json:
            kind = "labeled" if report.labeled else "unlabeled"
            out.print(
                f"[green]ok[/] {path}: {report.rows:,} rows, {report.streams:,} streams, {kind}"
                + (f", {len(report.warnings)} repaired" if report.warnings else "")
            )
    if as_json:
        out.print_json(json.dumps(reports))


def _model_option(help_text: str = "Bundle folder, or a folder with a `latest` link.") -> Any:
    return typer.Option("--model", envvar="MODEL_PATH", help=help_text)


@app.command()
def train(
    train_data: Annotated[Path, typer.Option("--train_data", help="Labeled training CSV.")],
    test_data: Annotated[
        Path | None,
        typer.Option("--test_data", help="Held-out CSV (labeled: metrics on it)."),
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Maximum epochs (early stopping).")
    ] = TrainConfig.epochs,
    sequence_length: Annotated[
        int, typer.Option("--sequence_length", min=1, help="Rows per window.")
    ] = TrainConfig.sequence_length,
    batch_size: Annotated[
        int, typer.Option("--batch_size", min=2, help="Windows per step.")
    ] = TrainConfig.batch_size,
    learning_rate: Annotated[
        float, typer.Option("--learning_rate", min=0.0, help="Adam's rate.")
    ] = TrainConfig.learning_rate,
    lstm_units: Annotated[
        int, typer.Option("--lstm_units", min=1, help="Units per direction.")
    ] = TrainConfig.lstm_units,
    patience: Annotated[
        int, typer.Option(min=1, help="Early-stopping patience (epochs).")
    ] = TrainConfig.patience,
    output: Annotated[
        Path, typer.Option(help="Folder that receives the bundle.")
    ] = TrainConfig.output,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of split, weights and shuffling.")
    ] = TrainConfig.seed,
    encode: Annotated[
        str,
        typer.Option(
            help="Features the LSTM also sees bin-encoded, with bins fitted to the labels: "
            "comma-separated names, or 'none'."
        ),
    ] = ",".join(TrainConfig.encoded_features),
    encoding_bins: Annotated[
        int,
        typer.Option("--encoding_bins", min=2, help="Most bins per feature."),
    ] = TrainConfig.encoding_bins,
    encoding_kind: Annotated[
        EncodingKindChoice,
        typer.Option(
            "--encoding_kind",
            "--encoding-kind",
            help="thermometer: 0/1 steps at the bin edges; piecewise-linear: 0–1 ramps per bin.",
        ),
    ] = _DEFAULT_ENCODING_KIND,
    augment: Annotated[
        int,
        typer.Option(
            min=0,
            help="Degraded copies of every training and validation track (other sampling "
            "rates, lost rows, noise, bias, missing intensity, late pick-up); 0 for none.",
        ),
    ] = TrainConfig.augment,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar.", metavar="")
    ] = False,
) -> None:
    """Train the LSTM and the baselines, evaluate them, and write an ONNX bundle."""
    for given in (train_data, test_data):
        if given is not None and not given.is_file():  # say so before torch takes seconds to load
            raise _fail(f"{given}: file not found")
    from missile_classifier.schema import SchemaError
    from missile_classifier.scoring.features import FEATURE_NAMES
    from missile_classifier.training.binning import check_encodable
    from missile_classifier.training.train import run_training

    names = (name.strip() for name in encode.split(","))
    encoded = tuple(name for name in names if name and name != "none")
    try:  # before any data is read
        check_encodable(encoded, FEATURE_NAMES)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--encode") from None

    config = TrainConfig(
        train_data=train_data,
        test_data=test_data,
        output=output,
        sequence_length=sequence_length,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        lstm_units=lstm_units,
        patience=patience,
        seed=seed,
        encoded_features=encoded,
        encoding_bins=encoding_bins,
        encoding_kind=str(encoding_kind),
        augment=augment,
        verbose=_show_progress(quiet),
    )
    try:
        result = run_training(config)
    except (SchemaError, ValueError) as exc:
        raise _fail(_message(exc)) from None
    table = Table(
        title=f"Evaluated on {result.evaluated_on}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # Two-line headers keep the table within 80 columns; numbers are never truncated.
    table.add_column("model", min_width=18)
    for column in (
        "F1",
        "prec.",
        "recall",
        "ROC\nAUC",
        "onset\nmedian s",
        "onset\nmax s",
        "flicker",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    for name, metrics in result.metrics.items():
        tracks = metrics["tracks"]
        table.add_row(
            name,
            f"{metrics['f1']:.4f}",
            f"{metrics['precision']:.4f}",
            f"{metrics['recall']:.4f}",
            _fmt(metrics["roc_auc"]),
            _fmt(tracks["onset_error_s"]["median_abs"], ".2f"),
            _fmt(tracks["onset_error_s"]["max_abs"], ".2f"),
            str(tracks["flicker"]["total"]),
        )
    out.print(table)
    out.print(f"Bundle: {result.bundle_path} ({output}/latest) in {result.seconds:.0f} s")


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="Labeled CSV to evaluate on.")],
    model: Annotated[Path, _model_option()] = Path("models"),
    report: Annotated[
        Path | None, typer.Option(help="Also write report.md and plots into this folder.")
    ] = None,
    robustness: Annotated[
        bool,
        typer.Option(
            "--robustness",
            help="Also score the tracks as deployed sensors see them (other rates, lost rows, "
            "noise, several sensors, late pick-up): one table row per condition.",
            metavar="",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the --robustness degradations.")] = 0,
) -> None:
    """Score a labeled CSV with a bundle and print the metrics as JSON."""
    from missile_classifier.schema import SchemaError, frame_columns, load_tracks
    from missile_classifier.scoring.bundle import BundleError
    from missile_classifier.scoring.inference import ModelInferenceService
    from missile_classifier.training.metrics import evaluate_predictions
    from missile_classifier.training.report import (
        ModelScores,
        ReportData,
        TrainingCurves,
        write_report,
    )

    try:
        service = ModelInferenceService(model)
        frame = load_tracks(data, require_labels=True)
    except (BundleError, SchemaError) as exc:
        raise _fail(_message(exc)) from None
    columns = frame_columns(frame)
    scores = service.predict_batch(columns)
    report_data = ReportData(
        columns[TRACK_ID],
        columns[SENSOR_ID],
        columns[TIMESTAMP],
        columns[ALTITUDE],
        frame[LABEL].to_numpy(),
    )
    metrics = evaluate_predictions(
        report_data.track_id,
        report_data.sensor_id,
        report_data.timestamp,
        report_data.y_true,
        scores.probability,
        service.threshold,
    )
    metrics["model_version"] = service.model_version
    suite = None
    if robustness:
        from missile_classifier.training.robustness import robustness as run_suite

        suite = run_suite(service, frame, seed=seed)
        metrics["robustness"] = suite
    if report is not None:
        write_report(
            report,
            title=f"{data} with {service.model_version}",
            data=report_data,
            models={"LSTM": ModelScores(scores.probability, service.threshold)},
            training=TrainingCurves.from_history(service.bundle.metadata.get("training")),
            robustness=suite,
        )
    print(json.dumps(metrics, indent=2))


@app.command()
def predict(
    input: Annotated[Path, typer.Option("--input", help="CSV to score (labeled or not).")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write.")],
    model: Annotated[Path, _model_option()] = Path("models"),
    shard: Annotated[
        str | None, typer.Option(help="Score only tracks hashing to shard i of N, as i/N.")
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read at a time (memory bound).")
    ] = 200_000,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.", metavar="")
    ] = False,
) -> None:
    """Add reentry_probability and predicted_reentry_phase to every row of a CSV."""
    from missile_classifier.predict import Shard, predict_csv
    from missile_classifier.schema import SchemaError
    from missile_classifier.scoring.bundle import BundleError
    from missile_classifier.scoring.inference import ModelInferenceService

    try:
        part = Shard.parse(shard) if shard is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    try:
        service = ModelInferenceService(model)
        summary = predict_csv(
            service,
            input,
            output,
            shard=part,
            chunk_rows=chunk_rows,
            progress=_show_progress(quiet),
        )
    except (BundleError, SchemaError, ValueError) as exc:
        raise _fail(_message(exc)) from None
    if not quiet:
        err.print(
            f"{summary.rows:,} rows scored with {service.model_version} in "
            f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s), "
            f"{summary.reentry_rows:,} in reentry → {output}",
            highlight=False,
        )
    if summary.out_of_range_rows:  # a warning, so shown even with --quiet
        inputs = ", ".join(f"{name} {count:,}" for name, count in summary.out_of_range.items())
        err.print(
            f"warning: {summary.out_of_range_rows:,} rows have inputs far outside the model's "
            f"training range ({inputs}); their answers are extrapolations",
            highlight=False,
        )


class FileFormatChoice(StrEnum):
    """File formats of ``spark-predict``."""

    csv = "csv"
    parquet = "parquet"


@app.command("spark-predict")
def spark_predict(
    input: Annotated[
        str, typer.Option("--input", help="CSV or Parquet file or folder (any Spark path).")
    ],
    output: Annotated[str, typer.Option("--output", help="CSV or Parquet to write.")],
    model: Annotated[Path, _model_option("Bundle folder on the driver, or one with `latest`.")] = (
        Path("models")
    ),
    input_format: Annotated[
        FileFormatChoice | None,
        typer.Option("--format", help="Input format (default: from the extension)."),
    ] = None,
    output_format: Annotated[
        FileFormatChoice | None,
        typer.Option("--output-format", help="Output format (default: from the extension)."),
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL (default: spark-submit's, else local[*]: all local cores)."
        ),
    ] = None,
    partitioned: Annotated[
        bool,
        typer.Option(
            help="Write Spark's folder of part files, with the _input_row column to sort on, "
            "instead of one local file in the input's row order.",
            metavar="",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or summary.", metavar="")
    ] = False,
) -> None:
    """predict on Spark: the rows grouped by stream and scored in parallel (needs the `spark`
    extra and Java); same columns and answers as predict. See docs/batch.md."""
    try:
        from missile_classifier import spark_scoring
    except ImportError as exc:
        raise _fail(f"{exc}; install the extra: pip install 'missile-classifier[spark]'") from None
    from missile_classifier.schema import SchemaError
    from missile_classifier.scoring.bundle import BundleError

    fmt = None if input_format is None else str(input_format)
    out_fmt = None if output_format is None else str(output_format)
    try:  # before Spark takes seconds to start
        spark_scoring.file_format(input, fmt)
        spark_scoring.file_format(output, out_fmt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--format/--output-format") from None
    spark, started = spark_scoring.session(master, quiet=quiet)
    where = spark.sparkContext.master
    try:
        summary = spark_scoring.spark_predict(
            spark,
            input,
            output,
            model,
            input_format=fmt,
            output_format=out_fmt,
            partitioned=partitioned,
        )
    except (BundleError, SchemaError, ValueError) as exc:
        raise _fail(_message(exc)) from None
    finally:
        if started:  # not a session this process was already running
            spark.stop()
    if not quiet:
        err.print(
            f"{summary.rows:,} rows scored on Spark ({where}) in "
            f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s) → {output}",
            highlight=False,
        )


@app.command()
def export(
    model: Annotated[Path, _model_option("Bundle to re-export from its checkpoint.pt.")] = Path(
        "models"
    ),
    output: Annotated[
        Path | None, typer.Option(help="New bundle folder (default: a new version, made latest).")
    ] = None,
) -> None:
    """Re-export a bundle's ONNX model from its torch checkpoint into a verified copy."""
    from missile_classifier.scoring.bundle import BundleError
    from missile_classifier.training.export import reexport

    try:
        difference, path = reexport(model, output)
    except BundleError as exc:
        raise _fail(_message(exc)) from None
    out.print(f"{path}: re-exported, ONNX matches torch within {difference:.1e}")


models_app = typer.Typer(
    help="The bundle versions in a models folder: list them, check one, switch latest, remove "
    "old ones.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


def _models_option() -> Any:
    return typer.Option("--models", help="The models folder (holds the versions and `latest`).")


@models_app.command("list")
def models_list(
    models: Annotated[Path, _models_option()] = Path("models"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.", metavar="")] = False,
) -> None:
    """Every version, oldest first: created, F1 when trained, size, and which one is latest."""
    from missile_classifier import registry

    try:
        found = registry.versions(models)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        rows = [{**asdict(v), "path": str(v.path)} for v in found]
        out.print_json(json.dumps(rows))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("version", "created", "F1", "evaluated on", "size", "latest"):
        table.add_column(column, justify="right" if column in ("F1", "size") else "left")
    for v in found:
        table.add_row(
            v.name,
            v.created or "—",
            "—" if v.f1 is None else f"{v.f1:.4f}",
            Path(v.evaluated_on).name if v.evaluated_on else "—",
            f"{v.size_bytes / 1e6:.1f} MB",
            "← latest" if v.latest else "",
        )
    out.print(table)


@models_app.command("use")
def models_use(
    version: Annotated[str, typer.Argument(help="The version (folder name) to serve.")],
    models: Annotated[Path, _models_option()] = Path("models"),
) -> None:
    """Point `latest` at VERSION after verifying it; a running service follows within
    MODEL_CHECK_INTERVAL seconds (every worker verifies it again before switching)."""
    from missile_classifier import registry
    from missile_classifier.scoring.bundle import BundleError

    try:
        loaded = registry.use(models, version)
    except (BundleError, FileNotFoundError) as exc:
        raise _fail(_message(exc)) from None
    out.print(f"{models}/latest -> {loaded.path.name} (verified)")


@models_app.command("check")
def models_check(
    models: Annotated[
        Path, typer.Option("--models", help="A bundle folder, or a folder with `latest`.")
    ] = Path("models"),
) -> None:
    """Exit 0 if this version can serve the bundle (checksums, features, ONNX), else 1 and why."""
    from missile_classifier import registry
    from missile_classifier.scoring.bundle import BundleError

    try:
        loaded = registry.check(models)
    except BundleError as exc:
        raise _fail(_message(exc)) from None
    out.print(f"{loaded.path} ({loaded.version}): can be served")


@models_app.command("prune")
def models_prune(
    keep: Annotated[int, typer.Option(min=1, help="Versions to keep (the newest).")] = 3,
    models: Annotated[Path, _models_option()] = Path("models"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would go.", metavar="")
    ] = False,
) -> None:
    """Remove all but the KEEP newest versions; the one `latest` names is always kept."""
    from missile_classifier import registry

    try:
        gone = registry.prune(models, keep, dry_run=dry_run)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    verb = "would remove" if dry_run else "removed"
    for version in gone:
        out.print(f"{verb} {version.path} ({version.size_bytes / 1e6:.1f} MB)")
    if not gone:
        out.print(f"nothing to remove: {models} holds at most {keep} versions besides latest")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (env HOST; 0.0.0.0).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PORT; 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (env WORKERS); 1 without REDIS_URL."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads per worker (env THREADS; 4).")
    ] = None,
) -> None:
    """Serve the REST API with gunicorn (configuration: environment variables, see README)."""
    import tempfile

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # prometheus_client opens files in it as soon as the app's metrics are imported.
        try:
            Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}: {exc.strerror}", code=2) from None
    from missile_classifier.service.app import ConfigError, load_settings
    from missile_classifier.service.config import OWNED_METRICS_DIR

    given = {"host": host, "port": port, "workers": workers, "threads": threads}
    overrides = {name: value for name, value in given.items() if value is not None}
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        raise _fail(str(exc), code=2) from None
    # gunicorn's config reads the same settings from the environment it inherits.
    env = {**os.environ, **{name.upper(): str(value) for name, value in overrides.items()}}
    if settings.store_kind == "memory" and (settings.workers or 1) > 1:
        err.print(
            f"[yellow]note:[/] in-memory track store: running 1 worker with {settings.threads} "
            f"threads instead of {settings.workers} workers (set REDIS_URL to share track state "
            "between workers)"
        )
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        # Ours, so gunicorn's on_exit hook removes it when the server stops.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="missile-classifier-metrics-")
        env[OWNED_METRICS_DIR] = env["PROMETHEUS_MULTIPROC_DIR"]
    err.print(
        f"serving on http://{settings.host}:{settings.port} with {settings.effective_workers()} "
        f"worker(s) × {settings.threads} threads, {settings.store_kind} track store, "
        f"model {settings.model_path}"
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:missile_classifier.service.gunicorn_conf",
        "missile_classifier.service.app:create_app()",
    ]
    os.execvpe(sys.executable, command, env)


#: The brief's form: ``missile-classifier --mode train --train_data … --epochs 100``.
_MODES = ("train", "evaluate", "predict", "serve")


def _brief_form(argv: list[str]) -> list[str]:
    """``--mode X …`` (or ``--mode=X``) as the subcommand ``X …``; other arguments unchanged."""
    for i, arg in enumerate(argv):
        mode = arg.removeprefix("--mode=") if arg.startswith("--mode=") else None
        if arg == "--mode" and i + 1 < len(argv):
            mode, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
        elif mode is not None:
            rest = argv[:i] + argv[i + 1 :]
        else:
            continue
        if mode not in _MODES:
            return argv  # the parser will say what is wrong
        # Options before the subcommand belong to the group (--log-level), the rest to it.
        group = [a for a in rest[:i] if a.startswith("--log")]
        return [*group, mode, *[a for a in rest if a not in group]]
    return argv


def main() -> None:
    """Entry point of the console script."""
    import typer.rich_utils

    if not sys.stdout.isatty() and not os.environ.get("TERMINAL_WIDTH"):
        # A pipe or a log file: help and tables as one would read them on a wide terminal,
        # rather than wrapped (and option names cut) at Rich's assumed 80 columns.
        typer.rich_utils.MAX_WIDTH = 120
    app(args=_brief_form(sys.argv[1:]), prog_name="missile-classifier")
