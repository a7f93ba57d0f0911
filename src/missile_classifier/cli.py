"""Command-line interface: ``missile-classifier COMMAND`` (or ``python -m missile_classifier``).

Heavy libraries are imported inside the commands so that ``--help`` is instant and the serving
install (no pandas, no torch) can still run the commands it needs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from missile_classifier import __version__

app = typer.Typer(
    help="Classify the reentry phase of missile tracks: simulate, validate, train, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
log = logging.getLogger("missile_classifier")

#: Files ``simulate`` writes; it replaces them only when they came from an earlier simulation.
_SIMULATED_FILES = ("train.csv", "test.csv", "tracks.csv", "manifest.json")


class ProfileChoice(StrEnum):
    """Simulator profiles (see ``docs/simulator.md``)."""

    challenge = "challenge"
    ballistic = "ballistic"


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
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


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
        typer.Option("--output-dir", "--output_dir", help="Folder for train.csv and test.csv."),
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
        bool, typer.Option(help="Replace train.csv/test.csv not written by an earlier simulate.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")
    ] = False,
) -> None:
    """Simulate labeled tracks into OUTPUT_DIR/train.csv and OUTPUT_DIR/test.csv."""
    from missile_classifier.simulate import simulate_dataset, write_dataset

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
        streams = frame.groupby(["track_id", "sensor_id"]).ngroups if len(frame) else 0
        share = f"{frame['reentry_phase'].mean():.1%}" if len(frame) else "-"
        table.add_row(
            written[name].name,
            f"{len(frame):,}",
            f"{frame['track_id'].nunique():,}",
            f"{streams:,}",
            share,
        )
    out.print(table)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Track CSV files to check.")],
    labeled: Annotated[bool, typer.Option(help="Require the reentry_phase column.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Check track CSV files against the schema; exit 1 on the first bad file."""
    from dataclasses import asdict

    from missile_classifier.schema import SchemaError, read_tracks

    reports = []
    for path in files:
        try:
            _, report = read_tracks(path, require_labels=labeled)
        except SchemaError as exc:
            raise _fail(str(exc)) from None
        reports.append(report)
        if not as_json:
            kind = "labeled" if report.labeled else "unlabeled"
            out.print(
                f"[green]ok[/] {path}: {report.rows:,} rows, {report.streams:,} streams, {kind}"
                + (f", {len(report.warnings)} repaired" if report.warnings else "")
            )
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in reports]))


def main() -> None:
    """Entry point of the console script."""
    app()
