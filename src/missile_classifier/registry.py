"""The models folder: the bundle versions in it, which one ``latest`` names, and retention.

``missile-classifier models list|use|prune``. Every training run and export adds a version
folder (``models/20261201-214027``) and moves ``latest`` to it; nothing removes old ones.
Switching ``latest`` is atomic (:func:`~missile_classifier.scoring.bundle.point_latest`), and a
running service follows it within ``MODEL_CHECK_INTERVAL`` seconds, every worker verifying the
new bundle before it switches.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from missile_classifier.scoring import bundle


@dataclass(frozen=True)
class Version:
    """One bundle folder of a models folder."""

    name: str
    path: Path
    created: str | None
    #: The LSTM's F1 on the rows it was evaluated on when trained (None if not recorded).
    f1: float | None
    evaluated_on: str | None
    size_bytes: int
    latest: bool


def _metadata(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / bundle.METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _f1(metadata: dict[str, object]) -> float | None:
    metrics = metadata.get("metrics")
    if isinstance(metrics, dict):
        main = metrics.get(str(metadata.get("model", "LSTM")))
        if isinstance(main, dict) and isinstance(main.get("f1"), int | float):
            return float(main["f1"])
    return None


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def versions(models: Path) -> list[Version]:
    """Every bundle folder in ``models``, oldest first (names are creation times)."""
    if not models.is_dir():
        raise FileNotFoundError(f"{models}: no such folder")
    link = models / bundle.LATEST
    current = link.resolve() if link.exists() else None
    found = []
    for folder in sorted(p for p in models.iterdir() if p.is_dir() and not p.is_symlink()):
        metadata = _metadata(folder)
        if metadata is None:
            continue  # not a bundle (a staging folder, someone's notes)
        created = metadata.get("created")
        evaluated = metadata.get("evaluated_on")
        found.append(
            Version(
                name=folder.name,
                path=folder,
                created=str(created) if created is not None else None,
                f1=_f1(metadata),
                evaluated_on=str(evaluated) if evaluated is not None else None,
                size_bytes=_size(folder),
                latest=current is not None and folder.resolve() == current,
            )
        )
    return found


def check(path: Path) -> bundle.Bundle:
    """The bundle at ``path`` (a version, or a folder with ``latest``) if this version can serve
    it: checksums, a feature list equal to the code's, and a model ONNX Runtime loads with
    inputs of the preprocessing's shape.

    Raises:
        BundleError: It cannot be served, and why.
    """
    from missile_classifier.scoring.inference import ModelInferenceService

    return ModelInferenceService(path, threads=1).bundle


def use(models: Path, name: str) -> bundle.Bundle:
    """Point ``latest`` at version ``name`` after verifying this version can serve it
    (:func:`check`).

    Raises:
        BundleError: No such version, or it fails verification (``latest`` is left alone).
    """
    folder = models / name
    if name in ("", ".", "..", bundle.LATEST) or "/" in name or not folder.is_dir():
        known = ", ".join(v.name for v in versions(models)) or "none"
        raise bundle.BundleError(f"{models}: no version {name!r} (versions: {known})")
    loaded = check(folder)
    bundle.point_latest(folder)
    return loaded


def prune(models: Path, keep: int, *, dry_run: bool = False) -> list[Version]:
    """Remove all but the ``keep`` newest versions; the one ``latest`` names always stays.

    Returns:
        The versions removed (or that would be, with ``dry_run``).
    """
    if keep < 1:
        raise ValueError("keep at least one version")
    every = versions(models)
    newest = {v.name for v in every[-keep:]}
    doomed = [v for v in every if v.name not in newest and not v.latest]
    if not dry_run:
        for version in doomed:
            shutil.rmtree(version.path)
    return doomed
