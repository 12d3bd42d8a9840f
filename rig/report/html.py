"""report.html: one self-contained page (no external asset, no script) that answers on its first
screen what ran, on what, and whether it passed — then, per plan, the full-width figure with the
verdict on it, the ISO 15118-20 message sequence and the DUT's events beside each other, the
verdict table, and links to every file the plan left.

The page is built from plan summaries (rig.report.summary) and the run identity (rig.identity),
the same data record.json and junit.xml are written from, so the three never disagree. Every text
is escaped; nothing from a plan, a bench file or a peer is markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rig.identity import calibration_expired, iso_utc
from rig.report.outcome import Outcome, count
from rig.report.record import dut_record, instruments_record, run_outcome
from rig.report.table import as_html as verdict_table
from rig.report.table import badge, fmt_duration, fmt_value

if TYPE_CHECKING:
    from rig.identity import RunIdentity
    from rig.report.summary import PlanSummary

#: Rows of the message sequence and events tables shown per plan (the record keeps them all).
MAX_TABLE_ROWS = 60
#: A procedure's table of cases shows every case up to this many (IEEE 1547.1 5.10 has ~60).
MAX_CASE_ROWS = 500

_OUTPUT_NAMES = {
    "trace": "trace (JSON lines)",
    "figure": "figure (PNG)",
    "bench_state": "bench state after teardown",
    "commands": "instrument commands",
}

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg2:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0; padding: 14px 20px 40px; }
h1 { font-size: 22px; margin: 0; display: inline; vertical-align: middle; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 14px; margin: 14px 0 4px; }
a { color: #0969da; }
.badge { display: inline-block; color: #fff; font-weight: 700; border-radius: 5px;
         padding: 2px 10px; font-size: 20px; letter-spacing: .5px; vertical-align: middle; }
.badge.small { font-size: 12px; padding: 1px 7px; }
.badge.none { background: #8c959f; }
header.run { border-left: 8px solid; padding: 6px 12px; margin-bottom: 12px; background: var(--bg2); }
header.run .what { margin: 6px 0 0; color: var(--muted); }
header.run .what b { color: var(--fg); }
.banner { border: 2px solid #9a4d00; background: #fff8c5; padding: 8px 12px; margin: 8px 0;
          font-weight: 600; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.summary { width: 100%; }
table.summary td.headline { width: 55%; }
.sub { color: var(--muted); font-size: 12px; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px; }
.columns table { width: 100%; font-size: 13px; }
.identity { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
.identity dt { color: var(--muted); }
.identity dd { margin: 0; }
.expired { color: #cf222e; font-weight: 700; }
section.plan { border-top: 3px solid var(--line); margin-top: 22px; padding-top: 10px; }
section.plan .headline { font-size: 15px; font-weight: 600; margin: 4px 0; }
section.plan .meta { color: var(--muted); margin: 2px 0 8px; }
img.figure { width: 100%; height: auto; border: 1px solid var(--line); }
.error { border-left: 5px solid #9a4d00; background: #fff1e5; padding: 6px 10px;
         white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 18px; }
.pair table { width: 100%; font-size: 12.5px; }
table.rig-verdicts { width: 100%; font-size: 13px; }
table.rig-verdicts tr.decisive td { background: #fff8c5; }
table.rig-verdicts td.detail { font-size: 12px; }
table.rig-verdicts td.clause, table.rig-verdicts td.params { font-size: 11.5px; color: var(--muted); }
.links a { margin-right: 14px; }
code { font-size: 12px; }
"""


def scoped_css(scope: str) -> str:
    """The page's style confined to elements inside `scope` (a selector), for a fragment shown in
    another page (pytest-html's), where the page's own rules must stay untouched."""
    rules = []
    for chunk in CSS.split("}"):
        if "{" not in chunk:
            continue
        selectors, body = chunk.split("{", 1)
        scoped = []
        for sel in selectors.split(","):
            sel = sel.strip()
            if sel in (":root", "body", "*"):
                scoped.append(scope)
            else:
                scoped.append(f"{scope} {sel}")
        rules.append(", ".join(scoped) + " {" + body + "}")
    return "\n".join(rules)


def _e(value: object) -> str:
    return html.escape(str(value))


def _speed(s: PlanSummary) -> str:
    if s.simulated_s is None or not s.wall_s:
        return ""
    return f" ({s.simulated_s / s.wall_s:,.0f}× real time)"


