"""The DUT's own events, as the report marks them on the figure and lists them beside it: session
states, island detected, transfer and reconnection, the reserve reached, protocol notifications
(EVSENotification in a -20 response), and the rig's own stops (run error, interrupted).

These are claims of the device (the checks never judge by them), shown because they explain a
result: "island detected at 34.15 s" next to a voltage that came back too late. Events come from
the DUT or a peer, so each field is checked and bounded; the list never exceeds MAX_EVENTS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rig.trace import Event

#: Events listed per plan (the figure marks at most MAX_MARKS of them).
MAX_EVENTS = 200
MAX_MARKS = 30
#: Longest text kept from an event's data.
MAX_TEXT = 160
#: How deep into a decoded message body a notification is looked for, and how many nodes.
MAX_DEPTH = 6
MAX_NODES = 400
#: Body keys of -20 notifications worth a marker (EVSEStatus.EVSENotification).
NOTIFICATION_KEYS = ("EVSENotification",)
#: Runner events that end or disturb a run (shown with the DUT's: they explain a cut figure).
RIG_EVENTS = ("run_error", "interrupted", "step_late")


class Kind(StrEnum):
    STATE = "state"  # session phase changes
    GRID = "grid"  # island detected, transfer, grid forming, reconnection, trips
    ENERGY = "energy"  # reserve reached, EV limits
    PROTOCOL = "protocol"  # -20 notifications
    RIG = "rig"  # run error, interrupted


_KIND_OF = {
    "session_state": Kind.STATE,
    "island_detected": Kind.GRID,
    "transfer_open": Kind.GRID,
    "grid_forming": Kind.GRID,
    "ceased_to_energize": Kind.GRID,
    "reconnected": Kind.GRID,
    "trip": Kind.GRID,
    "reserve_reached": Kind.ENERGY,
    "ev_limits": Kind.ENERGY,
}


@dataclass(frozen=True)
class DutMark:
    t: float
    kind: Kind
    label: str  # short, for the figure: "island detected", "session charge_loop"
    detail: str = ""  # the event's data, for the table

    def as_record(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 6),
            "kind": self.kind.value,
            "label": self.label,
            "detail": self.detail,
        }


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT]


def _detail(data: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    parts = []
    for key, value in list(data.items())[:12]:
        if key in skip or isinstance(value, Mapping | list | tuple):
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{_text(key)[:40]}={_text(value)[:60]}")
    return _text(", ".join(parts))


def _notification(body: Any) -> str | None:
    """The first notification value in a decoded message body (bounded walk; it runs for every
    message of a run, so plain dicts and lists take the fast type test)."""
    stack: list[tuple[Any, int]] = [(body, 0)]
    seen = 0
    while stack and seen < MAX_NODES:
        node, depth = stack.pop()
        seen += 1
        if type(node) is dict or isinstance(node, Mapping):
            for key in NOTIFICATION_KEYS:
                value = node.get(key)
                if value is not None and isinstance(value, str | int):
                    return _text(value)[:60]
            if depth < MAX_DEPTH:
                for value in node.values():
                    if type(value) in _CONTAINERS or isinstance(value, Mapping | list):
                        stack.append((value, depth + 1))
        elif isinstance(node, list) and depth < MAX_DEPTH:
            stack.extend((v, depth + 1) for v in node[:20])
    return None


_CONTAINERS = (dict, list)


def dut_marks(events: Iterable[Event]) -> tuple[list[DutMark], int]:
    """The marks of one plan, in time order, and how many more there were beyond MAX_EVENTS."""
    marks: list[DutMark] = []
    dropped = 0
    last_notification: str | None = None
    for ev in events:
        if not isinstance(ev.t, int | float) or not math.isfinite(ev.t):
            continue
        data = ev.data if isinstance(ev.data, Mapping) else {}
        mark: DutMark | None = None
        if ev.src == "dut":
            name = _text(ev.name)[:40]
            if name == "session_state":
                state = _text(data.get("state", "?"))[:40]
                mark = DutMark(ev.t, Kind.STATE, f"session {state}", _detail(data, ("state",)))
            else:
                kind = _KIND_OF.get(name, Kind.GRID)
                mark = DutMark(ev.t, kind, name.replace("_", " "), _detail(data))
        elif ev.src == "v2g" and ev.name == "message":
            note = _notification(data.get("body"))
            if note is not None and note != last_notification:
                message = _text(data.get("message", ""))[:80]
                mark = DutMark(ev.t, Kind.PROTOCOL, f"EVSENotification {note}", f"in {message}")
            if note is not None:
                last_notification = note
        elif ev.src == "runner" and ev.name in RIG_EVENTS:
            mark = DutMark(ev.t, Kind.RIG, ev.name.replace("_", " "), _detail(data))
        if mark is None:
            continue
        if len(marks) >= MAX_EVENTS:
            dropped += 1
            continue
        marks.append(mark)
    marks.sort(key=lambda m: m.t)
    return marks, dropped


def figure_marks(marks: list[DutMark]) -> list[DutMark]:
    """The marks drawn on the figure: all but the EV's limit reports (data, not moments), at most
    MAX_MARKS, the rig's and the grid's first (they explain results)."""
    drawn = [m for m in marks if m.label != "ev limits"]
    if len(drawn) <= MAX_MARKS:
        return drawn
    order = {Kind.RIG: 0, Kind.GRID: 1, Kind.PROTOCOL: 2, Kind.ENERGY: 3, Kind.STATE: 4}
    keep = sorted(drawn, key=lambda m: (order[m.kind], m.t))[:MAX_MARKS]
    return sorted(keep, key=lambda m: m.t)
