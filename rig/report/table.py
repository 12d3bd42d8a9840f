"""The verdict table and its figures in words: measured value, relation and limit, uncertainty,
evidence and clause — as HTML for the report and as text for the terminal.

Rows are check records (Verdict.as_record, or the same dict back from a worker process). The
relation (≤, ≥) is the one the check stored; a check that stored none is shown without one.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rig.checks import Verdict
from rig.report.outcome import Outcome

#: Evidence text shown per row at most (the record keeps it whole).
MAX_DETAIL = 2000


def fmt_value(value: object, unit: str) -> str:
    """A measured value or limit with its unit: milliseconds below a second, four digits."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    if not math.isfinite(value):
        return str(value)
    if unit == "s" and abs(value) < 1:
        return f"{value * 1e3:.4g} ms"
    return f"{value:.4g} {unit}".strip()


def fmt_duration(seconds: float | None) -> str:
    """A span of time as an engineer says it: 750 ms, 41.0 s, 23.1 min, 12.00 h."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.1f} s"


def limit_text(check: Mapping[str, Any]) -> str:
    relation = check.get("relation")
    limit = fmt_value(check.get("limit"), str(check.get("unit", "")))
    return f"{relation} {limit}" if relation in ("≤", "≥") and limit != "—" else limit


def uncertainty_text(check: Mapping[str, Any]) -> str:
    u = check.get("uncertainty")
    return "" if u is None else "± " + fmt_value(u, str(check.get("unit", "")))


#: The unit a check parameter of each dimension is shown in (parameters are stored in SI).
_PARAM_UNITS = {
    "time": ("s", 1.0),
    "power": ("W", 1.0),
    "reactive_power": ("var", 1.0),
    "voltage": ("V", 1.0),
    "current": ("A", 1.0),
    "frequency": ("Hz", 1.0),
    "energy": ("Wh", 1.0),
    "ratio": ("%", 100.0),
    "power_rate": ("W/s", 1.0),
}


def params_text(check: Mapping[str, Any]) -> str:
    """The check's parameters as it ran, with units where the check registry knows them."""
    from rig.checks import REGISTRY

    params = check.get("params")
    if not isinstance(params, Mapping):
        return ""
    spec = REGISTRY.get(str(check.get("name", "")).split(":", 1)[0])
    parts = []
    for key, value in list(params.items())[:20]:
        p = spec.params.get(str(key)) if spec is not None else None
        unit, scale = _PARAM_UNITS.get(p.dimension, ("", 1.0)) if p is not None else ("", 1.0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = f"{value * scale:.4g} {unit}".strip()
        else:
            shown = str(value)
        parts.append(f"{str(key)[:40]}={shown[:40]}")
    return ", ".join(parts)


def figure_words(check: Mapping[str, Any]) -> str:
    """ "islanding:grid_forming 170 ms ≤ 200 ms" (measured against the limit, as the check judged)."""
    unit = str(check.get("unit", ""))
    measured = fmt_value(check.get("measured"), unit)
    if measured == "—":
        measured = "no value measured"
    return f"{check.get('name', '?')} {measured} (limit {limit_text(check)})"


def records(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """Check records of verdicts, with the uncertainty once verdicts carry one."""
    out = []
    for v in verdicts:
        rec = v.as_record()
        u = getattr(v, "uncertainty", None)
        if isinstance(u, int | float):
            rec["uncertainty"] = float(u)
        out.append(rec)
    return out


def badge(outcome: Outcome, *, small: bool = False) -> str:
    cls = "badge small" if small else "badge"
    return f"<span class='{cls}' style='background:{outcome.color}'>{outcome.label}</span>"


def as_html(checks: Sequence[Mapping[str, Any]], *, decisive: int | None = None) -> str:
    """The verdict table; the decisive row is marked."""
    show_u = any(c.get("uncertainty") is not None for c in checks)
    head = (
        "<tr><th>check</th><th>verdict</th><th>measured</th><th>limit</th>"
        + ("<th>uncertainty</th>" if show_u else "")
        + "<th>evidence</th><th>clause</th><th>parameters</th></tr>"
    )
    rows = []
    for i, c in enumerate(checks):
        outcome = Outcome.of(c.get("verdict"))
        unit = str(c.get("unit", ""))
        detail = str(c.get("detail", ""))[:MAX_DETAIL]
        rows.append(
            f"<tr{' class=decisive' if i == decisive else ''}>"
            f"<td class=name>{html.escape(str(c.get('name', '?')))}</td>"
            f"<td>{badge(outcome, small=True)}</td>"
            f"<td class=num>{html.escape(fmt_value(c.get('measured'), unit))}</td>"
            f"<td class=num>{html.escape(limit_text(c))}</td>"
            + (f"<td class=num>{html.escape(uncertainty_text(c))}</td>" if show_u else "")
            + f"<td class=detail>{html.escape(detail)}</td>"
            f"<td class=clause>{html.escape(str(c.get('clause', '')))}</td>"
            f"<td class=params>{html.escape(params_text(c))}</td>"
            "</tr>"
        )
    if not rows:
        rows.append(f"<tr><td colspan={7 + show_u}>no check was judged</td></tr>")
    return "<table class='rig-verdicts'>" + head + "".join(rows) + "</table>"


def as_text(checks: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in checks:
        outcome = Outcome.of(c.get("verdict"))
        unit = str(c.get("unit", ""))
        lines.append(
            f"  {outcome.label:12} {c.get('name', '?')!s:28} measured "
            f"{fmt_value(c.get('measured'), unit):>12}  limit {limit_text(c)}"
            + (f"  {uncertainty_text(c)}" if c.get("uncertainty") is not None else "")
        )
        lines.append(f"               {str(c.get('detail', ''))[:MAX_DETAIL]}")
    return "\n".join(lines)
