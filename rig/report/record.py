"""record.json: what ran, on what, with which verdicts — for auditors and CI.

Schema (version SCHEMA_VERSION):

    schema_version, rig {version, commit, dirty}, host, started_utc, ended_utc, seed, defects,
    bench {path, sha256, name}, plans [{path, sha256}], dut {side, name, firmware, serial,
    emulated}, instruments [{role, model, idn, address, emulated, calibration_due,
    calibration_expired}], complete, stopped_by?, not_run?, skipped?, summary {verdict, counts},
    runs [{plan, title, verdict, headline, simulated_s, wall_s, protocol, messages?, defects,
    checks [{name, verdict, measured, limit, unit, relation, detail, clause, params,
    uncertainty?}], decisive, error?, stopped_by?, trace?, figure?, outputs, message_sequence?,
    dut_events?}]

`complete` is false when a signal stopped the run: the runs listed are the plans that started,
each with its real outcome, and `not_run` names the ones that never started. Paths of outputs are
names in the record's own folder (the folder can be moved whole).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rig.checks import Verdict
from rig.identity import calibration_expired, merged_instruments
from rig.outdir import atomic_write
from rig.report.outcome import Outcome, count

if TYPE_CHECKING:
    from rig.identity import RunIdentity
    from rig.report.summary import PlanSummary

SCHEMA_VERSION = 2


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
    """A run as the runner states it (rig.runner.RunResult.as_plan_run)."""

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


def run_outcome(summaries: Sequence[PlanSummary], *, stopped_by: str | None) -> Outcome:
    """The whole run in one word: interrupted if a signal stopped it, else its worst plan."""
    if stopped_by:
        return Outcome.INTERRUPTED
    if not summaries:
        return Outcome.NOT_JUDGED
    return max((s.outcome for s in summaries), key=lambda o: o.severity)


def instruments_record(
    summaries: Sequence[PlanSummary], on: dt.date | None = None
) -> list[dict[str, Any]]:
    """Every instrument that took part, once, with its calibration judged against the run's day."""
    out = []
    for inst in merged_instruments(s.instruments for s in summaries):
        if on is not None and inst.get("calibration_due"):
            inst["calibration_expired"] = calibration_expired(str(inst["calibration_due"]), on)
        out.append(inst)
    return out


def dut_record(summaries: Sequence[PlanSummary]) -> dict[str, Any] | None:
    """The DUT as the station opened it (the first plan that reached the bench says)."""
    return next((dict(s.dut) for s in summaries if s.dut), None)


def build_record(
    identity: RunIdentity,
    summaries: Sequence[PlanSummary],
    *,
    stopped_by: str | None = None,
    not_run: Sequence[str] = (),
    skipped: Sequence[str] = (),
) -> dict[str, Any]:
    outcome = run_outcome(summaries, stopped_by=stopped_by)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        **identity.as_record(),
        "dut": dut_record(summaries),
        "instruments": instruments_record(summaries, identity.started.date()),
        "complete": stopped_by is None,
        "summary": {
            "verdict": outcome.value,
            "counts": {o.value: n for o, n in count(s.outcome for s in summaries).items()},
        },
        "runs": [s.as_record() for s in summaries],
    }
    if stopped_by:
        record["stopped_by"] = stopped_by
        record["not_run"] = list(not_run)
    if skipped:
        record["skipped"] = list(skipped)
    return record


def plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (strict JSON has neither), numbers become float or
    int, other objects their text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write record.json whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plain(record), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write(path, text + "\n")
