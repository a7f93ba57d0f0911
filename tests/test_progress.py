"""Progress off a terminal: structured log lines, never minutes of silence."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from missile_classifier.progress import progress_bar


def test_off_a_terminal_progress_is_logged_as_key_value_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert not sys.stderr.isatty()  # pytest captures stderr: this is the CI / log-file case
    with (
        caplog.at_level(logging.INFO, logger="missile_classifier"),
        progress_bar(4, "Scoring rows", every_s=0.0) as advance,
    ):
        for _ in range(4):
            advance(1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    pattern = r"progress='Scoring rows' done=(\d) total=4 share=(\d+)% elapsed_s=[\d.]+ eta_s=\d+"
    found = [re.fullmatch(pattern, line) for line in lines]
    assert all(found), lines
    assert [(m.group(1), m.group(2)) for m in found if m] == [
        ("1", "25"),
        ("2", "50"),
        ("3", "75"),
        ("4", "100"),
    ]


def test_lines_come_at_most_every_interval_and_always_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="missile_classifier"),
        progress_bar(1000, "Simulating tracks", every_s=3600.0) as advance,
    ):
        for _ in range(1000):
            advance(1)
    assert [r.getMessage().split(" share")[0] for r in caplog.records] == [
        "progress='Simulating tracks' done=1000 total=1000"
    ]


def test_disabled_progress_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), progress_bar(3, "x", enabled=False) as advance:
        advance(3)
    assert caplog.records == []
