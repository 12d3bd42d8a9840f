"""The verdict table, as HTML for the report and as text for the terminal."""

from __future__ import annotations

import html
from collections.abc import Sequence

from rig.checks import Verdict


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s" and abs(value) < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.4g} {unit}".strip()


def _relation(v: Verdict) -> str:
    if v.relation is not None:
        return v.relation.value
    if v.name.startswith("reserve_floor"):
        return "≥"
    return "≤"


def _measured(v: Verdict) -> str:
    """The measured figure with its expanded uncertainty beside it."""
    text = _fmt(v.measured, v.unit)
    if v.measured is not None and v.uncertainty is not None:
        text += f" ± {_fmt(v.uncertainty, v.unit)}"
    return text


#: Outcome colours; an outcome not listed is shown in the error colour, never as a pass.
_COLORS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "error": "#9a6700",
    "inconclusive": "#8250df",
    "not judged": "#57606a",
}


def as_html(
    verdicts: Sequence[Verdict], *, protocol: str = "none", error: str | None = None
) -> str:
    rows = []
    for v in verdicts:
        color = _COLORS.get(v.verdict, _COLORS["error"])
        rows.append(
            "<tr>"
            f"<td>{html.escape(v.name)}</td>"
            f"<td style='color:{color};font-weight:bold'>{v.verdict.upper()}</td>"
            f"<td>{html.escape(_measured(v))}</td>"
            f"<td>{_relation(v)} {html.escape(_fmt(v.limit, v.unit))}</td>"
            f"<td style='font-size:85%'>{html.escape(v.detail)}<br><i>{html.escape(v.clause)}</i></td>"
            "</tr>"
        )
    err = f"<p style='color:#9a6700'><b>run error:</b> {html.escape(error)}</p>" if error else ""
    return (
        f"<p>protocol: <b>{html.escape(protocol)}</b></p>{err}"
        "<table class='rig-verdicts' border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>check</th><th>verdict</th><th>measured</th><th>limit</th><th>evidence</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def as_text(verdicts: Sequence[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(
            f"  {v.verdict.upper():5} {v.name:28} measured {_measured(v):>12}  "
            f"limit {_relation(v)} {_fmt(v.limit, v.unit)}"
        )
        lines.append(f"        {v.detail}")
    return "\n".join(lines)
