"""The training range of every model input, and which rows fall far outside it.

A model answers anything it is given, including rows unlike any it was trained on (another
region, a faster missile, a sensor sampling every 30 s); its answer there is an extrapolation.
The bundle records the range each feature, and the time between a stream's rows, took over
the training rows; scoring flags a row whose value lies more than :data:`MARGIN` times the
range's width beyond either end. The service counts such rows per feature and logs them;
``predict`` reports them. A flag is a warning, not a refusal: the answer is still given. NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

#: Name of the time since the stream's previous row, checked beside the features.
DT: Final = "dt"
#: How far beyond the training range a value may lie before it is flagged, as a share of the
#: range's width. A whole width: noise-driven inputs reach past their training extremes on
#: ordinary data (an intensity rate 0.35 widths beyond, on the held-out tracks of an 8-track
#: model), while another region, an altitude of another kind of flight or a sensor several
#: times slower lie widths away.
MARGIN: Final = 1.0


@dataclass(frozen=True)
class InputRanges:
    """Lowest and highest training value of each checked input."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.low.shape != (n,) or self.high.shape != (n,):
            raise ValueError("input ranges: low and high must have one value per name")
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError("input ranges must be finite")
        if np.any(self.low > self.high):
            raise ValueError("input ranges: low above high")

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray) -> InputRanges:
        """The ranges of ``values`` ``(n, len(names))``, ignoring NaN (no previous row)."""
        return cls(tuple(names), np.nanmin(values, axis=0), np.nanmax(values, axis=0))

    def outside(self, values: np.ndarray, names: slice = slice(None)) -> np.ndarray:
        """``(n, k)`` bool: which values lie beyond the range by more than the margin (NaN never
        does); the columns of ``values`` are the inputs ``names`` picks (all by default)."""
        low, high = self.low[names], self.high[names]
        width = (high - low) * MARGIN
        flagged: np.ndarray = (values < low - width) | (values > high + width)  # NaN: False
        return flagged

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form: ``{name: [low, high]}``."""
        return {
            name: [float(lo), float(hi)]
            for name, lo, hi in zip(self.names, self.low, self.high, strict=True)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputRanges:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: Not ranges (not a mapping of names to ``[low, high]`` numbers).
        """
        if not isinstance(data, dict):
            raise ValueError("input ranges must map names to [low, high]")
        try:
            pairs = np.array([[float(v) for v in pair] for pair in data.values()], dtype=float)
        except (TypeError, ValueError):
            raise ValueError("input ranges must map names to [low, high]") from None
        if pairs.shape != (len(data), 2):
            raise ValueError("input ranges must map names to [low, high]")
        return cls(tuple(data), pairs[:, 0].copy(), pairs[:, 1].copy())
