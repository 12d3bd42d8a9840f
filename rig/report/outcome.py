"""Outcomes as the report, the record, junit and the terminal show them: one vocabulary, one order
of severity, and which check decides a plan.

A check's verdict is pass, fail or error today; "inconclusive" (a result within the measurement
uncertainty of its limit, ILAC-G8) and "not judged" are coming and are shown as such, never as a
pass. A plan adds "interrupted" (a signal stopped it) and "skipped" (the bench lacks a role). Any
word this module does not know is shown as an error: an unknown outcome is never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"
    NOT_JUDGED = "not_judged"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @classmethod
    def of(cls, word: object) -> Outcome:
        """The outcome a verdict or plan states ("not judged", "not-judged" and "not_judged" are
        one); anything unknown is an error."""
        text = str(word).strip().lower().replace(" ", "_").replace("-", "_")
        try:
            return cls(text)
        except ValueError:
            return cls.ERROR

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").upper()

    @property
    def severity(self) -> int:
        """Higher is worse; a plan shows its worst check."""
        return _SEVERITY[self]

    @property
    def color(self) -> str:
        return _COLOR[self]


_SEVERITY = {
    Outcome.PASS: 0,
    Outcome.SKIPPED: 1,
    Outcome.NOT_JUDGED: 2,
    Outcome.INCONCLUSIVE: 3,
    Outcome.FAIL: 4,
    Outcome.ERROR: 5,
    Outcome.INTERRUPTED: 6,
}
#: Colours with white text on them (WCAG AA contrast): green, red, amber, violet, grey.
_COLOR = {
    Outcome.PASS: "#1a7f37",
    Outcome.FAIL: "#cf222e",
    Outcome.ERROR: "#9a4d00",
    Outcome.INCONCLUSIVE: "#8250df",
    Outcome.NOT_JUDGED: "#57606a",
    Outcome.INTERRUPTED: "#9a4d00",
    Outcome.SKIPPED: "#57606a",
}


def plan_outcome(run_verdict: str, checks: Sequence[Mapping[str, Any]]) -> Outcome:
    """A plan's outcome from its run's verdict and its checks' verdicts: a signal or a run error
    first, then the worst check; a plan with no check judged is "not judged", not a pass."""
    run = Outcome.of(run_verdict)
    if run in (Outcome.INTERRUPTED, Outcome.ERROR, Outcome.SKIPPED):
        return run
    if not checks:
        return Outcome.NOT_JUDGED
    worst = max((Outcome.of(c.get("verdict")) for c in checks), key=lambda o: o.severity)
    if run is Outcome.FAIL:
        # The runner calls every non-pass verdict a failure of the plan; the checks say which
        # kind (inconclusive, not judged). A run that failed is never shown as a pass.
        return Outcome.FAIL if worst is Outcome.PASS else worst
    return worst


def margin(check: Mapping[str, Any]) -> float:
    """How far a measured value is inside its limit, as a share of the limit (negative: outside);
    -inf when a check has no figure and no relation to judge the margin by."""
    measured, limit = _number(check.get("measured")), _number(check.get("limit"))
    relation = check.get("relation")
    if measured is None or limit is None or relation not in ("≤", "≥"):
        return -math.inf
    inside = limit - measured if relation == "≤" else measured - limit
    return inside / (abs(limit) or 1.0)


def decisive(checks: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the check that decides the plan: the worst outcome, and among equals the one
    closest to (or furthest beyond) its limit; None when there is no check."""
    if not checks:
        return None

    def key(i: int) -> tuple[int, float, int]:
        c = checks[i]
        m = margin(c)
        # Among equals the tightest margin decides; a check with no figure goes after those with.
        return (-Outcome.of(c.get("verdict")).severity, m if math.isfinite(m) else math.inf, i)

    return min(range(len(checks)), key=key)


def count(outcomes: Iterable[Outcome]) -> dict[Outcome, int]:
    out: dict[Outcome, int] = {}
    for o in outcomes:
        out[o] = out.get(o, 0) + 1
    return out


def _number(value: object) -> float | None:
    """A finite number, or None (a peer's or a file's value is checked, never trusted)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
