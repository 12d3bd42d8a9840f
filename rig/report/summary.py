"""A plan's summary: everything the report, record.json, junit.xml and the terminal say about one
plan, made where the plan ran and sent as plain data to the process that writes them.

Under pytest-xdist a plan runs in a worker process and the controller writes one record, one
report and one junit for the whole run: the summary travels as a JSON-able mapping on the
pytest report (`PlanSummary.to_wire`, `from_wire`). A summary read back is checked field by field;
anything malformed becomes an error summary, never a pass.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rig.report.outcome import Outcome, decisive, plan_outcome
from rig.report.table import figure_words, fmt_duration, fmt_value, limit_text, records

if TYPE_CHECKING:
    from rig.runner import RunResult

#: The longest error text carried (a traceback is cut; the trace and the log keep the rest).
MAX_ERROR = 4000
#: The largest figure carried to the report (base64 characters).
MAX_FIGURE = 16 * 1024 * 1024
#: Files of a plan listed as its outputs at most.
MAX_OUTPUTS = 50


@dataclass(frozen=True)
class PlanSummary:
    nodeid: str
    plan: str  # as records show it (relative to the rig's tree when inside)
    name: str
    title: str
    classname: str  # junit class: the plan's folders, dotted
    outcome: Outcome
    requirement: str = ""
    run_verdict: str = ""
    error: str | None = None
    interrupted: str | None = None
    simulated_s: float | None = None
    wall_s: float | None = None
    protocol: str = "none"
    messages: int | None = None
    defects: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    decisive: int | None = None
    headline: str = ""
    dut: Mapping[str, Any] | None = None
    instruments: tuple[Mapping[str, Any], ...] = ()
    #: What each output file is ("trace", "figure", ...) -> its name in the run folder.
    outputs: Mapping[str, str] = field(default_factory=dict)
    figure_png: str | None = None  # base64
    sequence: Mapping[str, Any] | None = None
    events: tuple[Mapping[str, Any], ...] = ()
    events_dropped: int = 0
    #: A plan with a block (rig.procedure): one row per case (values, result, verdict, trace).
    cases: tuple[Mapping[str, Any], ...] = ()

    # -- views -------------------------------------------------------------------------------------
    @property
    def decisive_check(self) -> Mapping[str, Any] | None:
        if self.decisive is None or not 0 <= self.decisive < len(self.checks):
            return None
        return self.checks[self.decisive]

    def as_record(self) -> dict[str, Any]:
        """This plan's entry in record.json."""
        out: dict[str, Any] = {
            "plan": self.plan,
            "title": self.title,
            "verdict": self.outcome.value,
            "headline": self.headline,
            "simulated_s": None if self.simulated_s is None else round(self.simulated_s, 6),
            "wall_s": None if self.wall_s is None else round(self.wall_s, 3),
            "protocol": self.protocol,
            "defects": list(self.defects),
            "checks": [dict(c) for c in self.checks],
            "decisive": None if self.decisive_check is None else self.decisive_check.get("name"),
        }
        if self.messages is not None:
            out["messages"] = self.messages
        if self.requirement:
            out["requirement"] = self.requirement
        if self.error:
            out["error"] = self.error
        if self.interrupted:
            out["stopped_by"] = self.interrupted
        for kind in ("trace", "figure"):
            if kind in self.outputs:
                out[kind] = self.outputs[kind]
        if self.outputs:
            out["outputs"] = dict(self.outputs)
        if self.sequence and self.sequence.get("rows"):
            out["message_sequence"] = dict(self.sequence)
        if self.events:
            out["dut_events"] = [dict(e) for e in self.events]
        if self.cases:
            out["cases"] = [dict(c) for c in self.cases]
        return out

    def to_wire(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "plan": self.plan,
            "name": self.name,
            "title": self.title,
            "classname": self.classname,
            "outcome": self.outcome.value,
            "requirement": self.requirement,
            "run_verdict": self.run_verdict,
            "error": self.error,
            "interrupted": self.interrupted,
            "simulated_s": self.simulated_s,
            "wall_s": self.wall_s,
            "protocol": self.protocol,
            "messages": self.messages,
            "defects": list(self.defects),
            "checks": [dict(c) for c in self.checks],
            "decisive": self.decisive,
            "headline": self.headline,
            "dut": None if self.dut is None else dict(self.dut),
            "instruments": [dict(i) for i in self.instruments],
            "outputs": dict(self.outputs),
            "figure_png": self.figure_png,
            "sequence": None if self.sequence is None else dict(self.sequence),
            "events": [dict(e) for e in self.events],
            "events_dropped": self.events_dropped,
            "cases": [dict(c) for c in self.cases],
        }

    @classmethod
    def from_wire(cls, data: object) -> PlanSummary:
        """A summary sent by a worker; a malformed one becomes an error summary saying so."""
        if not isinstance(data, Mapping):
            return error_summary("?", "?", f"a worker sent no plan summary ({type(data).__name__})")
        try:
            return _from_wire(data)
        except (TypeError, ValueError, KeyError) as exc:
            nodeid = str(data.get("nodeid", "?"))[:500]
            return error_summary(nodeid, nodeid, f"a worker sent a malformed plan summary: {exc}")


