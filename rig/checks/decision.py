"""The decision rule: how a measured value and its uncertainty become pass, fail or inconclusive.

In the style of ILAC-G8 (decision rules with measurement uncertainty, FACTS "Criteria details"):
a result is compared with its limit together with the expanded uncertainty U of the measurement.

- Simple acceptance (the default): pass when the measured value is within the limit; fail only
  when it is beyond the limit by more than U; in between (beyond the limit, but by less than U)
  the rig cannot tell, and says `inconclusive`.
- Guarded acceptance (a check parameter, `decision_rule: guarded`): pass only when the value is
  within the limit by more than U (a guard band w = U); fail as above; inconclusive otherwise.

Rejection is guarded under both rules (rig's own choice): a `fail` is always a result the
measurement can show, so a good unit never fails on the bench's uncertainty, and a wider
uncertainty (noisier instruments) turns verdicts inconclusive, never into failures.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

DecisionOutcome = Literal["pass", "fail", "inconclusive"]


class DecisionRule(StrEnum):
    SIMPLE = "simple"
    GUARDED = "guarded"

    @property
    def description(self) -> str:
        if self is DecisionRule.SIMPLE:
            return "simple acceptance (ILAC-G8 style; fail beyond limit + U)"
        return "guarded acceptance, guard band = U (ILAC-G8 style; fail beyond limit + U)"


class Relation(StrEnum):
    """How a measured value must stand to its limit for the check to pass: stored in the verdict
    by the check that judged it, so that no report guesses it from the check's name."""

    AT_MOST = "≤"  # measured ≤ limit passes (a time limit, an overshoot)
    AT_LEAST = "≥"  # measured ≥ limit passes (a floor: the reserve)


def excess(measured: float, limit: float, relation: Relation) -> float:
    """How far `measured` lies beyond `limit` (positive: on the failing side)."""
    return measured - limit if relation is Relation.AT_MOST else limit - measured


def decide(
    measured: float,
    limit: float,
    relation: Relation,
    uncertainty: float,
    rule: DecisionRule = DecisionRule.SIMPLE,
) -> DecisionOutcome:
    """The outcome of comparing `measured` (expanded uncertainty `uncertainty`, same unit) with
    `limit`. A measured value of +inf (never reached) on the failing side fails."""
    if math.isnan(measured) or math.isnan(limit):
        raise ValueError("decide: measured value and limit must be numbers")
    u = max(float(uncertainty), 0.0) if math.isfinite(uncertainty) else math.inf
    beyond = excess(measured, limit, relation)
    if beyond > u:
        return "fail"
    if beyond > 0.0:
        return "inconclusive"
    if rule is DecisionRule.GUARDED and -beyond <= u:
        return "inconclusive"
    return "pass"
