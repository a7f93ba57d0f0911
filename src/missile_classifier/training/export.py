"""Re-export a bundle's ONNX model from its torch checkpoint (``missile-classifier export``).

Useful after upgrading torch or onnx, or to rebuild a bundle whose ``model.onnx`` was lost:
the copy gets a freshly exported, verified model and new checksums; the source is untouched.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from missile_classifier.scoring import bundle as bundles

#: Random standardised windows used to check ONNX Runtime against torch.
CHECK_ROWS = 2_048


def reexport(model: str | Path, output: str | Path | None = None) -> tuple[float, Path]:
    """Write a copy of a bundle with ``model.onnx`` exported again from ``checkpoint.pt``.

    Args:
        model: Source bundle (or a folder with ``latest``). Its checksums are verified first,
            except for ``model.onnx`` itself, which may be missing or stale.
        output: Target folder (default: a new version beside the source, made ``latest``).

    Returns:
        The largest |ONNX − torch| probability difference on the check windows, and the path.
    """
    from missile_classifier.training.models.lstm import LSTMClassifier, export_onnx

    source = bundles.resolve(model)
    metadata_path = source / bundles.METADATA_FILE
    if not (source / bundles.CHECKPOINT_FILE).is_file():
        raise bundles.BundleError(f"{source}: no {bundles.CHECKPOINT_FILE} to export from")
    if not metadata_path.is_file():
        raise bundles.BundleError(f"{source}: no {bundles.METADATA_FILE}")
    metadata = json.loads(metadata_path.read_text())
    for name, digest in metadata.get("files", {}).items():
        if name != bundles.MODEL_FILE and bundles.sha256(source / name) != digest:
            raise bundles.BundleError(f"{source / name}: checksum mismatch; refusing to export")
    latest = output is None
    target = Path(output) if output is not None else source.parent / bundles.new_version()
    if target.exists():
        raise bundles.BundleError(f"{target} already exists; choose another --output")
    classifier = LSTMClassifier.load(source / bundles.CHECKPOINT_FILE)
    rng = np.random.default_rng(0)
    windows = rng.standard_normal(
        (CHECK_ROWS, classifier.sequence_length, classifier.n_features)
    ).astype(np.float32)
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns(bundles.MODEL_FILE, bundles.METADATA_FILE)
    )
    difference = export_onnx(classifier, target / bundles.MODEL_FILE, windows)
    metadata.pop("files", None)
    metadata["exported"] = {
        "from": source.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "onnx_max_abs_difference": difference,
    }
    bundles.write_metadata(target, metadata)
    if latest:
        bundles.point_latest(target)
    return difference, target