def _text(value: object, limit: int = 500) -> str:
    return str(value)[:limit]


def _opt_text(value: object, limit: int) -> str | None:
    return None if value is None else _text(value, limit)


def _opt_float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _mappings(value: object, limit: int = 10_000) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value[:limit] if isinstance(v, Mapping))


def _from_wire(d: Mapping[str, Any]) -> PlanSummary:
    figure = d.get("figure_png")
    outputs = d.get("outputs")
    decisive_i = d.get("decisive")
    messages = d.get("messages")
    return PlanSummary(
        nodeid=_text(d["nodeid"]),
        plan=_text(d["plan"], 1000),
        name=_text(d["name"], 200),
        title=_text(d.get("title", ""), 300),
        classname=_text(d.get("classname", ""), 300),
        outcome=Outcome.of(d.get("outcome")),
        requirement=_text(d.get("requirement", ""), 2000),
        run_verdict=_text(d.get("run_verdict", ""), 40),
        error=_opt_text(d.get("error"), MAX_ERROR),
        interrupted=_opt_text(d.get("interrupted"), 40),
        simulated_s=_opt_float(d.get("simulated_s")),
        wall_s=_opt_float(d.get("wall_s")),
        protocol=_text(d.get("protocol", "none"), 60),
        messages=messages if isinstance(messages, int) and not isinstance(messages, bool) else None,
        defects=tuple(_text(x, 80) for x in d.get("defects", ())[:50]),
        checks=_mappings(d.get("checks")),
        decisive=decisive_i if isinstance(decisive_i, int) else None,
        headline=_text(d.get("headline", ""), 1000),
        dut=d["dut"] if isinstance(d.get("dut"), Mapping) else None,
        instruments=_mappings(d.get("instruments"), 100),
        outputs={
            _text(k, 40): _text(v, 300)
            for k, v in list(outputs.items())[:MAX_OUTPUTS]
            if isinstance(v, str)
        }
        if isinstance(outputs, Mapping)
        else {},
        figure_png=figure if isinstance(figure, str) and len(figure) <= MAX_FIGURE else None,
        sequence=d["sequence"] if isinstance(d.get("sequence"), Mapping) else None,
        events=_mappings(d.get("events"), 1000),
        events_dropped=int(d.get("events_dropped", 0) or 0),
        cases=_mappings(d.get("cases"), 1000),
    )


# -- building ----------------------------------------------------------------------------------------
def headline(
    outcome: Outcome,
    checks: Sequence[Mapping[str, Any]],
    decisive_i: int | None,
    *,
    error: str | None = None,
    interrupted: str | None = None,
    simulated_s: float | None = None,
) -> str:
    """The plan's result in one line of words: the failed check and its figure against its limit,
    or the run error, or the decisive figure of a pass."""
    if outcome is Outcome.INTERRUPTED:
        after = "" if simulated_s is None else f" after {fmt_duration(simulated_s)} simulated"
        return f"interrupted by {interrupted or 'a signal'}{after}; the bench was brought to its safe state"
    if outcome is Outcome.ERROR and error:
        return "run error: " + error.strip().splitlines()[0][:300]
    if outcome is Outcome.SKIPPED:
        return "skipped: " + (error or "the bench cannot run this plan")[:300]
    if decisive_i is None or not 0 <= decisive_i < len(checks):
        return "no check was judged" if outcome is not Outcome.ERROR else "run error"
    check = checks[decisive_i]
    if outcome is Outcome.PASS:
        return figure_words(check)
    verb = {
        Outcome.FAIL: "failed",
        Outcome.ERROR: "could not judge",
        Outcome.INCONCLUSIVE: "inconclusive",
        Outcome.NOT_JUDGED: "not judged",
    }.get(Outcome.of(check.get("verdict")), Outcome.of(check.get("verdict")).value)
    detail = str(check.get("detail", "")).strip()
    short = detail if len(detail) <= 160 else detail[:157] + "…"
    measured = fmt_value(check.get("measured"), str(check.get("unit", "")))
    if measured == "—":
        measured = "no value measured"
    return f"{check.get('name', '?')} {verb}: {measured}, limit {limit_text(check)}" + (
        f" — {short}" if short else ""
    )


