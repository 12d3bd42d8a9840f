"""Run identity: which rig (version, git commit), which bench and plan files (with their SHA-256),
which seed and defects, on which host, from when to when (UTC) — for record.json, junit.xml and
the report, so that an auditor can tell exactly what ran.

The DUT and the instruments are not here: they are what the station actually opened, read from
each plan's trace (the runner's "bench_open" event), not what the bench file promised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rig import __version__

#: The rig's own tree: a source checkout or an editable install (where the git commit is read).
RIG_ROOT = Path(__file__).resolve().parent.parent
#: A git that does not answer within this long is taken as absent (s).
GIT_TIMEOUT_S = 5.0


def utc_now() -> dt.datetime:
    """The wall-clock date of the run's start and end (run time itself comes from rig.clock)."""
    return dt.datetime.now(dt.UTC)


def iso_utc(moment: dt.datetime) -> str:
    """2026-12-05T14:13:40Z (seconds are enough for a record; the traces carry run time)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FileIdentity:
    """A file as it was when the run started: its path and the SHA-256 of its bytes (None when it
    could not be read)."""

    path: str
    sha256: str | None

    @classmethod
    def of(cls, path: str | Path, shown_as: str | None = None) -> FileIdentity:
        return cls(shown_as if shown_as is not None else str(path), sha256_file(path))

    def as_record(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class RigIdentity:
    version: str
    #: The checkout's HEAD, or None when the rig is not run from a git checkout.
    commit: str | None
    #: True when tracked files differ from the commit (the record then says so).
    dirty: bool | None

    def describe(self) -> str:
        if self.commit is None:
            return f"rig {self.version} (no git checkout)"
        return f"rig {self.version}, commit {self.commit[:12]}" + (
            " with local changes" if self.dirty else ""
        )

    def as_record(self) -> dict[str, Any]:
        return {"version": self.version, "commit": self.commit, "dirty": self.dirty}


@dataclass(frozen=True)
class RunIdentity:
    rig: RigIdentity
    bench: FileIdentity
    bench_name: str
    plans: tuple[FileIdentity, ...]
    seed: int
    defects: tuple[str, ...]
    host: str
    started: dt.datetime
    ended: dt.datetime | None = None

    def finished(self, moment: dt.datetime | None = None) -> RunIdentity:
        return replace(self, ended=moment or utc_now())

    def as_record(self) -> dict[str, Any]:
        return {
            "rig": self.rig.as_record(),
            "host": self.host,
            "started_utc": iso_utc(self.started),
            "ended_utc": None if self.ended is None else iso_utc(self.ended),
            "seed": self.seed,
            "defects": list(self.defects),
            "bench": {**self.bench.as_record(), "name": self.bench_name},
            "plans": [p.as_record() for p in self.plans],
        }


def sha256_file(path: str | Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def rig_identity(root: Path = RIG_ROOT) -> RigIdentity:
    """The rig's version and, from a git checkout, its commit and whether it has local changes."""
    if not (root / ".git").exists():  # an installed package: no commit to name
        return RigIdentity(__version__, None, None)
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return RigIdentity(__version__, None, None)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return RigIdentity(__version__, commit, None if status is None else bool(status))


def shown_path(path: str | Path, root: Path = RIG_ROOT) -> str:
    """A path as records show it: relative to the rig's tree when inside it (portable between
    checkouts), absolute otherwise."""
    absolute = Path(path).absolute()
    try:
        return str(absolute.relative_to(root))
    except ValueError:
        return str(absolute)


def run_identity(
    *,
    bench_path: str | Path,
    bench_name: str,
    plans: Iterable[str | Path],
    seed: int,
    defects: Iterable[str],
    started: dt.datetime | None = None,
    rig: RigIdentity | None = None,
) -> RunIdentity:
    return RunIdentity(
        rig=rig or rig_identity(),
        bench=FileIdentity.of(bench_path, shown_path(bench_path)),
        bench_name=bench_name,
        plans=tuple(FileIdentity.of(p, shown_path(p)) for p in plans),
        seed=seed,
        defects=tuple(defects),
        host=socket.gethostname(),
        started=started or utc_now(),
    )


def calibration_expired(due: str | None, on: dt.date) -> bool | None:
    """True when an instrument's calibration was due before the given day; None when the date is
    missing or not an ISO date (the report then shows it as given, unjudged)."""
    if not due:
        return None
    try:
        return dt.date.fromisoformat(str(due)[:10]) < on
    except ValueError:
        return None


def merged_instruments(runs: Iterable[Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The instruments that took part in any plan, each once (role, model, IDN, address)."""
    seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for instruments in runs:
        for inst in instruments:
            key = tuple(str(inst.get(k, "")) for k in ("role", "model", "idn", "address"))
            seen.setdefault((key[0], key[1], key[2], key[3]), dict(inst))
    return list(seen.values())
