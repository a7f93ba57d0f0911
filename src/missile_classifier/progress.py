"""One progress bar style for every long-running step (simulation, training, scoring)."""

from __future__ import annotations

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


@contextmanager
def progress_bar(total: int, description: str, *, enabled: bool = True) -> Iterator[Advance]:
    """Show a progress bar on stderr while the block runs.

    Args:
        total: Number of units of work.
        description: Short label shown left of the bar.
        enabled: When false (tests, ``--quiet``, non-interactive use) nothing is drawn.

    Yields:
        A callback advancing the bar by ``n`` units.
    """
    if not enabled:
        yield lambda n=1: None
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
