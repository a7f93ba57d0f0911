"""Reentry-phase classification of missile tracks.

The seed's classes are offered lazily (PEP 562 module ``__getattr__``) so that importing the
package, as the service does, never imports torch or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use: the service never loads torch).
_LAZY: dict[str, str] = {
    "DataPreprocessor": ".training.data",
    "LSTMClassifier": ".training.models.lstm",
    "BaselineClassifier": ".training.models.baselines",
    "ModelInferenceService": ".scoring.inference",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
