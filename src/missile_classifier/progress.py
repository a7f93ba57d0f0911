"""Progress of every long-running step (simulation, training, scoring), on a terminal or not.

On a terminal: a bar with the time elapsed and left. Anywhere else (``make run > log``, CI, a
Kubernetes Job) a bar would be one line rewritten in place, or nothing, so the same progress
is logged as one structured line every ``every_s`` seconds and at the end: minutes of work are
never minutes of silence.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Advance(Protocol):
    """Callback that moves a progress bar forward by ``n`` units."""

    def __call__(self, n: int = 1) -> None: ...


log = logging.getLogger("missile_classifier")


def on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal."""
    return sys.stderr.isatty()


@contextmanager
def progress_bar(
    total: int, description: str, *, enabled: bool = True, every_s: float = 10.0
) -> Iterator[Advance]:
    """Show progress on stderr while the block runs: a bar, or log lines off a terminal.

    Args:
        total: Number of units of work.
        description: Short label shown left of the bar (and in the log lines).
        enabled: When false (tests, ``--quiet``) nothing is shown.
        every_s: Off a terminal, the least time between two log lines.

    Yields:
        A callback advancing the bar by ``n`` units.
    """
    if not enabled:
        yield lambda n=1: None
        return
    if not on_terminal():
        yield _log_lines(total, description, every_s)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _log_lines(total: int, description: str, every_s: float) -> Advance:
    """An :class:`Advance` that logs ``done/total``, elapsed and remaining time now and then."""
    started = last = time.monotonic()
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last < every_s and done < total:
            return
        last = now
        elapsed = now - started
        left = elapsed / done * (total - done) if done else float("nan")
        log.info(
            "progress=%r done=%d total=%d share=%.0f%% elapsed_s=%.1f eta_s=%.0f",
            description,
            done,
            total,
            100.0 * done / total if total else 100.0,
            elapsed,
            left,
        )

    return advance
