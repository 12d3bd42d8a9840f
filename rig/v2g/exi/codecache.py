"""Compiled units of the generated EXI modules, kept between processes.

rig.v2g.exi.lazy compiles a generated module's source units on first use: about 270 units and
0.15 s of `compile()` for one -20 session, paid again by every process (each `rig run`, each
`rig run -n N` worker, each test process). Like the interpreter's own .pyc files, the compiled
code objects are kept on disk (marshal, the .pyc format's serializer) and loaded by the next
process in a few milliseconds.

One file per generated module, named by the module, the interpreter's cache tag and a hash of
the module's source file, so a regenerated module or another Python never reads code compiled
from something else; a file of an older source is removed when the new one is written. The
folder is `$RIG_CACHE_DIR`, else `$XDG_CACHE_HOME/v2h-rig/exi`, else `~/.cache/v2h-rig/exi`
(RIG_CACHE_DIR set to an empty string turns the cache off). A file that is unreadable, larger
than MAX_BYTES or not what marshal wrote is ignored (the units are compiled as without a cache)
and replaced at exit. Units compiled in this process are added to the module's file when the
process ends (an exit handler; `rig` processes run theirs, rig.process.leave), merged with what
another process wrote meanwhile, through a temporary file and an atomic rename.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import CodeType

#: A cache file larger than this is not read (every generated module's code is under 8 MB).
MAX_BYTES = 64 * 1024 * 1024
_LOCK = threading.Lock()
_EXIT_HANDLER = False


def folder() -> Path | None:
    """Where the cache files live; None when the cache is off."""
    env = os.environ.get("RIG_CACHE_DIR")
    if env is not None:
        return Path(env) if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "v2h-rig" / "exi"


class ModuleCache:
    """The compiled units of one generated module: those on disk and those compiled here."""

    def __init__(self, module_file: str, short: str) -> None:
        self.short = short
        self.codes: dict[str, CodeType] = {}
        self.new: dict[str, CodeType] = {}
        self.path: Path | None = None
        where = folder()
        if where is None:
            return
        try:
            digest = hashlib.blake2b(Path(module_file).read_bytes(), digest_size=12)
        except OSError:
            return
        digest.update(importlib.util.MAGIC_NUMBER)
        self.path = where / f"{short}.{sys.implementation.cache_tag}.{digest.hexdigest()}.marshal"
        self.codes = _read(self.path)

    def get(self, unit: str) -> CodeType | None:
        return self.codes.get(unit)

    def add(self, unit: str, code: CodeType) -> None:
        """Keep `code`, compiled here, for the next process."""
        global _EXIT_HANDLER
        if self.path is None:
            return
        with _LOCK:
            self.codes[unit] = code
            self.new[unit] = code
            _PENDING[self.short] = self
            if not _EXIT_HANDLER:
                atexit.register(save_all)
                _EXIT_HANDLER = True

    def save(self) -> None:
        """Write this module's file: what is on disk now (another process may have added units)
        and what this process compiled."""
        path = self.path
        if path is None or not self.new:
            return
        merged = _read(path)
        merged.update(self.new)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.short}.", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    marshal.dump(merged, fh)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            for old in path.parent.glob(f"{self.short}.{sys.implementation.cache_tag}.*.marshal"):
                if old != path:
                    with contextlib.suppress(OSError):
                        old.unlink()
        except OSError:
            return  # a read-only or full disk: the next process compiles, as without a cache
        self.new.clear()


_PENDING: dict[str, ModuleCache] = {}


def save_all() -> None:
    """Write every module's newly compiled units (the exit handler; tests call it directly)."""
    with _LOCK:
        pending = list(_PENDING.values())
        _PENDING.clear()
    for cache in pending:
        cache.save()


def _read(path: Path) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_BYTES:
                return {}
            found = marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, CodeType)}
