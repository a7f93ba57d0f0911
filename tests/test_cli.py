"""The command line, run as users run it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from missile_classifier.columns import COLUMNS

EXE = shutil.which("missile-classifier") or str(Path(sys.executable).parent / "missile-classifier")


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The console script with ``args`` (``env`` is added to this process's environment)."""
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        check=False,
    )


def test_simulate_writes_the_contract_files(tmp_path: Path) -> None:
    out = tmp_path / "x"
    result = run(
        "simulate",
        "--profile",
        "challenge",
        "--tracks",
        "30",
        "--seed",
        "7",
        "--output-dir",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "train.csv" in result.stdout
    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    assert list(train.columns) == list(COLUMNS) == list(test.columns)
    assert train["track_id"].nunique() == 27 and set(test["track_id"]) == {27, 28, 29}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["train"]["rows"] == len(train)
    # Deterministic: the same command gives byte-identical files.
    again = tmp_path / "y"
    run("simulate", "--tracks", "30", "--seed", "7", "--output-dir", str(again), "-q")
    assert (again / "train.csv").read_bytes() == (out / "train.csv").read_bytes()


def test_both_profiles_record_their_settings_in_the_manifest(tmp_path: Path) -> None:
    for profile in ("challenge", "ballistic"):
        out = tmp_path / profile
        args = ["simulate", "--profile", profile, "--tracks", "3", "--output-dir", str(out), "-q"]
        if profile == "ballistic":
            args += ["--interface-altitude", "90000"]
        assert run(*args).returncode == 0
        config = json.loads((out / "manifest.json").read_text())["config"]
        if profile == "challenge":
            assert config["sample_interval_s"] == 0.5 and config["ramp_fraction"] == 0.3
        else:
            assert config["interface_altitude_m"] == 90_000.0 and config["classes"]


def test_underscore_flags_and_module_entry_point(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "missile_classifier",
            "simulate",
            "--tracks",
            "4",
            "--output_dir",
            str(tmp_path),
            "--test_fraction",
            "0.5",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / "test.csv")["track_id"].nunique() == 2


def test_simulate_keeps_files_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("precious\n")
    result = run("simulate", "--tracks", "3", "--output-dir", str(tmp_path))
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (tmp_path / "train.csv").read_text() == "precious\n"
    assert (
        run(
            "simulate", "--tracks", "3", "--output-dir", str(tmp_path), "--overwrite", "-q"
        ).returncode
        == 0
    )
    assert run("simulate", "--tracks", "3", "--output-dir", str(tmp_path), "-q").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--profile", "cruise"),
        ("simulate", "--tracks", "0"),
        ("simulate", "--test-fraction", "1.5"),
        ("simulate", "--tracks", "many"),
        ("nonsense",),
    ],
)
def test_bad_arguments_are_usage_errors(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Usage" in result.stderr or "Error" in result.stderr


def test_validate_reports_good_and_bad_files(tmp_path: Path) -> None:
    run("simulate", "--tracks", "3", "--output-dir", str(tmp_path), "-q")
    ok = run("validate", "--labeled", str(tmp_path / "train.csv"), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["streams"] == 2  # 3 tracks, one held out for test.csv
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(tmp_path / "train.csv")
    frame.loc[4, "latitude"] = 123.0
    frame.to_csv(bad, index=False)
    result = run("validate", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "latitude" in result.stderr and "line 6" in result.stderr
    # --json: stdout is JSON whatever happens (for scripts), the good file's report first.
    both = run("validate", str(tmp_path / "train.csv"), str(bad), "--json")
    assert both.returncode == 1
    good, failed = json.loads(both.stdout)
    assert good["ok"] is True and good["source"] == str(tmp_path / "train.csv")
    assert failed == {
        "source": str(bad),
        "ok": False,
        "error": (
            f"{bad}: column 'latitude': is outside [-90, 90] (1 row; first at line 6, value 123.0)"
        ),
        "column": "latitude",
        "line": 6,
        "count": 1,
    }


def test_an_error_is_one_line_however_narrow_the_output(tmp_path: Path) -> None:
    # Rich assumed 80 columns off a terminal and broke messages mid-line (grep found half).
    deep = tmp_path / ("a-long-folder-name-" * 6) / "tracks.csv"
    result = run("validate", str(deep), env={"COLUMNS": "40"})
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {deep}: file not found"]


def test_help_off_a_terminal_shows_whole_option_names_and_no_placeholders_for_flags() -> None:
    result = run("train", "--help")
    assert "--train_data " in result.stdout and "…" not in result.stdout
    quiet = next(line for line in result.stdout.splitlines() if "--quiet" in line)
    assert "<bool>" not in quiet and "No progress bar." in quiet


@pytest.mark.parametrize("spelling", ["--train_data", "--train-data"])
def test_both_spellings_of_an_option_and_the_brief_s_mode_form(
    tmp_path: Path, spelling: str
) -> None:
    missing = str(tmp_path / "none.csv")
    for args in (
        ("train", spelling, missing),
        ("--mode", "train", spelling, missing, "--epochs", "100", "--sequence_length", "10"),
        ("--mode=train", spelling, missing),
    ):
        result = run(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.strip() == f"error: {missing}: file not found"
    unknown = run("--mode", "fly")
    assert unknown.returncode == 2 and "No such option: --mode" in unknown.stderr


def test_version_and_log_level() -> None:
    assert run("--version").stdout.startswith("missile-classifier ")
    result = run("--log-level", "LOUD", "simulate", "--help")
    assert result.returncode == 2 and "log level" in result.stderr