def _dut_text(dut: Mapping[str, Any] | None) -> str:
    if not dut:
        return "DUT: <b>not reached</b> (no plan opened the bench)"
    serial = dut.get("serial") or "—"
    kind = "emulated " if dut.get("emulated") else ""
    return (
        f"DUT <b>{_e(dut.get('name', '?'))}</b> ({kind}{_e(dut.get('side', '?'))}, firmware "
        f"<b>{_e(dut.get('firmware', '?'))}</b>, serial {_e(serial)})"
    )


def run_header(
    identity: RunIdentity,
    summaries: Sequence[PlanSummary],
    *,
    stopped_by: str | None = None,
    not_run: Sequence[str] = (),
) -> str:
    """The first lines of the page: the run's verdict, what ran on what, and a banner when the run
    is incomplete."""
    outcome = run_outcome(summaries, stopped_by=stopped_by)
    tally = count(s.outcome for s in summaries)
    counts = ", ".join(f"{n} {o.label.lower()}" for o, n in tally.items()) or "nothing ran"
    defects = ", ".join(identity.defects) or "none"
    ended = iso_utc(identity.ended) if identity.ended else "—"
    banner = ""
    if stopped_by:
        left = f" Not run: {_e(', '.join(not_run))}." if not_run else " Every plan had started."
        banner = (
            f"<div class=banner>INCOMPLETE: the run was stopped by {_e(stopped_by)}. "
            f"{len(summaries)} plan(s) started; the verdicts below are theirs, the interrupted "
            f"one ended with its bench in the safe state.{left}</div>"
        )
    return (
        f"<header class=run style='border-left-color:{outcome.color}'>"
        f"{badge(outcome)} <h1>{len(summaries)} plan(s) on {_e(identity.bench_name)}: {_e(counts)}</h1>"
        f"<p class=what>{_dut_text(dut_record(summaries))} · seed <b>{identity.seed}</b> · "
        f"defects <b>{_e(defects)}</b> · {_e(iso_utc(identity.started))} → {_e(ended)} · "
        f"host {_e(identity.host)} · {_e(identity.rig.describe())}</p>"
        f"{banner}</header>"
    )


