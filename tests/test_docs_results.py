"""The measured figures of README.md and docs/ agree with docs/results/*.json.

``scripts/docs_results.py --check`` (``make docs-check``) is run here on the repository, so
``make test`` fails on a stale figure; the other tests plant a mismatch in a copy of the docs or
of a results file and check that the checker notices, and that ``--write`` repairs it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import docs_results  # scripts/docs_results.py
import mutation_score  # scripts/mutation_score.py
import results as results_files  # benchmarks/results.py

ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_docs_figures_agree_with_the_results_files() -> None:
    problems = docs_results.run(ROOT, write=False)
    assert not problems, "\n".join(map(str, problems)) + "\n(run `make docs`)"


def test_docs_check_is_what_make_docs_check_runs() -> None:
    assert docs_results.main(["--check"]) == 0


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The README and docs/ (with the results files) in a folder of their own."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("img"))
    return tmp_path


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _problems(root: Path) -> str:
    return "\n".join(map(str, docs_results.run(root, write=False)))


def test_a_changed_number_in_a_generated_block_fails_and_write_restores_it(copy: Path) -> None:
    readme = copy / "README.md"
    original = readme.read_text(encoding="utf-8")
    # The row as recorded, whatever the last mutation run counted; one more mutant killed.
    row = re.search(r"^\| scoring\.inference \| [\d,]+ \| (\d+) \|", original, re.MULTILINE)
    assert row is not None
    edited = row[0].removesuffix(f"{row[1]} |") + f"{int(row[1]) + 1} |"
    _replace(readme, row[0], edited)
    problems = _problems(copy)
    assert "README.md: stale block '<!-- results:mutation-table -->'" in problems
    assert edited in problems
    assert docs_results.run(copy, write=True) == []
    assert readme.read_text(encoding="utf-8") == original


def test_a_changed_number_in_prose_fails_and_write_restores_it(copy: Path) -> None:
    readme = copy / "README.md"
    original = readme.read_text(encoding="utf-8")
    # The figure as recorded, whatever the last predict_speed run measured; 1,000 rows/s more.
    figure = re.search(r"\| ([\d,]+) rows/s CSV→CSV \(", original)
    assert figure is not None
    edited = f"| {int(figure[1].replace(',', '')) + 1000:,} rows/s CSV→CSV ("
    _replace(readme, figure[0], edited)
    assert f"README.md: stale figure: '{edited}" in _problems(copy)
    assert docs_results.run(copy, write=True) == []
    assert readme.read_text(encoding="utf-8") == original


def test_a_figure_whose_sentence_was_edited_away_fails(copy: Path) -> None:
    _replace(copy / "README.md", "rows/s in memory, measured", "rows/s in RAM, measured")
    problems = docs_results.run(copy, write=True)  # nothing to rewrite: it says so
    assert any("rows/s in memory" in str(p) and "not found" in str(p) for p in problems)


def _edit_results(root: Path, benchmark: str, edit: Any) -> None:
    path = root / "docs" / "results" / f"{benchmark}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data["runs"])
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def test_a_changed_results_file_fails_blocks_and_prose_until_written(copy: Path) -> None:
    def faster(runs: dict[str, Any]) -> None:
        results = runs["ballistic-300"]["results"]
        results["csv"].update(median=60_004, min=34_041, max=60_004)
        results["memory"]["median"] = 50_644

    def lstm(runs: dict[str, Any]) -> None:
        runs["challenge-100-42"]["results"]["models"]["LSTM"]["f1"] = 0.99871

    _edit_results(copy, "predict_speed", faster)
    _edit_results(copy, "train_targets", lstm)
    problems = _problems(copy)
    assert "results give '| 60,000 rows/s CSV→CSV (34,040–60,000)" in problems
    assert "results give '| `predict` CSV→CSV | 60,004 rows/s (34,041–60,004) |'" in problems
    assert "stale block '<!-- results:training-comparison:challenge-100-42 -->'" in problems
    assert "results give '| LSTM 0.9987 (altitude threshold" in problems
    assert docs_results.run(copy, write=True) == []
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "LSTM                  0.9987        0.00" in readme
    assert "| 60,000 rows/s CSV→CSV (34,040–60,000), 50,640 rows/s in memory" in readme


def test_a_value_within_the_printed_precision_is_not_a_change(copy: Path) -> None:
    def noise(runs: dict[str, Any]) -> None:
        runs["challenge-100-42"]["results"]["models"]["random forest"]["f1"] = 0.99934
        runs["challenge-100-42"]["results"]["seconds"] = 127.6

    _edit_results(copy, "train_targets", noise)
    assert docs_results.run(copy, write=False) == []


def test_a_missing_value_or_run_is_reported(copy: Path) -> None:
    def unrecorded(runs: dict[str, Any]) -> None:
        runs["challenge-100-7"]["results"]["seconds"] = None
        del runs["challenge-100-42"]

    _edit_results(copy, "train_targets", unrecorded)
    problems = _problems(copy)
    assert "challenge-100-7/results/seconds: the value is null" in problems
    assert "train_targets.json has no run 'challenge-100-42'" in problems


@pytest.mark.parametrize(
    ("value", "spec", "printed"),
    [
        (51_686, ",s4", "51,690"),
        (65_565, ",s4", "65,570"),  # halves up, as people round
        (1000 / 0.0241, ",s3", "41,500"),
        (5.0949, "s3", "5.09"),
        (24.1, "s3", "24.1"),
        (0.0, "s3", "0"),
        (0.94, "p0", "94"),
        (0.65694, ".3f", "0.657"),
        (3541, ",", "3,541"),
        ("sensor bias", "", "sensor bias"),
    ],
)
def test_formats(value: Any, spec: str, printed: str) -> None:
    assert docs_results.fmt(value, spec) == printed


def test_every_results_file_says_when_where_how_and_from_what() -> None:
    files = sorted((ROOT / "docs" / "results").glob("*.json"))
    assert len(files) >= 7
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["benchmark"] == path.stem
        for key, entry in data["runs"].items():
            where = f"{path.name} {key}"
            assert {"date", "machine", "command", "commit", "source", "results"} <= set(entry)
            assert len(entry["date"]) == 10 and entry["date"].startswith("20"), where
            assert {"nproc", "cpu"} <= set(entry["machine"]), where
            assert entry["command"].startswith(("python ", "make ")), where


def test_record_replaces_one_run_and_keeps_the_others(tmp_path: Path) -> None:
    argv = [str(ROOT / "benchmarks" / "predict_speed.py"), "--tracks", "3"]
    results_files.record("demo", "b", {"x": 1}, results_dir=tmp_path, argv=argv)
    results_files.record("demo", "a", {"x": 2}, results_dir=tmp_path, argv=argv)
    path = results_files.record("demo", "b", {"x": 3}, results_dir=tmp_path, argv=argv)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["benchmark"] == "demo"
    assert list(data["runs"]) == ["a", "b"]
    entry = data["runs"]["b"]
    assert entry["results"] == {"x": 3}
    assert entry["command"] == "python benchmarks/predict_speed.py --tracks 3"
    assert entry["source"] == "recorded by the benchmark"
    assert entry["machine"]["nproc"] >= 1


def test_mutation_score_records_the_table_the_readme_shows(
    tmp_path: Path, copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = {
        "missile_classifier.scoring.features": {
            "missile_classifier.scoring.features.xǁfǁg__mutmut_1": "killed",
            "missile_classifier.scoring.features.xǁfǁg__mutmut_2": "timeout",
            "missile_classifier.scoring.features.xǁfǁg__mutmut_3": "survived",
        },
    }
    monkeypatch.setattr(mutation_score, "results", lambda: statuses)
    monkeypatch.setattr(mutation_score, "equivalents", dict)
    monkeypatch.setattr(results_files, "RESULTS_DIR", copy / "docs" / "results")
    assert mutation_score.main(["--record"]) == 1  # below target, and modules without mutants
    recorded = json.loads((copy / "docs" / "results" / "mutation.json").read_text("utf-8"))
    run = recorded["runs"]["default"]
    assert run["results"]["mutants"] == 3
    assert run["results"]["modules"]["missile_classifier.scoring.features"]["survived"] == 1
    docs_results.run(copy, write=True)
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "| scoring.features | 3 | 2 | 0 | 1 | 66.7 % | 95 % |" in readme
    assert "| schema | 0 | 0 | 0 | 0 | 0.0 % | 90 % |" in readme
    assert "(3 mutants, both cores busy)" in readme
