"""Compiled workflow modules kept in memory for the sandbox's per-run re-import.

The workflow sandbox executes a workflow's module afresh for every new run (so no run sees
state another left behind). Python normally reads the compiled module from its .pyc file;
where bytecode is not written (PYTHONDONTWRITEBYTECODE, set here and in many container
images, or a read-only install) it compiles the source again each time: for the payout
workflow module that was about 12 ms of CPU per payout, a third of a bare SDK payout.

`install()` adds an import finder that hands our own modules a loader which keeps each
compiled code object in memory, keyed by file, modification time and size. The module is
still executed afresh per run; only the compilation, a pure function of the source file,
is reused, so what a run sees is exactly what a fresh compile would give it. Nothing is
written to disk.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

_CODE: dict[tuple[str, int, int], CodeType] = {}


class _CachingSourceLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:  # type: ignore[override]
        path = self.get_filename(fullname)
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        code = _CODE.get(key)
        if code is None:
            code = super().get_code(fullname)
            if code is None:  # pragma: no cover - a source file always compiles to code
                raise ImportError(f"no code for {fullname}", name=fullname)
            _CODE[key] = code
        return code


class CompiledCodeCache(importlib.abc.MetaPathFinder):
    """Finds modules under `prefixes` like the normal path finder, with a caching loader."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = tuple(prefixes)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self.prefixes):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        spec.loader = _CachingSourceLoader(spec.loader.name, spec.loader.path)
        return spec


def install(prefixes: Sequence[str] = ("workers", "estuary")) -> None:
    """Put the cache in front of the import system once per process (idempotent)."""
    if any(isinstance(f, CompiledCodeCache) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, CompiledCodeCache(prefixes))


def cached_modules() -> int:
    """How many compiled modules the cache holds (for tests and diagnostics)."""
    return len(_CODE)
