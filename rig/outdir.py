"""A run's output folder: its own, locked for the run, never mixed with an earlier run's files.

By default each `rig run` writes into a new folder `reports/<UTC time>-<name>/` and points
`reports/latest` at it. A folder given with `--out` is locked (a second run on it is refused with a
clear error) and, if an earlier run wrote there (our manifest marks the folder as a rig output),
that run's files are removed first, so that nothing from an earlier run is left beside the new
record; a non-empty folder that is not a rig output is refused. A folder that is
a file, read-only, or otherwise unusable is a one-line error before anything runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
from pathlib import Path
from typing import IO

LOCK = ".rig-lock"
MANIFEST = ".rig-run.json"


class OutputError(Exception):
    """The output folder cannot be used (the message names it and why)."""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def new_run_folder(base: Path, name: str, now: dt.datetime | None = None) -> Path:
    """reports/<UTC time>-<name>/ (a suffix keeps two runs in the same second apart)."""
    now = now or dt.datetime.now(dt.UTC)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "run"
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        folder = base / (f"{stamp}-{safe}" if n == 0 else f"{stamp}-{safe}-{n}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {_why(exc)}") from None
    raise OutputError(f"cannot find a free run folder name under {base}")


def point_latest(base: Path, folder: Path) -> None:
    """reports/latest -> the newest run folder (a relative symlink, replaced atomically)."""
    link = base / "latest"
    tmp = base / f".latest-{os.getpid()}"
    with contextlib.suppress(OSError):
        tmp.unlink()
    try:
        os.symlink(folder.name, tmp)
        os.replace(tmp, link)
    except OSError:
        # An old real folder named "latest" (from an earlier rig) cannot be replaced by a link;
        # leave it and say nothing: the run's own folder is printed at the end.
        with contextlib.suppress(OSError):
            tmp.unlink()


class OutputFolder:
    """An output folder held for one run: created, checked writable, locked, cleared of the files
    an earlier run listed in its manifest. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None

    def __enter__(self) -> OutputFolder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise OutputError(f"output folder {path} is a file, not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {path}: {_why(exc)}") from None
        try:
            self._lock = open(path / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run
        except OSError as exc:
            raise OutputError(f"output folder {path} is not writable: {_why(exc)}") from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            self._lock = None
            raise OutputError(
                f"output folder {path} is in use by another run ({holder}); "
                "wait for it or choose another --out"
            ) from None
        try:
            self._lock.seek(0)
            self._lock.truncate()
            self._lock.write(f"pid {os.getpid()}\n")
            self._lock.flush()
        except OSError as exc:
            self.close()
            raise OutputError(f"output folder {path} is not writable: {_why(exc)}") from None
        self._clear_earlier_run()

    def _clear_earlier_run(self) -> None:
        """A folder an earlier rig run owned (it has our manifest) is emptied of that run's plain
        files; a non-empty folder without one is not ours to clear and is refused."""
        manifest = self.path / MANIFEST
        others = [p for p in self.path.iterdir() if p.name not in (LOCK, MANIFEST)]
        if others and not manifest.is_file():
            names = sorted(p.name for p in others)
            raise OutputError(
                f"output folder {self.path} holds files that no rig run wrote "
                f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}); "
                "choose an empty or new folder"
            )
        for target in others:
            if target.is_file() and not target.is_symlink():
                try:
                    target.unlink()
                except OSError as exc:
                    raise OutputError(
                        f"cannot remove {target} of an earlier run: {_why(exc)}"
                    ) from None
        try:
            atomic_write(manifest, json.dumps({"rig_output": True}) + "\n")
        except OSError as exc:
            raise OutputError(f"output folder {self.path} is not writable: {_why(exc)}") from None

    def close(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def atomic_write(path: Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file renamed over the target (a full disk leaves
    the previous content, never half a record)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
