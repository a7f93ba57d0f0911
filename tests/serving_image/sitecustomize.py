"""The serving image's missing libraries, for processes the tests start.

A test puts this folder on ``PYTHONPATH``; Python imports ``sitecustomize`` at start-up, so in
that process (and the gunicorn workers it forks or execs) every import of a library the serving
image does not install fails as it would there. Each attempt is also appended to the file named
by ``SERVING_IMAGE_IMPORT_LOG``, so a test sees an import that was caught and survived too.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Installed by the ``train`` extra only (pyproject.toml); never in the serving image.
ABSENT = frozenset({"torch", "pandas", "sklearn", "matplotlib", "pyarrow"})


class _Absent(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in ABSENT:
            return None
        log = os.environ.get("SERVING_IMAGE_IMPORT_LOG")
        if log:
            frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            caller = "".join(traceback.format_list(frames[-6:]))
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"pid {os.getpid()} imported {fullname}:\n{caller}\n")
        raise ModuleNotFoundError(f"No module named {fullname!r} (serving image)", name=fullname)


sys.meta_path.insert(0, _Absent())
