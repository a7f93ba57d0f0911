"""The model bundle: a folder holding everything needed to score tracks, and nothing pickled.

::

    models/<version>/
        model.onnx            the network with its sigmoid (input "windows", output "probability")
        preprocessing.json    feature names, scaler mean/scale, bin edges of the encoded
                              features, sequence length, threshold
        metadata.json         version, creation time, data fingerprint, parameters, metrics,
                              and the sha256 of every other file
        checkpoint.pt         torch weights (training side only; re-export with `export`)
        report.md, plots/     the evaluation report
    models/latest -> <version>

Reading a bundle verifies every checksum first, so a tampered or half-copied bundle is refused
instead of serving wrong answers. This module needs only the standard library and NumPy.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from missile_classifier.scoring.encoding import PIECEWISE_LINEAR, BinEncoding
from missile_classifier.scoring.ranges import DT, InputRanges
from missile_classifier.scoring.windows import Scaler

MODEL_FILE: Final = "model.onnx"
PREPROCESSING_FILE: Final = "preprocessing.json"
METADATA_FILE: Final = "metadata.json"
CHECKPOINT_FILE: Final = "checkpoint.pt"
LATEST: Final = "latest"
#: What scoring reads; every other listed file (checkpoint, report) may be left out of a copy
#: made for serving, but is verified when present.
REQUIRED_FILES: Final = (MODEL_FILE, PREPROCESSING_FILE)
#: Bumped when the files' layout or meaning changes; readers refuse formats they do not know.
#: Format 2 added the piecewise-linear encoding, format 3 the encoding's kind
#: (``bin_encoding``); a format-1 bundle is read as having no encoding.
BUNDLE_FORMAT: Final = 3
READABLE_FORMATS: Final = (1, 2, 3)
#: Format 2's key: always piecewise-linear.
_FORMAT_2_ENCODING: Final = "piecewise_linear_encoding"


class BundleError(RuntimeError):
    """A bundle is missing, incomplete, tampered with or of another format.

    Args:
        message: What is wrong, in our words (shown to clients, paths shortened).
        detail: A library's own error text behind it, for logs only.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Preprocessing:
    """How rows become model inputs: must match training exactly."""

    feature_names: tuple[str, ...]
    #: The transform from feature rows to model input rows, and the window length.
    scaler: Scaler
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        scaler = self.scaler
        encoding = (
            {"kind": scaler.encoding.kind, "edges": scaler.encoding.to_dict(self.feature_names)}
            if scaler.encoding
            else None
        )
        return {
            "feature_names": list(self.feature_names),
            "mean": scaler.mean.tolist(),
            "scale": scaler.scale.tolist(),
            "sequence_length": scaler.sequence_length,
            "threshold": self.threshold,
            "bin_encoding": encoding,
            "input_ranges": scaler.ranges.to_dict() if scaler.ranges is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`, checking that the arrays fit the feature list."""
        names = tuple(data["feature_names"])
        mean = np.asarray(data["mean"], dtype=np.float64)
        scale = np.asarray(data["scale"], dtype=np.float64)
        if mean.shape != (len(names),) or scale.shape != (len(names),):
            raise BundleError("preprocessing.json: mean/scale do not match the feature names")
        # NaN compares False with everything, so a bare `scale <= 0` let a NaN scale through.
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise BundleError("preprocessing.json: mean must be finite, scale finite and positive")
        spec = data.get("bin_encoding") or {
            "kind": PIECEWISE_LINEAR,
            "edges": data.get(_FORMAT_2_ENCODING, {}),
        }
        try:
            encoding = BinEncoding.from_dict(spec["edges"], names, spec["kind"])
        except KeyError as exc:
            raise BundleError(f"preprocessing.json: bin_encoding has no {exc} entry") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise BundleError(f"preprocessing.json: {exc}") from None
        scaler = Scaler(
            mean,
            scale,
            int(data["sequence_length"]),
            encoding if encoding.columns else None,
            _input_ranges(data.get("input_ranges"), names),
        )
        return cls(names, scaler, float(data["threshold"]))


def _input_ranges(data: Any, feature_names: tuple[str, ...]) -> InputRanges | None:
    """The recorded training ranges (``None`` in bundles that have none)."""
    if data is None:
        return None
    try:
        ranges = InputRanges.from_dict(data)
    except ValueError as exc:
        raise BundleError(f"preprocessing.json: {exc}") from None
    unknown = set(ranges.names) - {*feature_names, DT}
    if unknown:
        raise BundleError(f"preprocessing.json: input ranges of unknown inputs {sorted(unknown)}")
    return ranges


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    version: str
    preprocessing: Preprocessing
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The ONNX model file."""
        return self.path / MODEL_FILE


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(paths: list[Path]) -> str:
    """Short identity of the training data: SHA-256 over the files' contents, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(sha256(path).encode())
    return digest.hexdigest()[:16]


def new_version(now: datetime | None = None) -> str:
    """Bundle name from the UTC time: sortable, readable, unique per second."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def write_metadata(
    directory: Path, metadata: dict[str, Any], version: str | None = None
) -> dict[str, Any]:
    """Write ``metadata.json`` with the checksum of every other file in the bundle.

    Args:
        directory: The bundle folder (possibly a staging folder renamed afterwards).
        metadata: Everything else to record.
        version: The bundle's name; defaults to the folder's name.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != METADATA_FILE)
    full = {
        **metadata,
        "format": BUNDLE_FORMAT,
        "version": version or directory.name,
        "files": {p.relative_to(directory).as_posix(): sha256(p) for p in files},
    }
    (directory / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    return full


def write_preprocessing(directory: Path, preprocessing: Preprocessing) -> None:
    """Write ``preprocessing.json``."""
    text = json.dumps(preprocessing.to_dict(), indent=2)
    (directory / PREPROCESSING_FILE).write_text(text + "\n")


def point_latest(directory: Path) -> Path:
    """Make ``<parent>/latest`` point at ``directory`` (atomic replace of the symlink)."""
    link = directory.parent / LATEST
    temporary = directory.parent / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(directory.name, target_is_directory=True)
    os.replace(temporary, link)
    return link


def resolve(path: str | Path) -> Path:
    """The bundle folder ``path`` names: a bundle, a models folder with ``latest``, or a file of a
    bundle (``…/model.onnx``; the original brief points ``MODEL_PATH`` at the model file)."""
    candidate = Path(path)
    if candidate.is_file():
        candidate = candidate.parent
    if not (candidate / METADATA_FILE).exists() and (candidate / LATEST).exists():
        candidate = candidate / LATEST
    return candidate.resolve()


def check_scaler_path(model_path: str | Path, scaler_path: str | Path) -> None:
    """Accept ``SCALER_PATH`` only as the ``preprocessing.json`` of the bundle ``model_path`` names.

    The scaler is part of the bundle, so the setting is redundant; it is accepted for the
    original brief's environment, but one that names another file would be silently ignored,
    hiding a mistake (e.g. a scaler from another training run).

    Raises:
        ValueError: Saying what ``SCALER_PATH`` should be instead.
    """
    expected = resolve(model_path) / PREPROCESSING_FILE
    given = Path(scaler_path)
    if not given.is_file():
        raise ValueError(
            f"SCALER_PATH={scaler_path} is not a file; the scaler is part of the model bundle, "
            f"so leave SCALER_PATH unset or set it to {expected}"
        )
    if given.resolve() != expected.resolve():
        raise ValueError(
            f"SCALER_PATH={scaler_path} is not the {PREPROCESSING_FILE} of the bundle "
            f"MODEL_PATH={model_path} names ({expected}); the scaler is part of the bundle, so "
            "leave SCALER_PATH unset or point it at that file"
        )


def _inside(directory: Path, name: str) -> bool:
    """Whether the path ``name`` names in ``directory`` stays there once resolved.

    ``directory`` must be resolved already. An absolute ``name`` replaces ``directory`` when
    joined, so it is outside unless it points into the bundle; symbolic links are followed, so
    a link in the bundle pointing elsewhere is outside too.
    """
    try:
        return (directory / name).resolve().is_relative_to(directory)
    except (OSError, RuntimeError, ValueError):  # a NUL byte in the name, a symlink loop
        return False


def load(path: str | Path) -> Bundle:
    """Read a bundle after verifying every checksum in its ``metadata.json``.

    Args:
        path: A bundle folder, a folder holding ``latest`` (e.g. ``models``) or a bundle's file.

    Raises:
        BundleError: If a file is missing, a checksum differs, the format is unknown,
            ``metadata.json`` is not a JSON object, or it lists a file outside the bundle.
    """
    if not Path(path).exists():
        raise BundleError(
            f"{path}: no such file or folder; give a bundle folder, a folder holding "
            f"`{LATEST}`, or a file of a bundle"
        )
    directory = resolve(path)
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise BundleError(f"{path}: no model bundle here (no {METADATA_FILE}); train one first")
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path}: not valid JSON", detail=str(exc)) from None
    if not isinstance(metadata, dict):
        raise BundleError(f"{meta_path}: not a JSON object ({type(metadata).__name__})")
    if metadata.get("format") not in READABLE_FORMATS:
        raise BundleError(
            f"{meta_path}: bundle format {metadata.get('format')!r}; this version reads "
            f"formats {', '.join(map(str, READABLE_FORMATS))}"
        )
    files = metadata.get("files", {})
    if not isinstance(files, dict):
        raise BundleError(f"{meta_path}: 'files' is not an object of file names and checksums")
    for required in REQUIRED_FILES:
        if required not in files:
            raise BundleError(f"{directory}: metadata lists no {required}")
    # Every listed name must stay inside the bundle, checked before any file is read: a
    # metadata.json naming ``../x`` or ``/etc/x`` would otherwise make loading read that file.
    for name in files:
        if not _inside(directory, name):
            raise BundleError(
                f"{meta_path}: lists {name!r}, a path outside the bundle folder {directory}"
            )
    for name, expected in files.items():
        file = directory / name
        if not file.is_file():
            if name not in REQUIRED_FILES:  # the checkpoint, the report: not read to score
                continue
            raise BundleError(f"{file}: listed in {METADATA_FILE} but missing")
        if sha256(file) != expected:
            raise BundleError(f"{file}: checksum mismatch; the bundle was modified after export")
    preprocessing = Preprocessing.from_dict(
        json.loads((directory / PREPROCESSING_FILE).read_text())
    )
    return Bundle(directory, str(metadata.get("version", directory.name)), preprocessing, metadata)
