"""The ISO 15118-20 messages of a trace as the checks read them (no check of its own).

The runner writes every message the rig's engine sent or received as an event (src "v2g", name
"message") with its direction, element name, response code and decoded body. Checks read them here:
request/response pairs with their times, and the EV's announced values (RationalNumbers made
floats, discharge values in the rig's sign whatever the peer's convention).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rig.trace import Trace
from rig.v2g.frozen import fast_init

T = TypeVar("T")


@fast_init
@dataclass(frozen=True)
class Message:
    t: float
    sent: bool  # sent by the rig's engine (True) or received from the peer
    side: str  # the rig's engine: "evcc" or "secc"
    name: str
    code: str | None
    #: The event's data; the body is read from it when asked for (rig.dut.MessageData builds a
    #: message's JSON form on each read rather than holding ~4 kB per message).
    data: Mapping[str, Any]

    @property
    def body(self) -> Mapping[str, Any]:
        body = self.data.get("body")
        return body if isinstance(body, Mapping) else {}

    @property
    def is_request(self) -> bool:
        return self.name.endswith("Req")

    @property
    def content(self) -> Mapping[str, Any]:
        """The message's own fields (the JSON form is {element name: fields})."""
        inner = self.body.get(self.name)
        return inner if isinstance(inner, Mapping) else {}


class PerTrace(Generic[T]):
    """A one-entry cache of what was read from a trace: the checks of one run read the same trace
    in turn. Keyed by the trace's identity, held weakly (a finished run's trace, and what was read
    from it, are not kept alive: a 24 h day's trace is about a gigabyte), and its event count
    (a trace that grew is read again)."""

    def __init__(self) -> None:
        self._entry: tuple[weakref.ref[Trace], int, T] | None = None

    def get(self, trace: Trace) -> T | None:
        entry = self._entry
        if entry is not None and entry[0]() is trace and entry[1] == len(trace.events):
            return entry[2]
        return None

    def put(self, trace: Trace, value: T) -> T:
        self._entry = (weakref.ref(trace, self._drop), len(trace.events), value)
        return value

    def _drop(self, ref: weakref.ref[Trace]) -> None:
        if self._entry is not None and self._entry[0] is ref:
            self._entry = None


_MESSAGES: PerTrace[list[Message]] = PerTrace()


def messages(trace: Trace) -> list[Message]:
    found = _MESSAGES.get(trace)
    if found is None:
        found = _MESSAGES.put(trace, _read_messages(trace))
    return list(found)


def _read_messages(trace: Trace) -> list[Message]:
    out = []
    for e in trace.events:
        if e.src != "v2g" or e.name != "message":
            continue
        d = e.data
        out.append(
            Message(
                e.t,
                d.get("dir") == "tx",
                str(d.get("side", "")),
                str(d.get("message", "")),
                d.get("code"),
                d,
            )
        )
    return out


def response_name(request: str) -> str:
    return request[:-3] + "Res"


@fast_init
@dataclass(frozen=True)
class Exchange:
    request: Message
    response: Message | None  # None: never answered

    @property
    def response_time(self) -> float | None:
        return None if self.response is None else self.response.t - self.request.t


def exchanges(msgs: list[Message]) -> Iterator[Exchange]:
    """Each request with the response that answered it (the next message of the other direction
    with the matching name), in order."""
    pending: Message | None = None
    for m in msgs:
        if m.is_request:
            if pending is not None:
                yield Exchange(pending, None)
            pending = m
        elif pending is not None and m.name == response_name(pending.name):
            yield Exchange(pending, m)
            pending = None
    if pending is not None:
        yield Exchange(pending, None)


def rational(value: Any) -> float | None:
    """A RationalNumber's JSON form ({"Exponent", "Value"}) as a float."""
    if not isinstance(value, Mapping):
        return None
    try:
        return float(value["Value"]) * 10.0 ** int(value["Exponent"])
    except (KeyError, TypeError, ValueError):
        return None


def find(obj: Any, key: str) -> Any:
    """The first value of `key` anywhere in a nested JSON body (depth-first), or None."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        for value in obj.values():
            found = find(value, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = find(value, key)
            if found is not None:
                return found
    return None


@fast_init
@dataclass(frozen=True)
class EvAnnouncement:
    """What the EV announced at time t (rig signs: discharge values <= 0; W, A, Wh)."""

    t: float
    max_charge_power: float | None
    max_discharge_power: float | None
    max_discharge_current: float | None
    minimum_v2x_energy: float | None  # EVMinimumV2XEnergyRequest (energy to the reserve)


_ANNOUNCED = (
    "EVMaximumChargePower",
    "EVMaximumDischargePower",
    "EVMaximumDischargeCurrent",
    "EVMinimumV2XEnergyRequest",
)


def find_all(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The first value (depth-first) of each of `keys` in a nested JSON body, in one pass."""
    found: dict[str, Any] = {}
    _find_into(obj, keys, found)
    return found


def _find_into(item: Any, keys: tuple[str, ...], found: dict[str, Any]) -> bool:
    """Depth-first: the keys of `item` itself first, then its children in order; True once
    every key is found (a ChargeLoopReq's body is walked for each of the run's requests)."""
    if type(item) is dict or isinstance(item, Mapping):
        for key in keys:
            if key not in found and key in item:
                found[key] = item[key]
        if len(found) == len(keys):
            return True
        children: Any = item.values()
    elif type(item) is list:
        children = item
    else:
        return False
    for child in children:
        if (type(child) is dict or type(child) is list or isinstance(child, Mapping)) and (
            _find_into(child, keys, found)
        ):
            return True
    return False


def ev_announcements(msgs: list[Message]) -> list[EvAnnouncement]:
    """The EV's limits from its ChargeParameterDiscoveryReq and every ChargeLoopReq. Discharge
    limits are read as magnitudes whatever sign the EV wrote (both conventions exist)."""
    out = []
    for m in msgs:
        if not m.is_request or (
            "ChargeParameterDiscovery" not in m.name and "ChargeLoop" not in m.name
        ):
            continue
        values = find_all(m.content, _ANNOUNCED)
        dis_p = rational(values.get("EVMaximumDischargePower"))
        dis_i = rational(values.get("EVMaximumDischargeCurrent"))
        out.append(
            EvAnnouncement(
                m.t,
                rational(values.get("EVMaximumChargePower")),
                None if dis_p is None else -abs(dis_p),
                None if dis_i is None else -abs(dis_i),
                rational(values.get("EVMinimumV2XEnergyRequest")),
            )
        )
    return out
