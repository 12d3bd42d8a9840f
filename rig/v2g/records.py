"""JSON-able trace records of engine outputs: what the trace stores for each Send, Received, timer,
Event and Close (rig.trace writes them; this module only shapes them).

A message record carries the direction, element name, payload type (number and name), the whole
V2GTP frame in hex and the decoded message as rig.v2g.exi.to_json gives it, so a reader of the
trace sees both the bytes on the wire and what they meant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from rig.v2g.engine import CancelTimer, Close, Event, Output, Received, Send, StartTimer
from rig.v2g.exi import to_json
from rig.v2g.v2gtp import PayloadType


def record(output: Output, *, side: str | None = None, time: float | None = None) -> dict[str, Any]:
    """The JSON-able record of one engine output (`side`, `time`: added when given)."""
    rec: dict[str, Any]
    match output:
        case Send() | Received():
            rec = {
                "kind": "message",
                "direction": "sent" if isinstance(output, Send) else "received",
                "name": output.name,
                "payload_type": output.payload_type,
                "payload_type_name": _payload_type_name(output.payload_type),
                "hex": output.frame.hex(),
                "json": to_json(output.message),
            }
        case StartTimer():
            rec = {"kind": "start_timer", "name": output.name, "deadline": output.deadline}
        case CancelTimer():
            rec = {"kind": "cancel_timer", "name": output.name}
        case Event():
            rec = {"kind": "event", "name": output.name, "data": _jsonable(output.data)}
        case Close():
            rec = {"kind": "close", "reason": output.reason}
        case _:
            raise TypeError(f"not an engine output: {output!r}")
    if side is not None:
        rec["side"] = side
    if time is not None:
        rec["time"] = time
    return rec


def _payload_type_name(code: int) -> str | None:
    try:
        return PayloadType(code).name
    except ValueError:
        return None


def _jsonable(value: Any) -> Any:
    # Event data is meant to be JSON-able already; enums and bytes slip in easily, so convert
    # them rather than fail the trace.
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
