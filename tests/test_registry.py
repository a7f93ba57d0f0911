"""The models folder: list versions, switch latest (verified first), prune old versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from missile_classifier import registry
from missile_classifier.scoring import bundle
from test_bundle import write_onnx_bundle
from test_cli import run


def _version(models: Path, name: str, f1: float | None = None) -> Path:
    folder = write_onnx_bundle(models / name)
    if f1 is not None:  # as training records it: metrics by model, "model" names the main one
        meta = json.loads((folder / bundle.METADATA_FILE).read_text())
        meta.update(model="LSTM", metrics={"LSTM": {"f1": f1}, "dummy": {"f1": 0.2}})
        meta.update(created=f"created {name}", evaluated_on="/data/test.csv")
        (folder / bundle.METADATA_FILE).write_text(json.dumps(meta))
    return folder


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for i, name in enumerate(("20260101-000000", "20260102-000000", "20260103-000000")):
        _version(root, name, f1=0.9 + i / 100)
    bundle.point_latest(root / "20260102-000000")
    (root / "notes").mkdir()  # not a bundle: ignored
    return root


def test_versions_are_listed_oldest_first_with_what_training_recorded(models: Path) -> None:
    found = registry.versions(models)
    assert [v.name for v in found] == ["20260101-000000", "20260102-000000", "20260103-000000"]
    assert [v.latest for v in found] == [False, True, False]
    assert [v.f1 for v in found] == [0.9, 0.91, 0.92]
    assert found[0].created == "created 20260101-000000"
    assert found[0].evaluated_on == "/data/test.csv"
    expected = sum(p.stat().st_size for p in found[0].path.rglob("*") if p.is_file())
    assert found[0].size_bytes == expected > 0


def test_use_verifies_then_moves_latest(models: Path) -> None:
    loaded = registry.use(models, "20260103-000000")
    assert loaded.version == "20260103-000000"
    assert (models / "latest").resolve() == (models / "20260103-000000").resolve()
    broken = models / "20260101-000000" / bundle.MODEL_FILE
    broken.write_bytes(broken.read_bytes() + b"\0")
    with pytest.raises(bundle.BundleError, match="checksum mismatch"):
        registry.use(models, "20260101-000000")
    assert (models / "latest").resolve() == (models / "20260103-000000").resolve()  # untouched
    for name in ("nope", "latest", "..", "notes"):
        with pytest.raises(bundle.BundleError, match=r"no version|no model bundle here"):
            registry.use(models, name)


def test_prune_keeps_the_newest_and_always_latest(models: Path) -> None:
    would = registry.prune(models, keep=1, dry_run=True)
    assert [v.name for v in would] == ["20260101-000000"]  # 20260102 is latest, 20260103 newest
    assert (models / "20260101-000000").is_dir()
    gone = registry.prune(models, keep=1)
    assert [v.name for v in gone] == ["20260101-000000"]
    assert sorted(p.name for p in models.iterdir()) == [
        "20260102-000000",
        "20260103-000000",
        "latest",
        "notes",
    ]
    assert registry.prune(models, keep=2) == []
    with pytest.raises(ValueError, match="keep at least one"):
        registry.prune(models, keep=0)


def test_the_models_commands(models: Path) -> None:
    listed = run("models", "list", "--models", str(models), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["latest"]) for r in rows][1] == ("20260102-000000", True)
    table = run("models", "list", "--models", str(models))
    assert "← latest" in table.stdout and "0.9100" in table.stdout
    switched = run("models", "use", "20260103-000000", "--models", str(models))
    assert switched.returncode == 0 and "latest -> 20260103-000000 (verified)" in switched.stdout
    missing = run("models", "use", "20990101-000000", "--models", str(models))
    assert missing.returncode == 1 and "no version '20990101-000000'" in missing.stderr
    pruned = run("models", "prune", "--keep", "1", "--models", str(models))
    assert pruned.returncode == 0 and "removed" in pruned.stdout
    assert [r.name for r in registry.versions(models)] == ["20260103-000000"]
    nowhere = run("models", "list", "--models", str(models / "nowhere"))
    assert nowhere.returncode == 1 and "no such folder" in nowhere.stderr


def _with_old_features(folder: Path) -> None:
    """Rewrite a version's preprocessing as a bundle of an older feature list (with ``dt``)
    would have it, checksums recomputed: intact, but not for this version's features."""
    path = folder / bundle.PREPROCESSING_FILE
    data = json.loads(path.read_text())
    data["feature_names"] = [*data["feature_names"][:-1], "dt"]
    path.write_text(json.dumps(data))
    meta = json.loads((folder / bundle.METADATA_FILE).read_text())
    for name in ("files", "format", "version"):
        meta.pop(name)
    bundle.write_metadata(folder, meta)


def test_check_and_use_refuse_a_bundle_of_other_features(models: Path) -> None:
    old = models / "20260101-000000"
    assert registry.check(old).version == "20260101-000000"
    _with_old_features(old)
    bundle.load(old)  # intact: only this version cannot serve it
    with pytest.raises(bundle.BundleError, match="retrain the model"):
        registry.check(old)
    with pytest.raises(bundle.BundleError, match="retrain the model"):
        registry.use(models, old.name)
    assert (models / "latest").resolve() == (models / "20260102-000000").resolve()
    ok = run("models", "check", "--models", str(models))
    assert ok.returncode == 0 and "20260102-000000): can be served" in ok.stdout
    refused = run("models", "check", "--models", str(old))
    assert refused.returncode == 1 and "retrain the model" in refused.stderr
