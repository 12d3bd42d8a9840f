"""The ISO 15118-20 message sequence of a plan, compacted for the report: request/response pairs
with their times, long runs of the same exchange folded into one row
("DC_ChargeLoopReq/Res × 14,400, 250 ms period, max response 3.1 ms").

Input is the trace's protocol events (src "v2g", name "message", data {"dir": "tx" | "rx",
"side": "evcc" | "secc", "message": <element name>, "code": <ResponseCode>, ...}). They come from
a peer, so every field is checked and bounded: a malformed event is counted and skipped, never
raised, and the table never grows beyond MAX_ROWS however long the session.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rig.trace import Event

#: Rows kept in the compact table (a row is a run of one exchange, so this is plenty).
MAX_ROWS = 400
#: Longest message name believed (-20 element names are well under this).
MAX_NAME = 80
#: Longest ResponseCode text kept.
MAX_CODE = 60
#: Events of one plan read at most (a week of ChargeLoop at 4 Hz on both sides is about 10 M).
MAX_EVENTS = 20_000_000
#: Response codes that mean success ([V2G20] ResponseCodeType "OK" and its "OK_..." variants).
OK_PREFIX = "OK"


@dataclass(frozen=True)
class SequenceRow:
    """A run of consecutive exchanges of one message pair (or one unpaired message)."""

    t_first: float
    t_last: float
    label: str  # "SessionSetupReq/Res", or a single message's name
    count: int
    #: Median time between the starts of consecutive exchanges (s); None for a single one.
    period_s: float | None
    #: Longest request→response time in the run (s); None when no response was seen.
    max_response_s: float | None
    #: Requests in the run that got no response.
    unanswered: int = 0
    #: Response codes other than OK…, with how often each came.
    codes: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        """One line, the way an engineer would say it."""
        parts = [self.label + (f" × {self.count:,}" if self.count > 1 else "")]
        if self.period_s is not None:
            parts.append(f"{_ms(self.period_s)} period")
        if self.max_response_s is not None:
            parts.append(
                ("max response " if self.count > 1 else "response ") + _ms(self.max_response_s)
            )
        if self.unanswered:
            parts.append(f"{self.unanswered} without response")
        parts.extend(f"{code} × {n}" if n > 1 else code for code, n in self.codes)
        return ", ".join(parts)

    def as_record(self) -> dict[str, Any]:
        return {
            "t_first": round(self.t_first, 6),
            "t_last": round(self.t_last, 6),
            "label": self.label,
            "count": self.count,
            "period_s": None if self.period_s is None else round(self.period_s, 6),
            "max_response_s": None
            if self.max_response_s is None
            else round(self.max_response_s, 6),
            "unanswered": self.unanswered,
            "codes": [[c, n] for c, n in self.codes],
            "text": self.describe(),
        }


@dataclass(frozen=True)
class MessageSequence:
    rows: tuple[SequenceRow, ...] = ()
    #: Messages read (of the side shown).
    messages: int = 0
    #: The side whose view is shown ("evcc" or "secc"), None when no message was seen.
    side: str | None = None
    #: Rows left out beyond MAX_ROWS, and events that were malformed.
    rows_dropped: int = 0
    malformed: int = 0

    def as_record(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "messages": self.messages,
            "rows": [r.as_record() for r in self.rows],
            "rows_dropped": self.rows_dropped,
            "malformed": self.malformed,
        }


@dataclass
class _Exchange:
    base: str
    t: float
    response_s: float | None = None
    code: str | None = None
    unpaired: str = ""  # "Req" / "Res" / other name when not a pair


@dataclass
class _Run:
    label: str
    base: str
    exchanges: list[_Exchange] = field(default_factory=list)


def _ms(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    return f"{seconds * 1e3:.3g} ms"


def _message(ev: Event) -> tuple[float, str, str, str | None] | None:
    """(t, side, message, code) of a well-formed message event; None for anything else."""
    data = ev.data
    if (
        not isinstance(data, Mapping)
        or not isinstance(ev.t, int | float)
        or not math.isfinite(ev.t)
    ):
        return None
    name, side = data.get("message"), data.get("side")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not name.isprintable():
        return None
    if not isinstance(side, str) or len(side) > 16:
        return None
    code = data.get("code")
    code_text = str(code)[:MAX_CODE] if isinstance(code, str | int) else None
    return float(ev.t), side, name, code_text


def compact(events: Iterable[Event], rig_side: str | None = None) -> MessageSequence:
    """The compact sequence of the "v2g"/"message" events among `events`. `rig_side` is the side
    the rig's own stack plays ("evcc" when the DUT is an EVSE): its view is shown when both
    sides logged; otherwise the side of the first message."""
    parsed: list[tuple[float, str, str, str | None]] = []
    malformed = 0
    for n, ev in enumerate(events):
        if n >= MAX_EVENTS:
            break
        if ev.src != "v2g" or ev.name != "message":
            continue
        msg = _message(ev)
        if msg is None:
            malformed += 1
        else:
            parsed.append(msg)
    if not parsed:
        return MessageSequence(malformed=malformed)
    sides = {m[1] for m in parsed}
    side = rig_side if rig_side in sides else parsed[0][1]
    mine = sorted((m for m in parsed if m[1] == side), key=lambda m: m[0])

    exchanges: list[_Exchange] = []
    pending: _Exchange | None = None
    for t, _, name, code in mine:
        if name.endswith("Req"):
            if pending is not None:
                pending.unpaired = "Req"
                exchanges.append(pending)
            pending = _Exchange(name[:-3], t)
        elif name.endswith("Res"):
            base = name[:-3]
            if pending is not None and pending.base == base:
                pending.response_s = max(t - pending.t, 0.0)
                pending.code = code
                exchanges.append(pending)
                pending = None
            else:
                exchanges.append(_Exchange(base, t, code=code, unpaired="Res"))
        else:  # not a request/response element (e.g. an SDP message): shown by its name
            exchanges.append(_Exchange(name, t, code=code, unpaired=name))
    if pending is not None:
        pending.unpaired = "Req"
        exchanges.append(pending)

    runs: list[_Run] = []
    for ex in exchanges:
        if ex.unpaired in ("", "Req"):
            label = f"{ex.base}Req/Res"
        elif ex.unpaired == "Res":
            label = f"{ex.base}Res (no request)"
        else:
            label = ex.unpaired
        if runs and runs[-1].label == label:
            runs[-1].exchanges.append(ex)
        else:
            runs.append(_Run(label, ex.base, [ex]))

    rows = tuple(_row(r) for r in runs[:MAX_ROWS])
    return MessageSequence(
        rows=rows,
        messages=len(mine),
        side=side,
        rows_dropped=max(len(runs) - MAX_ROWS, 0),
        malformed=malformed,
    )


def _row(run: _Run) -> SequenceRow:
    ex = run.exchanges
    starts = [e.t for e in ex]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    responses = [e.response_s for e in ex if e.response_s is not None]
    codes: dict[str, int] = {}
    for e in ex:
        if e.code is not None and not e.code.startswith(OK_PREFIX):
            codes[e.code] = codes.get(e.code, 0) + 1
    return SequenceRow(
        t_first=starts[0],
        t_last=starts[-1],
        label=run.label,
        count=len(ex),
        period_s=statistics.median(gaps) if gaps else None,
        max_response_s=max(responses) if responses else None,
        unanswered=sum(1 for e in ex if e.unpaired == "Req"),
        codes=tuple(sorted(codes.items(), key=lambda kv: -kv[1])),
    )