def summary_table(summaries: Sequence[PlanSummary], *, not_run: Sequence[str] = ()) -> str:
    rows = []
    for i, s in enumerate(summaries):
        rows.append(
            "<tr>"
            f"<td>{badge(s.outcome, small=True)}</td>"
            f"<td><a href='#plan-{i + 1}'>{_e(s.name)}</a><div class=sub>{_e(s.title)}</div></td>"
            f"<td class=headline style='color:{s.outcome.color if s.outcome is not Outcome.PASS else 'inherit'}'>"
            f"{_e(s.headline)}</td>"
            f"<td class=num>{_e(fmt_duration(s.simulated_s))}</td>"
            f"<td class=num>{_e(fmt_duration(s.wall_s))}</td>"
            "</tr>"
        )
    for plan in not_run:
        rows.append(
            f"<tr><td><span class='badge small none'>NOT RUN</span></td><td>{_e(plan)}</td>"
            "<td class=headline>never started: the run was stopped before it</td><td></td><td></td></tr>"
        )
    return (
        "<table class=summary><tr><th>verdict</th><th>plan</th>"
        "<th>decisive figure, or what failed</th><th>simulated</th><th>wall</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def identity_block(identity: RunIdentity, summaries: Sequence[PlanSummary]) -> str:
    """Rig, bench, DUT, instruments with their calibration, plans and their hashes."""
    day = identity.started.date()
    dut = dut_record(summaries) or {}
    plans = "<br>".join(
        f"<code>{_e(p.path)}</code> <span class=sub>sha256 {_e(p.sha256 or 'unreadable')}</span>"
        for p in identity.plans
    )
    commit = identity.rig.commit or "— (not a git checkout)"
    if identity.rig.dirty:
        commit += " (with local changes)"
    items = [
        ("rig", f"{_e(identity.rig.version)}, commit <code>{_e(commit)}</code>"),
        (
            "bench",
            f"{_e(identity.bench_name)} — <code>{_e(identity.bench.path)}</code> "
            f"<span class=sub>sha256 {_e(identity.bench.sha256 or 'unreadable')}</span>",
        ),
        (
            "DUT",
            f"{_e(dut.get('name', '—'))}, side {_e(dut.get('side', '—'))}, firmware "
            f"{_e(dut.get('firmware', '—'))}, serial {_e(dut.get('serial') or '—')}"
            + (" (emulated)" if dut.get("emulated") else ""),
        ),
        ("seed", str(identity.seed)),
        ("defects", _e(", ".join(identity.defects) or "none")),
        (
            "time (UTC)",
            f"{_e(iso_utc(identity.started))} → "
            f"{_e(iso_utc(identity.ended) if identity.ended else '—')}",
        ),
        ("host", _e(identity.host)),
        ("plans", plans or "—"),
    ]
    rows = []
    for inst in instruments_record(summaries, day):
        due = inst.get("calibration_due")
        expired = calibration_expired(str(due), day) if due else None
        if due:
            cal = f"<span class=expired>{_e(due)} EXPIRED</span>" if expired else _e(due)
        else:
            cal = "— (emulated)" if inst.get("emulated") else "<span class=expired>not given</span>"
        rows.append(
            f"<tr><td>{_e(inst.get('role', ''))}</td><td>{_e(inst.get('model', ''))}</td>"
            f"<td><code>{_e(inst.get('idn', ''))}</code></td>"
            f"<td><code>{_e(inst.get('address') or ('emulated' if inst.get('emulated') else '—'))}</code></td>"
            f"<td class=num>{cal}</td></tr>"
        )
    instruments = (
        "<table class=instruments><tr><th>role</th><th>model</th><th>IDN</th><th>address</th>"
        "<th>calibration due</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p class=sub>no instrument was opened</p>"
    )
    return (
        "<section id=identity class=columns><div><h3>Run identity</h3><dl class=identity>"
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
        + "</dl></div><div><h3>Instruments</h3>"
        + instruments
        + "</div></section>"
    )


def _sequence_table(s: PlanSummary) -> str:
    seq = s.sequence
    if not seq or not seq.get("rows"):
        malformed = int(seq.get("malformed", 0)) if seq else 0
        note = f"; {malformed} malformed message event(s) skipped" if malformed else ""
        return f"<p class=sub>no ISO 15118-20 message in the trace (protocol: {_e(s.protocol)}){note}</p>"
    rows = []
    all_rows = [r for r in seq.get("rows", []) if isinstance(r, Mapping)]
    for r in all_rows[:MAX_TABLE_ROWS]:
        t0, t1 = r.get("t_first"), r.get("t_last")
        when = fmt_value(t0, "s") + ("" if t0 == t1 else f" – {fmt_value(t1, 's')}")
        rows.append(f"<tr><td class=num>{_e(when)}</td><td>{_e(r.get('text', ''))}</td></tr>")
    more = len(all_rows) - MAX_TABLE_ROWS + int(seq.get("rows_dropped", 0) or 0)
    tail = f"<p class=sub>… {more} more row(s) in record.json</p>" if more > 0 else ""
    side = seq.get("side")
    return (
        f"<p class=sub>{_e(_count(seq.get('messages')))} messages as the {_e(side)} saw them</p>"
        "<table><tr><th>time</th><th>exchange</th></tr>" + "".join(rows) + "</table>" + tail
    )


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _events_table(s: PlanSummary) -> str:
    if not s.events:
        return "<p class=sub>the DUT reported no event</p>"
    rows = []
    for e in s.events[:MAX_TABLE_ROWS]:
        rows.append(
            f"<tr><td class=num>{_e(fmt_value(e.get('t'), 's'))}</td>"
            f"<td>{_e(e.get('label', ''))}</td><td class=sub>{_e(e.get('detail', ''))}</td></tr>"
        )
    more = len(s.events) - MAX_TABLE_ROWS + s.events_dropped
    tail = f"<p class=sub>… {more} more in record.json</p>" if more > 0 else ""
    return (
        "<table><tr><th>time</th><th>event</th><th>data</th></tr>"
        + "".join(rows)
        + "</table>"
        + tail
    )


def _cases_table(s: PlanSummary) -> str:
    """A procedure's cases (rig.procedure): one row per run, with its variables, the decisive
    result (the clearing time in IEEE 1547.1 5.10) and its verdict; reruns marked."""
    if not s.cases:
        return ""
    names: list[str] = []
    for case in s.cases:
        given = case.get("values")
        for key in given if isinstance(given, Mapping) else ():
            if key not in names:
                names.append(str(key))
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = []
    for case in s.cases[:MAX_CASE_ROWS]:
        raw = case.get("values")
        values: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        cells = "".join(f"<td>{_e(values.get(n, ''))}</td>" for n in names)
        value = case.get("value")
        shown = (
            "never (still energized)"
            if case.get("never")
            else (fmt_value(value, "s") if isinstance(value, int | float) else "—")
        )
        role = str(case.get("role", ""))
        if case.get("repeat"):
            role += f" {case.get('repeat')}"
        rows.append(
            f"<tr><td class=num>{_e(case.get('case', ''))}</td><td>{_e(role)}</td>{cells}"
            f"<td class=num>{_e(shown)}</td><td>{_e(case.get('verdict', ''))}</td></tr>"
        )
    more = len(s.cases) - MAX_CASE_ROWS
    tail = f"<p class=sub>… {more} more case(s) in record.json</p>" if more > 0 else ""
    of = str(s.cases[0].get("result") or "")
    title = "Clearing time per case" if of.startswith("islanding:") else "Result per case"
    return (
        f"<h3>{_e(title)}</h3>"
        + (f"<p class=sub>result: {_e(of)}</p>" if of else "")
        + "<table><tr><th>case</th><th>run</th>"
        f"{head}<th>result</th><th>verdict</th></tr>" + "".join(rows) + "</table>" + tail
    )


def plan_section(s: PlanSummary, index: int) -> str:
    meta = [f"<code>{_e(s.plan)}</code>"]
    if s.requirement:
        meta.append(_e(s.requirement))
    meta.append(
        f"protocol {_e(s.protocol)}"
        + (f", {s.messages:,} messages" if s.messages is not None else "")
    )
    if s.simulated_s is not None:
        meta.append(
            f"{_e(fmt_duration(s.simulated_s))} simulated in {_e(fmt_duration(s.wall_s))}{_speed(s)}"
        )
    if s.defects:
        meta.append("seeded defects: " + _e(", ".join(s.defects)))
    error = f"<div class=error>{_e(s.error)}</div>" if s.error else ""
    figure = (
        f"<img class=figure alt='{_e(s.name)}: power, SoC and voltages with the verdict' "
        f"src='data:image/png;base64,{s.figure_png}'>"
        if s.figure_png
        else "<p class=sub>no figure (the plan did not run far enough to draw one)</p>"
    )
    links = " ".join(
        f"<a href='{html.escape(name, quote=True)}'>{_e(_OUTPUT_NAMES.get(kind, kind))}</a>"
        for kind, name in s.outputs.items()
    )
    return (
        f"<section class=plan id='plan-{index}'>"
        f"<h2>{badge(s.outcome)} {_e(s.name)} <span class=sub>{_e(s.title)}</span></h2>"
        f"<p class=headline style='color:{s.outcome.color}'>{_e(s.headline)}</p>"
        f"<p class=meta>{' · '.join(meta)}</p>{error}{figure}"
        "<div class=pair><div><h3>Message sequence</h3>"
        f"{_sequence_table(s)}</div><div><h3>DUT events</h3>{_events_table(s)}</div></div>"
        + _cases_table(s)
        + "<h3>Verdicts</h3>"
        f"{verdict_table(s.checks, decisive=s.decisive)}"
        + (f"<p class=links>Files: {links}</p>" if links else "")
        + "</section>"
    )


def render_report(
    identity: RunIdentity,
    summaries: Sequence[PlanSummary],
    *,
    stopped_by: str | None = None,
    not_run: Sequence[str] = (),
    files: Sequence[tuple[str, str]] = (("record.json", "record.json"), ("junit.xml", "junit.xml")),
) -> str:
    outcome = run_outcome(summaries, stopped_by=stopped_by)
    title = f"{outcome.label} — V2H rig report — {len(summaries)} plan(s) on {identity.bench_name}"
    run_files = " ".join(
        f"<a href='{html.escape(href, quote=True)}'>{_e(label)}</a>" for label, href in files
    )
    generated = iso_utc(identity.ended or identity.started)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        + run_header(identity, summaries, stopped_by=stopped_by, not_run=not_run)
        + summary_table(summaries, not_run=not_run)
        + identity_block(identity, summaries)
        + "".join(plan_section(s, i + 1) for i, s in enumerate(summaries))
        + f"<footer><h3>Run files</h3><p class=links>{run_files}</p>"
        f"<p class=sub>written {_e(generated)} by the V2H test rig</p></footer>"
        "</body></html>\n"
    )