def outputs_of(out_dir: Path | None, stem: str) -> dict[str, str]:
    """The files the plan left in the run folder (trace, figure, bench state, command log, captures
    and key logs as they appear), by kind."""
    if out_dir is None:
        return {}
    kinds = {
        ".trace.jsonl": "trace",
        ".png": "figure",
        ".bench_state.json": "bench_state",
        ".commands.log": "commands",
    }
    found: dict[str, str] = {}
    try:
        names = sorted(p.name for p in out_dir.iterdir() if p.name.startswith(stem + "."))
    except OSError:
        return {}
    for name in names[:MAX_OUTPUTS]:
        suffix = name[len(stem) :]
        kind = kinds.get(suffix, suffix.lstrip(".") or "file")
        found.setdefault(kind, name)
    return found


def summarize(
    result: RunResult,
    *,
    nodeid: str,
    plan: str,
    classname: str,
    stem: str,
    out_dir: Path | None,
    png: bytes | None,
    figure_error: str | None = None,
) -> PlanSummary:
    """The summary of a plan that ran (pass, fail, error or interrupted)."""
    from rig.report.dutevents import dut_marks
    from rig.report.sequence import compact

    checks = records(result.verdicts)
    error = result.error
    if figure_error and not error:
        error = figure_error
    run_verdict = result.verdict if not (figure_error and result.verdict == "pass") else "error"
    outcome = plan_outcome(run_verdict, checks)
    which = decisive(checks)
    opened = next(
        (e.data for e in result.trace.events if e.src == "runner" and e.name == "bench_open"), {}
    )
    dut = opened.get("dut") if isinstance(opened.get("dut"), Mapping) else None
    rig_side = {"evse": "evcc", "ev": "secc"}.get(str((dut or {}).get("side", "")))
    marks, dropped = dut_marks(result.trace.events)
    sequence = compact(result.trace.events, rig_side)
    messages = getattr(result, "messages", None)
    return PlanSummary(
        nodeid=nodeid,
        plan=plan,
        name=result.plan.name,
        title=result.plan.title,
        classname=classname,
        outcome=outcome,
        requirement=result.plan.requirement,
        run_verdict=run_verdict,
        error=None if error is None else error[:MAX_ERROR],
        interrupted=result.interrupted,
        simulated_s=result.simulated_s,
        wall_s=result.wall_s,
        protocol=result.protocol,
        messages=messages if isinstance(messages, int) else None,
        defects=tuple(result.defects),
        checks=tuple(checks),
        decisive=which,
        headline=headline(
            outcome,
            checks,
            which,
            error=error,
            interrupted=result.interrupted,
            simulated_s=result.simulated_s,
        ),
        dut=dict(dut) if dut else None,
        instruments=tuple(i.as_record() for i in result.instruments),
        outputs=outputs_of(out_dir, stem),
        figure_png=None if png is None else base64.b64encode(png).decode("ascii"),
        sequence=sequence.as_record() if sequence.messages or sequence.malformed else None,
        events=tuple(m.as_record() for m in marks),
        events_dropped=dropped,
        cases=tuple(getattr(result, "cases", ())),
    )


def error_summary(
    nodeid: str,
    plan: str,
    error: str,
    *,
    name: str = "",
    title: str = "",
    classname: str = "",
    outcome: Outcome = Outcome.ERROR,
) -> PlanSummary:
    """The summary of a plan that never ran: a bad plan or bench, a rig error, or a skip."""
    return PlanSummary(
        nodeid=nodeid,
        plan=plan,
        name=name or Path(plan).stem,
        title=title,
        classname=classname,
        outcome=outcome,
        run_verdict=outcome.value,
        error=error[:MAX_ERROR],
        headline=headline(outcome, (), None, error=error),
    )
