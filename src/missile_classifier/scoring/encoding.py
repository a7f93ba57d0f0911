"""Bin encodings: extra inputs that step exactly where the label changes.

A standardised feature resolves its own range evenly. Ballistic altitude spans about 0–1,400 km,
so one standardised unit is ~340 km and the 100 km reentry interface is a difference of 0.003
units per km: a tree splits there exactly, a small network needs very large weights to. So some
features also enter the model binned, with bin edges from a decision tree fitted to the
training labels (target-aware bins, as in Gorishniy, Rubachev & Babenko, "On Embeddings for
Numerical Features in Tabular Deep Learning", NeurIPS 2022): an edge lands on the interface.

Two ways to turn a value into inputs, one per edge or bin:

- ``thermometer`` (default): 1 if the value is at or above an inner edge, else 0 (Buckman et
  al., "Thermometer Encoding", ICLR 2018). The input jumps at the edge, so the network sees the
  label's boundary as a step.
- ``piecewise-linear`` (Gorishniy et al.): each bin's input rises from 0 to 1 across the bin.
  Continuous, so at an edge it only bends; on ballistic data the network then still placed
  the onset seconds off (docs/training.md). Kept for bundles of format 2 and for comparison.

Applying an encoding needs NumPy only (the service runs it); fitting one uses scikit-learn and
lives with training (:mod:`missile_classifier.training.binning`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

THERMOMETER: Final = "thermometer"
PIECEWISE_LINEAR: Final = "piecewise-linear"
ENCODING_KINDS: Final = (THERMOMETER, PIECEWISE_LINEAR)


@dataclass(frozen=True)
class BinEncoding:
    """Bin edges per encoded feature; ``columns`` index the feature rows it reads.

    ``edges`` include the training range's ends; a thermometer uses only the inner ones.
    """

    columns: tuple[int, ...]
    edges: tuple[np.ndarray, ...]
    kind: str = THERMOMETER

    def __post_init__(self) -> None:
        if self.kind not in ENCODING_KINDS:
            raise ValueError(f"unknown encoding kind {self.kind!r}; known: {list(ENCODING_KINDS)}")

    @property
    def width(self) -> int:
        """Inputs it adds: one per inner edge (thermometer) or per bin (piecewise-linear)."""
        per_feature = 2 if self.kind == THERMOMETER else 1
        return sum(len(e) - per_feature for e in self.edges)

    def transform(self, features: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(n, width)`` float32 inputs of each row's encoded values (see the module doc),
        written into ``out`` if given (a float32 ``(n, width)`` array or view)."""
        if out is None:
            out = np.empty((len(features), self.width), dtype=np.float32)
        at = 0
        for column, edges in zip(self.columns, self.edges, strict=True):
            values = features[:, [column]]
            if self.kind == THERMOMETER:
                part = out[:, at : at + len(edges) - 2]
                np.greater_equal(values, edges[1:-1], out=part)  # True → 1.0, as astype
            else:
                part = out[:, at : at + len(edges) - 1]
                # Computed in float64 and rounded once into float32, as astype would.
                part[:] = np.clip((values - edges[:-1]) / np.diff(edges), 0.0, 1.0)
            at += part.shape[1]
        return out

    def names(self, feature_names: Sequence[str]) -> list[str]:
        """Names of the encoded features, in input order."""
        return [feature_names[c] for c in self.columns]

    def to_dict(self, feature_names: Sequence[str]) -> dict[str, list[float]]:
        """JSON-ready: edges by feature name."""
        return {n: e.tolist() for n, e in zip(self.names(feature_names), self.edges, strict=True)}

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Sequence[float]],
        feature_names: Sequence[str],
        kind: str = THERMOMETER,
    ) -> BinEncoding:
        """Inverse of :meth:`to_dict` (which does not hold the kind).

        Raises:
            ValueError: An unknown feature or kind, or edges that are not at least two
                finite, increasing values.
        """
        columns, edges = [], []
        for name, values in data.items():
            if name not in feature_names:
                raise ValueError(f"encoding of unknown feature {name!r}")
            array = np.asarray(values, dtype=np.float64)
            # NaN compares False with everything: without the finite check it passes `<= 0`.
            if (
                array.ndim != 1
                or len(array) < 2
                or not np.all(np.isfinite(array))
                or np.any(np.diff(array) <= 0)
            ):
                raise ValueError(
                    f"encoding of {name!r}: edges must be ≥ 2 finite, increasing values"
                )
            columns.append(list(feature_names).index(name))
            edges.append(array)
        return cls(tuple(columns), tuple(edges), kind)
