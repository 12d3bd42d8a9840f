"""record.json: what ran, on which instruments, with which verdicts (for auditors and CI)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig import __version__
from rig.checks import Verdict
from rig.outdir import atomic_write


@dataclass(frozen=True)
class InstrumentRecord:
    role: str
    model: str
    idn: str
    emulated: bool
    address: str = ""
    calibration_due: str | None = None

    def as_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "model": self.model,
            "idn": self.idn,
            "emulated": self.emulated,
        }
        if self.address:
            out["address"] = self.address
        if self.calibration_due:
            out["calibration_due"] = self.calibration_due
        return out


@dataclass
class PlanRun:
    plan: str
    title: str
    verdict: str  # pass | fail | error | interrupted
    simulated_s: float
    wall_s: float
    checks: Sequence[Verdict] = ()
    protocol: str = "none"
    error: str | None = None
    defects: Sequence[str] = ()
    trace: str | None = None
    figure: str | None = None
    instruments: Sequence[InstrumentRecord] = field(default_factory=list)
    messages: int = 0

    def as_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "plan": _relative(self.plan),
            "title": self.title,
            "verdict": self.verdict,
            "simulated_s": round(self.simulated_s, 6),
            "wall_s": round(self.wall_s, 3),
            "protocol": self.protocol,
            "defects": list(self.defects),
            "checks": [v.as_record() for v in self.checks],
        }
        if self.protocol != "none":
            out["messages"] = self.messages
        if self.error:
            out["error"] = self.error
        if self.trace:
            out["trace"] = _relative(self.trace)
        if self.figure:
            out["figure"] = _relative(self.figure)
        return out


def _relative(path: str) -> str:
    """Paths under the working directory are written relative to it (portable records)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def write_record(
    path: Path,
    *,
    seed: int,
    bench: str,
    runs: Sequence[PlanRun],
    stopped_by: str | None = None,
    skipped: Sequence[str] = (),
) -> dict[str, Any]:
    """Write record.json whole or not at all; instruments are listed once (de-duplicated over the
    runs). `complete` is false when a signal stopped the run (`stopped_by` names it): the plans
    listed are the ones that started, each with its real outcome."""
    seen: dict[tuple[str, str, str], InstrumentRecord] = {}
    for run in runs:
        for inst in run.instruments:
            seen.setdefault((inst.role, inst.model, inst.idn), inst)
    record: dict[str, Any] = {
        "seed": seed,
        "bench": bench,
        "rig_version": __version__,
        "complete": stopped_by is None,
        "runs": [r.as_record() for r in runs],
        "instruments": [i.as_record() for i in seen.values()],
    }
    if stopped_by:
        record["stopped_by"] = stopped_by
    if skipped:
        record["skipped"] = list(skipped)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=2) + "\n")
    return record
