"""Fitting a bin encoding: bin edges where the training labels change.

The encoding itself (what the edges mean and how a row is encoded) is
:class:`~missile_classifier.scoring.encoding.BinEncoding`, which scoring applies with NumPy
alone; finding the edges needs the training labels and scikit-learn, so it lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.training.config import TrainConfig


def check_encodable(encoded: Sequence[str], feature_names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming every feature in ``encoded`` that is not a known feature."""
    unknown = sorted(set(encoded) - set(feature_names))
    if unknown:
        raise ValueError(f"cannot encode unknown features {unknown}; known: {list(feature_names)}")


def fit_bin_encoding(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str],
    encoded: Sequence[str] = TrainConfig.encoded_features,
    max_bins: int = TrainConfig.encoding_bins,
    kind: str = TrainConfig.encoding_kind,
    random_state: int = 0,
) -> BinEncoding:
    """Target-aware bins: the split points of a small decision tree per feature.

    Args:
        features: ``(n, F)`` unscaled training rows (training tracks only).
        labels: 0/1 label per row.
        feature_names: Name of each of the ``F`` columns.
        encoded: Names of the features to encode (unknown names raise ``ValueError``).
        max_bins: Leaves per tree, so at most this many bins per feature.
        kind: ``"thermometer"`` or ``"piecewise-linear"`` (see :class:`BinEncoding`).
        random_state: Seed of the trees (ties between equally good splits).

    Returns:
        The encoding; a feature whose tree finds no split (e.g. constant) gets no bins.
    """
    from sklearn.tree import DecisionTreeClassifier

    check_encodable(encoded, feature_names)
    BinEncoding((), (), kind)  # an unknown kind fails before any tree is fitted
    columns, edges = [], []
    # Leaves of at least 0.1 % of the rows: bins follow the data, not single noisy rows.
    min_leaf = max(1, len(labels) // 1000)
    for name in encoded:
        column = list(feature_names).index(name)
        x = features[:, [column]]
        tree = DecisionTreeClassifier(
            max_leaf_nodes=max(2, max_bins), min_samples_leaf=min_leaf, random_state=random_state
        ).fit(x, labels)
        splits = tree.tree_.threshold[tree.tree_.children_left >= 0]
        if len(splits) == 0:
            continue
        lo, hi = float(x.min()), float(x.max())
        columns.append(column)
        edges.append(np.unique(np.concatenate([[lo], np.sort(splits), [hi]])))
    return BinEncoding(tuple(columns), tuple(edges), kind)
