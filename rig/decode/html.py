"""report.html of `rig decode`: one self-contained page, written by hand (no template engine).

Sections: the counts, the phases with their durations (a bar per phase on one time axis), the
charge loop's voltage, current and power over time (inline SVG), the message sequence (every
SLAC, SDP and V2GTP message with its time, frame and a few key values), and what could not be
decoded. Every text from the capture is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rig.decode.capture import DecodedCapture, DecodedEvent, message_content
from rig.decode.timeline import LoopPoint, Phase, physical

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0} .num{text-align:right;font-variant-numeric:tabular-nums}
.ev{color:#0b5394} .evse{color:#783f04} .bad{color:#b00}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""
#: Key values shown in the sequence table, by field name (first found, depth-first).
_KEYS = (
    "ResponseCode",
    "ChargeProgress",
    "EVSEProcessing",
    "EVTargetVoltage",
    "EVTargetCurrent",
    "EVSEPresentVoltage",
    "EVSEPresentCurrent",
    "EVRESSSOC",
    "SessionID",
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _find(obj: Any, key: str, depth: int = 0) -> Any:
    if depth > 12:
        return None
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        for value in obj.values():
            found = _find(value, key, depth + 1)
            if found is not None:
                return found
    return None


def _key_values(event: DecodedEvent) -> str:
    if event.src == "slac":
        fields = event.data.get("fields", {})
        shown = []
        for key in ("run_id", "num_sounds", "result", "nid", "nmk", "pev_mac", "evse_mac"):
            if isinstance(fields, Mapping) and key in fields:
                shown.append(f"{key}={fields[key]}")
        return " ".join(shown[:4])
    if event.src == "sdp":
        d = event.data
        return " ".join(f"{k}={d[k]}" for k in ("security", "address", "port") if k in d)
    body = event.data.get("body")
    if not isinstance(body, Mapping):
        return ""
    content = message_content(body)
    shown = []
    for key in _KEYS:
        value = _find(content, key)
        if value is None:
            continue
        number = physical(value)
        shown.append(f"{key}={number:g}" if number is not None else f"{key}={value}")
    return " ".join(shown[:4])


def _svg_chart(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]], unit_label: str
) -> str:
    """A line chart: (label, colour, points) per series on one axis pair; empty series skipped."""
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return "<p>No values.</p>"
    width, height, left, bottom, top, right = 900, 220, 60, 30, 10, 10
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    v0, v1 = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    if t1 <= t0:
        t1 = t0 + 1.0
    if v1 <= v0:
        v1 = v0 + 1.0

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - (v - v0) / (v1 - v0)) * (height - top - bottom)

    parts = [f'<svg width="{width}" height="{height}" role="img">']
    parts.append(
        f'<line x1="{left}" y1="{y(v0):.1f}" x2="{width - right}" y2="{y(v0):.1f}" stroke="#999"/>'
    )
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>')
    for frac in (0.0, 0.5, 1.0):
        v = v0 + frac * (v1 - v0)
        parts.append(f'<text x="4" y="{y(v) + 4:.1f}">{v:.4g}</text>')
        t = t0 + frac * (t1 - t0)
        parts.append(f'<text x="{x(t) - 10:.1f}" y="{height - 8}">{t:.1f} s</text>')
    parts.append(f'<text x="{left + 4}" y="{top + 10}">{_e(unit_label)}</text>')
    legend_x = width - right - 10
    for i, (label, colour, pts) in enumerate(series):
        if not pts:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{path}"/>'
        )
        parts.append(
            f'<text x="{legend_x - 160}" y="{top + 14 + 14 * i}" fill="{colour}">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _phase_bars(phases: Sequence[Phase]) -> str:
    if not phases:
        return "<p>No phase found.</p>"
    t0 = min(p.start for p in phases)
    t1 = max(p.end for p in phases)
    span = max(t1 - t0, 1e-9)
    width, row, left = 900, 18, 130
    parts = [f'<svg width="{width}" height="{row * len(phases) + 10}" role="img">']
    for i, p in enumerate(phases):
        xs = left + (p.start - t0) / span * (width - left - 10)
        w = max(2.0, p.duration / span * (width - left - 10))
        yy = 4 + i * row
        parts.append(f'<text x="2" y="{yy + 12}">{_e(p.name)}</text>')
        parts.append(
            f'<rect x="{xs:.1f}" y="{yy}" width="{w:.1f}" height="{row - 5}" fill="#6fa8dc"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render(
    decoded: DecodedCapture,
    phases: Sequence[Phase],
    loop: Sequence[LoopPoint],
    *,
    max_rows: int = 20_000,
) -> str:
    """The whole page as text."""
    s = decoded.summary()
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>rig decode: {_e(decoded.source)}</title><style>{_CSS}</style></head><body>",
        f"<h1>rig decode: {_e(decoded.source)}</h1>",
        "<table>",
    ]
    for key in ("format", "frames", "slac", "sdp", "v2gtp", "exi_decoded", "exi_failed"):
        out.append(f"<tr><th>{_e(key)}</th><td class='num'>{_e(s[key])}</td></tr>")
    out.append(f"<tr><th>namespaces</th><td>{_e(', '.join(s['namespaces']) or '-')}</td></tr>")
    out.append(f"<tr><th>undecodable</th><td class='num'>{len(s['undecodable'])}</td></tr></table>")

    out.append("<h2>Session timeline</h2>")
    if not any(p.name == "pilot" for p in phases):
        out.append("<p>The control pilot is not visible in a network capture.</p>")
    out.append(_phase_bars(phases))
    out.append("<table><tr><th>phase</th><th>start (s)</th><th>end (s)</th>")
    out.append("<th>duration (s)</th><th>messages</th></tr>")
    for p in phases:
        out.append(
            f"<tr><td>{_e(p.name)}</td><td class='num'>{p.start:.3f}</td>"
            f"<td class='num'>{p.end:.3f}</td><td class='num'>{p.duration:.3f}</td>"
            f"<td class='num'>{p.messages}</td></tr>"
        )
    out.append("</table>")

    out.append("<h2>Charge loop</h2>")
    if loop:
        volts = [(p.t, p.voltage_v) for p in loop if p.voltage_v is not None]
        amps = [(p.t, p.current_a) for p in loop if p.current_a is not None]
        watts = [(p.t, w / 1000.0) for p in loop if (w := p.power_w) is not None]
        targets = [(p.t, p.target_voltage_v) for p in loop if p.target_voltage_v is not None]
        out.append(
            _svg_chart(
                [
                    ("EVSE present voltage", "#0b5394", volts),
                    ("EV target voltage", "#9fc5e8", targets),
                ],
                "V",
            )
        )
        out.append(_svg_chart([("EVSE present current", "#783f04", amps)], "A"))
        out.append(_svg_chart([("power (present V x A)", "#38761d", watts)], "kW"))
    else:
        out.append(
            "<p>No DC charge-loop values (an AC session's ChargingStatus carries no present "
            "voltage or current).</p>"
        )

    out.append("<h2>Message sequence</h2>")
    out.append("<table><tr><th>t (s)</th><th>frame</th><th>from</th><th>protocol</th>")
    out.append("<th>message</th><th>values</th></tr>")
    rows = 0
    for event in decoded.events:
        if event.src not in ("slac", "sdp", "v2gtp"):
            continue
        rows += 1
        if rows > max_rows:
            out.append(f"<tr><td colspan='6'>... {_e(max_rows)} rows shown</td></tr>")
            break
        side = str(event.data.get("from", event.data.get("src", "")))
        css = "ev" if side == "ev" else "evse" if side == "evse" else ""
        proto = str(event.data.get("ns", event.src))
        out.append(
            f"<tr><td class='num'>{event.t:.3f}</td><td class='num'>{_e(event.data.get('frame', ''))}</td>"
            f"<td class='{css}'>{_e(side)}</td><td>{_e(proto)}</td><td>{_e(event.name)}</td>"
            f"<td>{_e(_key_values(event))}</td></tr>"
        )
    out.append("</table>")

    out.append("<h2>Undecodable</h2>")
    if s["undecodable"]:
        out.append("<table><tr><th>frame</th><th>kind</th><th>detail</th></tr>")
        for p in s["undecodable"][:max_rows]:
            out.append(
                f"<tr class='bad'><td class='num'>{_e(p['frame'])}</td><td>{_e(p['kind'])}</td>"
                f"<td>{_e(p['detail'])}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>Nothing: every frame decoded.</p>")
    out.append("</body></html>\n")
    return "".join(out)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
