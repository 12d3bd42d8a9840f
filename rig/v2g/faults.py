"""Fault injection on the message level: an Engine that wraps the rig's engine (EVCC or SECC) and
alters, holds back, adds or withholds what it sends, as the rules of a test plan say.

    injector = FaultInjector(evcc, [FaultRule(FaultKind.DROP, "DC_ChargeLoopReq", nth=3)],
                             rng=random.Random(seed))
    Connection(injector, link, scheduler, recorder=trace.append)    # in place of the engine

It sits between the engine and the connection layer (rig.v2g.connection), so it works the same
over any transport (memory, TCP, TLS below) and for either side. Each FaultRule says which of the
engine's outgoing messages it takes (element name or "*", the nth occurrence, a time window on
the run's timeline, how many) and what it does to them (FaultKind):

- DELAY: the frame goes out `delay` s later (a timer of the injector's own). Frames the engine
  sends meanwhile are not held behind it: this is a late message, not a stalled stream.
- DROP: the frame is never sent.
- CORRUPT: `bits` bits flipped at positions drawn from the injector's seeded RNG, in the EXI body
  only (the 8-byte V2GTP header too with `header=True`). The trace keeps the message as meant;
  the raw frame is the damaged one.
- TRUNCATE: only the first `keep` bytes of the frame go out (the peer waits for the rest).
- REORDER: the frame is held until the engine's next frame has gone out, then follows it; with
  one request outstanding at a time that next frame may never come, so after `hold` s the frame
  goes out anyway and the Event says so (`released_after_hold`).
- DUPLICATE: the frame goes out twice in a row.
- WRONG_VALUE: `field` (a dotted path, "CLReqControlMode.EVMaximumDischargePower"; a list item
  as "Name[2]"; a substitution member may be named to pick one variant) is set to `value` in the
  typed message, which is encoded again: a valid EXI message with a wrong value, not bit damage.
  An optional field the message left out is added. `value` is the JSON form (rig.v2g.exi
  to_json) of the field's type, checked against the schema's ranges at construction; for a
  RationalNumber a plain number is taken in SI and goes on the wire as that number (no
  discharge sign convention applied). A match whose variant has no such field is reported
  ("fault_not_applicable") and goes out unchanged.
- OUT_OF_SEQUENCE: the message named by `send` (any -20 request or response with a template
  below) is built with the session's SessionID and sent before the matched frame (or instead of
  it with `replace=True`). Templates carry plausible values (rig's own choice) in the variant of
  the session's service and control mode, as far as the traffic has shown them (DC_BPT and
  Dynamic until it has).
- SILENCE: from the match on the engine sends nothing more, the matched frame included, and its
  own Close is withheld too: the peer sees a connection that stays open and says nothing. The
  engine still hears the peer (its inputs are not touched), so its own timeouts still run and it
  may end its session inside while the link stays open until the peer gives up.
- CLOSE: the connection is closed at the match, in place of sending the matched frame; the
  engine hears of it as a lost connection.

Several rules may take the same frame: the content faults (WRONG_VALUE, then CORRUPT, then
TRUNCATE) stack; of the others, which decide whether, when and how often it goes out, the first
in rule order acts and the rest are reported ("fault_skipped") for that frame.

The peer's answers to frames the engine did not send (the injected request of OUT_OF_SEQUENCE,
the second copy of a DUPLICATE request) would confuse the engine, so incoming bytes are cut into
V2GTP frames (rig.v2g.v2gtp.FrameReader) and, while such a request is outstanding, each incoming
response is matched to the requests on the wire: the peer answers in order, so a response is the
answer to the oldest request it names (or to the oldest of all when it names none or does not
decode), and the requests before that one are taken as never to be answered. An answer to an
injected one is kept from the engine and output as a Received (the trace records it) after an
Event "fault_response_held". Everything else reaches the engine unchanged, as whole frames; a
partial frame left when the link ends is handed over before the loss, and once the stream's
framing is broken (a bad header) every byte goes to the engine as it comes, for it to judge.

Events: "fault_injected" for every applied fault, when its frame went out (or would have):
{"kind", "rule" (index in the rule list), "message", "nth" (the rule's count of matches),
"t_matched", "t_sent" (when the faulted frame, or for OUT_OF_SEQUENCE the injected one, went
out; None when nothing went out), and the kind's details}; "fault_not_applicable" (a match the fault could not
be applied to: the field is absent from this message, keep >= the frame length, ...);
"fault_skipped" (a second delivery fault on a frame another rule already took);
"fault_suppressed" (a frame or Close withheld by SILENCE); "fault_response_held";
"fault_rx_unframed" (the incoming stream lost its framing: bytes now go straight through);
"fault_not_applied" once per rule that never took effect, when the engine's session ends.
Timer names starting with TIMER_PREFIX are the injector's and never reach the engine.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import math
import random
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from functools import cache
from typing import Any

from rig.v2g.engine import CancelTimer, Close, Engine, Event, Output, Received, Send, StartTimer
from rig.v2g.exi import EXIDecodeError, EXIEncodeError, ac, app, common, dc, message_types
from rig.v2g.exi.jsonform import body as json_body
from rig.v2g.exi.jsonform import from_body
from rig.v2g.exi.meta import FieldKind, FieldMeta, Rep, SimpleSpec
from rig.v2g.messages import (
    NAMESPACE_SET,
    RationalRangeError,
    Request,
    ResponseCode,
    code_name,
    decode_payload,
    encode_frame,
    failed_response,
    message_name,
    namespace_of,
    request_answered_by,
    request_of,
    to_rational,
)
from rig.v2g.messages import header as message_header
from rig.v2g.v2gtp import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_SIZE,
    SESSION_PAYLOAD_TYPES,
    FrameReader,
    PayloadType,
    V2GTPError,
)
from rig.v2g.vocabulary import ControlMode, Service

#: A rule's `message` that matches every outgoing message.
ANY = "*"
#: Timers of the injector (DELAY, REORDER) are named with this prefix.
TIMER_PREFIX = "fault."
#: Requests on the wire remembered for matching answers (older ones are taken as unanswered).
MAX_OUTSTANDING = 32


class FaultKind(StrEnum):
    """What a rule does to the frames it matches (see the module docstring)."""

    DELAY = "delay"
    DROP = "drop"
    CORRUPT = "corrupt"
    TRUNCATE = "truncate"
    REORDER = "reorder"
    DUPLICATE = "duplicate"
    WRONG_VALUE = "wrong_value"
    OUT_OF_SEQUENCE = "out_of_sequence"
    SILENCE = "silence"
    CLOSE = "close"


K = FaultKind

#: Faults that change the frame's bytes; they apply in this order and stack.
_CONTENT_KINDS = (K.WRONG_VALUE, K.CORRUPT, K.TRUNCATE)

#: The kind parameters each kind takes (every other one must keep its default).
_PARAMETERS: Mapping[FaultKind, frozenset[str]] = {
    K.DELAY: frozenset({"delay"}),
    K.DROP: frozenset(),
    K.CORRUPT: frozenset({"bits", "header"}),
    K.TRUNCATE: frozenset({"keep"}),
    K.REORDER: frozenset({"hold"}),
    K.DUPLICATE: frozenset(),
    K.WRONG_VALUE: frozenset({"field", "value"}),
    K.OUT_OF_SEQUENCE: frozenset({"send", "replace"}),
    K.SILENCE: frozenset(),
    K.CLOSE: frozenset(),
}
_REQUIRED: Mapping[FaultKind, tuple[str, ...]] = {
    K.DELAY: ("delay",),
    K.CORRUPT: ("bits",),
    K.TRUNCATE: ("keep",),
    K.REORDER: ("hold",),
    K.WRONG_VALUE: ("field", "value"),
    K.OUT_OF_SEQUENCE: ("send",),
}
_KIND_PARAMETER_DEFAULTS: Mapping[str, Any] = {
    "delay": None,
    "bits": None,
    "header": False,
    "keep": None,
    "field": None,
    "value": None,
    "send": None,
    "replace": False,
    "hold": None,
}


class FaultRuleError(ValueError):
    """A rule that cannot be applied as written; `attribute` names the FaultRule attribute at
    fault (for the plan's file:line), the message says what is wrong with it."""

    def __init__(self, attribute: str, message: str) -> None:
        super().__init__(f"{attribute}: {message}")
        self.attribute = attribute
        self.reason = message


# --- the messages rules may name -----------------------------------------------------------------

#: Element names of the -20 messages (and the handshake's) an engine of the rig sends or receives.
MESSAGE_NAMES: frozenset[str] = frozenset(name for r in Request for name in (r.value, r.response))


@cache
def _message_class(name: str) -> type:
    for payload_type in SESSION_PAYLOAD_TYPES:
        classes: Mapping[str, Any] = message_types(NAMESPACE_SET[payload_type])
        if name in classes:
            cls: type = classes[name]
            return cls
    raise KeyError(name)  # every name of MESSAGE_NAMES has a class (a test pins it)


# --- field paths (WRONG_VALUE) -------------------------------------------------------------------

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


@dataclass(frozen=True, slots=True)
class _Step:
    """One step of a field path: an attribute, an item of a list, a substitution member."""

    name: str
    index: int | None = None
    member: str | None = None  # substitution field: act only on this member element


class _NotApplicable(Exception):
    """The fault cannot be applied to this instance of the message (reason in the message)."""


def _fields_of(cls: type) -> tuple[FieldMeta, ...]:
    return getattr(cls, "_exi_fields", ())


def _encodable(cls: type) -> bool:
    meta = getattr(cls, "_exi_meta", None)
    return meta is not None and meta.unsupported is None


def _element_of(cls: type) -> str | None:
    meta = getattr(cls, "_exi_meta", None)
    return None if meta is None else meta.element


def _resolve_path(message: str, path: str) -> tuple[tuple[_Step, ...], list[FieldMeta]]:
    """The steps of `path` in message `message`, and the FieldMeta(s) of its last field (one per
    variant it exists in); FaultRuleError("field", ...) where the schema has no such field."""
    if not path:
        raise FaultRuleError("field", "empty field path")
    segments = path.split(".")
    candidates: list[type] = [_message_class(message)]
    where = message
    steps: list[_Step] = []
    i = 0
    while True:
        seg = segments[i]
        m = _SEGMENT.fullmatch(seg)
        if m is None:
            raise FaultRuleError("field", f"{seg!r} in {path!r} is not a field name (or Name[i])")
        name, index = m.group(1), None if m.group(2) is None else int(m.group(2))
        metas = [fm for cls in candidates for fm in _fields_of(cls) if fm.name == name]
        if not metas:
            known = sorted({fm.name for cls in candidates for fm in _fields_of(cls)})
            raise FaultRuleError(
                "field",
                f"{where} has no field {name!r} (its fields: {', '.join(known) or 'none'})",
            )
        fm = metas[0]
        if index is not None and not fm.is_list:
            raise FaultRuleError("field", f"{where}.{name} is not a repeated element: no [{index}]")
        member = None
        if fm.kind is FieldKind.SUBSTITUTION and i + 1 < len(segments):
            names = {n for f in metas for n, _ in f.members}
            if segments[i + 1] in names:
                member = segments[i + 1]
                i += 1
        steps.append(_Step(name, index, member))
        where = f"{where}.{name}" if member is None else f"{where}.{name}.{member}"
        i += 1
        if i == len(segments):
            return tuple(steps), metas
        if fm.is_list and index is None:
            raise FaultRuleError("field", f"{where} is a list: name an item, {name}[0]")
        below: list[type] = []
        for f in metas:
            if f.kind is FieldKind.SUBSTITUTION:
                below.extend(c for n, c in f.members if member is None or n == member)
            elif f.ref is not None:
                below.append(f.cls)
            else:
                raise FaultRuleError("field", f"{where} is a simple value: nothing is below it")
        candidates = list(dict.fromkeys(below))


def _same_shape(a: FieldMeta, b: FieldMeta) -> bool:
    return (a.kind, a.ref, a.simple, a.is_list, a.member_refs) == (
        b.kind,
        b.ref,
        b.simple,
        b.is_list,
        b.member_refs,
    )


def _typed_value(steps: tuple[_Step, ...], metas: list[FieldMeta], value: Any) -> Any:
    """`value` (JSON form, or a plain number for a RationalNumber) as the field's typed value;
    FaultRuleError("value", ...) for a value of the wrong shape or outside the schema's range."""
    fm = metas[0]
    if any(not _same_shape(fm, other) for other in metas[1:]):
        raise FaultRuleError(
            "field", "the field differs between the message's variants: name the variant"
        )
    last = steps[-1]
    try:
        if fm.is_list and last.index is None:
            if not isinstance(value, list):
                raise FaultRuleError("value", f"{fm.name} is a list: give a list")
            most = fm.max_occurs if fm.max_occurs >= 0 else len(value)
            if not fm.min_occurs <= len(value) <= most:
                raise FaultRuleError(
                    "value", f"{fm.name} takes {fm.min_occurs} to {fm.max_occurs} items"
                )
            return [_typed_item(fm, last.member, item) for item in value]
        return _typed_item(fm, last.member, value)
    except EXIEncodeError as e:
        where = ".".join(e.path)
        raise FaultRuleError("value", f"{where + ': ' if where else ''}{e.message}") from None


def _typed_item(fm: FieldMeta, member: str | None, value: Any) -> Any:
    if fm.kind is FieldKind.SUBSTITUTION:
        # an abstract head (CLReqControlMode itself) cannot be encoded: not a choice
        members = {n: c for n, c in fm.members if _encodable(c)}
        if member is None:
            if not isinstance(value, dict) or len(value) != 1:
                raise FaultRuleError(
                    "value",
                    f"{fm.name} holds one of {', '.join(members)}: give {{member name: body}}",
                )
            ((member, value),) = value.items()
            if member not in members:
                raise FaultRuleError("value", f"{member!r} is not one of {', '.join(members)}")
        typed = from_body(members[member], value)
        _check_facets(typed)
        return typed
    if fm.simple is not None:
        return _scalar(fm.simple, value)
    cls = fm.cls
    if cls.__name__ == "RationalNumberType" and _is_number(value):
        try:
            return to_rational(float(value))
        except RationalRangeError as e:
            raise FaultRuleError("value", str(e)) from None
    typed = from_body(cls, value)
    _check_facets(typed)
    return typed


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _scalar(spec: SimpleSpec, raw: Any) -> Any:
    """A JSON scalar as the typed value of `spec`, within its facets."""
    rep = spec.rep
    value: Any
    if rep is Rep.BOOLEAN:
        if not isinstance(raw, bool):
            raise FaultRuleError("value", f"{spec.name} takes true or false, not {raw!r:.40}")
        return raw
    if rep in (Rep.NBIT, Rep.UINT, Rep.INT):
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise FaultRuleError("value", f"{spec.name} takes an integer, not {raw!r:.40}")
        value = raw
    elif rep is Rep.STRING:
        if not isinstance(raw, str):
            raise FaultRuleError("value", f"{spec.name} takes a string, not {raw!r:.40}")
        value = raw
    elif rep is Rep.HEX:
        try:
            value = bytes.fromhex(raw)
        except (TypeError, ValueError):
            raise FaultRuleError(
                "value", f"{spec.name} takes hex digits, not {raw!r:.40}"
            ) from None
    elif rep is Rep.BASE64:
        try:
            value = base64.b64decode(raw, validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise FaultRuleError("value", f"{spec.name} takes base64, not {raw!r:.40}") from None
    else:  # Rep.ENUM
        try:
            return spec.enum(raw)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in spec.enum)
            raise FaultRuleError("value", f"{raw!r:.40} is not one of {allowed}") from None
    problem = _facet_problem(spec, value)
    if problem:
        raise FaultRuleError("value", problem)
    return value


def _facet_problem(spec: SimpleSpec, x: Any) -> str | None:
    if isinstance(x, int) and not isinstance(x, bool):
        if (spec.lo is not None and x < spec.lo) or (spec.hi is not None and x > spec.hi):
            return f"{x} is outside {spec.name}'s range {spec.lo}..{spec.hi}"
    elif isinstance(x, (str, bytes)):
        n = len(x)
        if (spec.min_length is not None and n < spec.min_length) or (
            spec.max_length is not None and n > spec.max_length
        ):
            return f"length {n} is outside {spec.name}'s {spec.min_length}..{spec.max_length}"
    return None


def _check_facets(obj: Any, depth: int = 0) -> None:
    """Raise FaultRuleError for a simple value anywhere inside `obj` outside its facets (the
    JSON form checks types and presence; ranges are the encoder's business, checked here early)."""
    if depth > 32:
        raise FaultRuleError("value", "nested too deep")
    for fm in _fields_of(type(obj)):
        x = getattr(obj, fm.name)
        if x is None:
            continue
        for item in x if fm.is_list else (x,):
            if fm.simple is not None:
                problem = _facet_problem(fm.simple, item)
                if problem:
                    raise FaultRuleError("value", f"{fm.name}: {problem}")
            else:
                _check_facets(item, depth + 1)


def _set_field(obj: Any, steps: tuple[_Step, ...], value: Any) -> tuple[Any, Any]:
    """A copy of `obj` with the field at `steps` set to `value`, and the value it had;
    _NotApplicable when this instance has no such field (another variant, an absent parent)."""
    step = steps[0]
    if not any(fm.name == step.name for fm in _fields_of(type(obj))):
        raise _NotApplicable(f"{_element_of(type(obj)) or type(obj).__name__} has no {step.name}")
    current = getattr(obj, step.name)
    child = current
    if step.index is not None:
        if current is None or step.index >= len(current):
            size = 0 if current is None else len(current)
            raise _NotApplicable(f"{step.name} has {size} item(s), no [{step.index}]")
        child = current[step.index]
    if step.member is not None and child is not None and _element_of(type(child)) != step.member:
        raise _NotApplicable(f"{step.name} is {_element_of(type(child))}, not {step.member}")
    if len(steps) == 1:
        new_child, old = value, child
    else:
        if child is None:
            raise _NotApplicable(f"{step.name} is absent from this message")
        new_child, old = _set_field(child, steps[1:], value)
    new: Any = new_child
    if step.index is not None:
        items = list(current)
        items[step.index] = new_child
        new = items
    return dataclasses.replace(obj, **{step.name: new}), old


def _json_of(x: Any) -> Any:
    """A typed field value in JSON form, for the fault's Event."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, list):
        return [_json_of(i) for i in x]
    if isinstance(x, bytes):
        return x.hex().upper()
    if isinstance(x, enum.Enum):
        return x.value
    element = _element_of(type(x))
    content = json_body(x)
    # an element class here is a substitution member: known by its element name in JSON form
    return content if element is None else {element: content}


# --- the rule ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Which outgoing messages of the rig's engine a fault takes, and what it does to them.

    `message` is an element name ("DC_ChargeLoopReq") or "*"; `nth` the 1-based occurrence
    (None: from the first); `window` (t0, t1) a span of the run's timeline, t0 <= t < t1 (with
    nth: the nth match inside the window); `count` how many consecutive matches from there the
    fault takes. Kind parameters: `delay` (DELAY, s), `bits` and `header` (CORRUPT), `keep`
    (TRUNCATE, bytes), `field` and `value` (WRONG_VALUE), `send` and `replace`
    (OUT_OF_SEQUENCE), `hold` (REORDER, s). Checked at construction: FaultRuleError names the
    attribute and says what is wrong.
    """

    kind: FaultKind
    message: str = ANY
    nth: int | None = None
    window: tuple[float, float] | None = None
    count: int = 1
    delay: float | None = None
    bits: int | None = None
    header: bool = False
    keep: int | None = None
    field: str | None = None
    value: Any = None
    send: str | None = None
    replace: bool = False
    hold: float | None = None
    # resolved at construction (WRONG_VALUE)
    _steps: tuple[_Step, ...] = dc_field(default=(), init=False, repr=False, compare=False)
    _typed: Any = dc_field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = _kind_of(self.kind)
        object.__setattr__(self, "kind", kind)
        if not isinstance(self.message, str) or not (
            self.message == ANY or self.message in MESSAGE_NAMES
        ):
            raise FaultRuleError(
                "message",
                f"{self.message!r} is not an ISO 15118-20 message the rig's engines send "
                f'(an element name such as "DC_ChargeLoopReq", or "{ANY}")',
            )
        if self.nth is not None and not _positive_int(self.nth):
            raise FaultRuleError("nth", f"must be a whole number >= 1, not {self.nth!r}")
        if not _positive_int(self.count):
            raise FaultRuleError("count", f"must be a whole number >= 1, not {self.count!r}")
        if self.window is not None:
            w = self.window
            if (
                not isinstance(w, (tuple, list))
                or len(w) != 2
                or not all(_is_number(t) and math.isfinite(t) for t in w)
            ):
                raise FaultRuleError("window", f"must be (t0, t1) in seconds, not {w!r}")
            if not w[0] < w[1]:
                raise FaultRuleError("window", f"t0 must be before t1, not {tuple(w)}")
            object.__setattr__(self, "window", (float(w[0]), float(w[1])))
        self._check_parameters(kind)
        if kind is K.WRONG_VALUE:
            if self.message == ANY:
                raise FaultRuleError("message", "WRONG_VALUE needs one message name, not *")
            assert self.field is not None
            if not isinstance(self.field, str):
                raise FaultRuleError("field", f"must be a dotted path, not {self.field!r}")
            steps, metas = _resolve_path(self.message, self.field)
            object.__setattr__(self, "_steps", steps)
            object.__setattr__(self, "_typed", _typed_value(steps, metas, self.value))

    def _check_parameters(self, kind: FaultKind) -> None:
        used = _PARAMETERS[kind]
        for name, default in _KIND_PARAMETER_DEFAULTS.items():
            if name not in used and getattr(self, name) != default:
                raise FaultRuleError(name, f"is not a parameter of {kind.name}")
        for name in _REQUIRED.get(kind, ()):
            if getattr(self, name) is None:
                raise FaultRuleError(name, f"{kind.name} needs {name}")
        for name in ("delay", "hold"):
            x = getattr(self, name)
            if x is not None and not (_is_number(x) and math.isfinite(x) and x > 0):
                raise FaultRuleError(name, f"must be a number of seconds > 0, not {x!r}")
        if self.bits is not None and not _positive_int(self.bits):
            raise FaultRuleError("bits", f"must be a whole number >= 1, not {self.bits!r}")
        if self.keep is not None and not _positive_int(self.keep):
            raise FaultRuleError(
                "keep", f"must be a whole number >= 1 (nothing kept is DROP), not {self.keep!r}"
            )
        for name in ("header", "replace"):
            if not isinstance(getattr(self, name), bool):
                raise FaultRuleError(name, f"must be true or false, not {getattr(self, name)!r}")
        if self.send is not None and self.send not in TEMPLATES:
            raise FaultRuleError(
                "send",
                f"{self.send!r} is not a message the injector can build "
                f"(one of: {', '.join(sorted(TEMPLATES))})",
            )
        if kind in (K.SILENCE, K.CLOSE) and self.count != 1:
            raise FaultRuleError("count", f"{kind.name} happens once: count must be 1")

    def matches(self, name: str, now: float) -> bool:
        """Whether an outgoing message counts as a match (name and window; nth is counted by
        the injector)."""
        if self.message != ANY and name != self.message:
            return False
        w = self.window
        return w is None or w[0] <= now < w[1]

    def takes(self, occurrence: int) -> bool:
        """Whether the rule acts on its `occurrence`-th match (1-based)."""
        first = self.nth or 1
        return first <= occurrence < first + self.count

    @property
    def typed_value(self) -> Any:
        """WRONG_VALUE: `value` as the field's typed value (checked at construction)."""
        return self._typed

    def with_value(self, message: Any) -> tuple[Any, Any]:
        """WRONG_VALUE: the message with the field set, and the value it had (_NotApplicable)."""
        return _set_field(message, self._steps, self._typed)


def _kind_of(x: Any) -> FaultKind:
    """A FaultKind from itself, its value ("out_of_sequence") or its name ("OUT_OF_SEQUENCE")."""
    if isinstance(x, FaultKind):
        return x
    if isinstance(x, str):
        for kind in FaultKind:
            if x in (kind.value, kind.name):
                return kind
    allowed = ", ".join(k.value for k in FaultKind)
    raise FaultRuleError("kind", f"{x!r} is not one of {allowed}")


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


# --- templates (OUT_OF_SEQUENCE) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the injector has learned of the session from the traffic, for templates."""

    session_id: bytes = bytes(8)
    timestamp: int = 0
    service: Service = Service.DC_BPT
    control_mode: ControlMode = ControlMode.DYNAMIC
    parameter_set_id: int = 1
    evcc_id: str = "RIGFAULTINJECTOR"
    evse_id: str = "DE*RIG*E0001"

    def header(self) -> Any:
        return message_header(self.session_id, self.timestamp)


_R = to_rational
# Values the templates carry: a plausible 11 kW, 400 V bidirectional DC or AC vehicle (rig's own
# choice; only the message's place in the sequence is under test).
_POWER, _CURRENT, _VOLTAGE, _ENERGY = 11_000.0, 30.0, 400.0, 20_000.0


def _dc_cpd_req(s: SessionView) -> Any:
    fields = {
        "EVMaximumChargePower": _R(_POWER),
        "EVMinimumChargePower": _R(0),
        "EVMaximumChargeCurrent": _R(_CURRENT),
        "EVMinimumChargeCurrent": _R(0),
        "EVMaximumVoltage": _R(_VOLTAGE + 100),
        "EVMinimumVoltage": _R(_VOLTAGE - 250),
    }
    mode: Any
    if s.service.bidirectional:
        mode = dc.BPT_DC_CPDReqEnergyTransferMode(
            **fields,
            EVMaximumDischargePower=_R(_POWER),
            EVMinimumDischargePower=_R(0),
            EVMaximumDischargeCurrent=_R(_CURRENT),
            EVMinimumDischargeCurrent=_R(0),
        )
    else:
        mode = dc.DC_CPDReqEnergyTransferMode(**fields)
    return dc.DC_ChargeParameterDiscoveryReq(Header=s.header(), DC_CPDReqEnergyTransferMode=mode)


def _ac_cpd_req(s: SessionView) -> Any:
    fields = {"EVMaximumChargePower": _R(_POWER), "EVMinimumChargePower": _R(0)}
    mode: Any
    if s.service.bidirectional:
        mode = ac.BPT_AC_CPDReqEnergyTransferMode(
            **fields, EVMaximumDischargePower=_R(_POWER), EVMinimumDischargePower=_R(0)
        )
    else:
        mode = ac.AC_CPDReqEnergyTransferMode(**fields)
    return ac.AC_ChargeParameterDiscoveryReq(Header=s.header(), AC_CPDReqEnergyTransferMode=mode)


def _energy() -> dict[str, Any]:
    return {
        "EVTargetEnergyRequest": _R(_ENERGY),
        "EVMaximumEnergyRequest": _R(2 * _ENERGY),
        "EVMinimumEnergyRequest": _R(0),
    }


def _schedule_exchange_req(s: SessionView) -> Any:
    if s.control_mode is ControlMode.SCHEDULED:
        return common.ScheduleExchangeReq(
            Header=s.header(),
            MaximumSupportingPoints=1024,
            Scheduled_SEReqControlMode=common.Scheduled_SEReqControlModeType(),
        )
    return common.ScheduleExchangeReq(
        Header=s.header(),
        MaximumSupportingPoints=1024,
        Dynamic_SEReqControlMode=common.Dynamic_SEReqControlModeType(
            DepartureTime=7_200, **_energy()
        ),
    )


def _dc_charge_loop_req(s: SessionView) -> Any:
    bpt = s.service.bidirectional
    mode: Any
    if s.control_mode is ControlMode.SCHEDULED:
        target = {"EVTargetCurrent": _R(0), "EVTargetVoltage": _R(_VOLTAGE)}
        mode = (
            dc.BPT_Scheduled_DC_CLReqControlMode(**target)
            if bpt
            else dc.Scheduled_DC_CLReqControlMode(**target)
        )
    else:
        limits = {
            **_energy(),
            "EVMaximumChargePower": _R(_POWER),
            "EVMinimumChargePower": _R(0),
            "EVMaximumChargeCurrent": _R(_CURRENT),
            "EVMaximumVoltage": _R(_VOLTAGE + 50),
            "EVMinimumVoltage": _R(_VOLTAGE - 100),
        }
        mode = (
            dc.BPT_Dynamic_DC_CLReqControlMode(
                **limits,
                EVMaximumDischargePower=_R(_POWER),
                EVMinimumDischargePower=_R(0),
                EVMaximumDischargeCurrent=_R(_CURRENT),
            )
            if bpt
            else dc.Dynamic_DC_CLReqControlMode(**limits)
        )
    return dc.DC_ChargeLoopReq(
        Header=s.header(),
        MeterInfoRequested=False,
        EVPresentVoltage=_R(_VOLTAGE),
        CLReqControlMode=mode,
    )


def _ac_charge_loop_req(s: SessionView) -> Any:
    bpt = s.service.bidirectional
    mode: Any
    if s.control_mode is ControlMode.SCHEDULED:
        present = {"EVPresentActivePower": _R(0)}
        mode = (
            ac.BPT_Scheduled_AC_CLReqControlMode(**present)
            if bpt
            else ac.Scheduled_AC_CLReqControlMode(**present)
        )
    else:
        limits = {
            **_energy(),
            "EVMaximumChargePower": _R(_POWER),
            "EVMinimumChargePower": _R(0),
            "EVPresentActivePower": _R(0),
            "EVPresentReactivePower": _R(0),
        }
        mode = (
            ac.BPT_Dynamic_AC_CLReqControlMode(
                **limits, EVMaximumDischargePower=_R(_POWER), EVMinimumDischargePower=_R(0)
            )
            if bpt
            else ac.Dynamic_AC_CLReqControlMode(**limits)
        )
    return ac.AC_ChargeLoopReq(Header=s.header(), MeterInfoRequested=False, CLReqControlMode=mode)


_FINISHED = common.processingType.Finished

#: Request templates by element name: a valid message of the session's variant.
_REQUEST_TEMPLATES: Mapping[str, Callable[[SessionView], Any]] = {
    Request.SUPPORTED_APP_PROTOCOL: lambda s: app.supportedAppProtocolReq(
        AppProtocol=[
            app.AppProtocolType(
                ProtocolNamespace=namespace_of(s.service),
                VersionNumberMajor=1,
                VersionNumberMinor=0,
                SchemaID=1,
                Priority=1,
            )
        ]
    ),
    Request.SESSION_SETUP: lambda s: common.SessionSetupReq(Header=s.header(), EVCCID=s.evcc_id),
    Request.AUTHORIZATION_SETUP: lambda s: common.AuthorizationSetupReq(Header=s.header()),
    Request.AUTHORIZATION: lambda s: common.AuthorizationReq(
        Header=s.header(),
        SelectedAuthorizationService=common.authorizationType.EIM,
        EIM_AReqAuthorizationMode=common.EIM_AReqAuthorizationModeType(),
    ),
    Request.SERVICE_DISCOVERY: lambda s: common.ServiceDiscoveryReq(Header=s.header()),
    Request.SERVICE_DETAIL: lambda s: common.ServiceDetailReq(
        Header=s.header(), ServiceID=s.service.id
    ),
    Request.SERVICE_SELECTION: lambda s: common.ServiceSelectionReq(
        Header=s.header(),
        SelectedEnergyTransferService=common.SelectedServiceType(
            ServiceID=s.service.id, ParameterSetID=s.parameter_set_id
        ),
    ),
    Request.DC_CHARGE_PARAMETER_DISCOVERY: _dc_cpd_req,
    Request.AC_CHARGE_PARAMETER_DISCOVERY: _ac_cpd_req,
    Request.SCHEDULE_EXCHANGE: _schedule_exchange_req,
    Request.DC_CABLE_CHECK: lambda s: dc.DC_CableCheckReq(Header=s.header()),
    Request.DC_PRE_CHARGE: lambda s: dc.DC_PreChargeReq(
        Header=s.header(),
        EVProcessing=_FINISHED,
        EVPresentVoltage=_R(_VOLTAGE),
        EVTargetVoltage=_R(_VOLTAGE),
    ),
    Request.POWER_DELIVERY: lambda s: common.PowerDeliveryReq(
        Header=s.header(), EVProcessing=_FINISHED, ChargeProgress=common.chargeProgressType.Start
    ),
    Request.DC_CHARGE_LOOP: _dc_charge_loop_req,
    Request.AC_CHARGE_LOOP: _ac_charge_loop_req,
    Request.DC_WELDING_DETECTION: lambda s: dc.DC_WeldingDetectionReq(
        Header=s.header(), EVProcessing=_FINISHED
    ),
    Request.SESSION_STOP: lambda s: common.SessionStopReq(
        Header=s.header(), ChargingSession=common.chargingSessionType.Terminate
    ),
    Request.VEHICLE_CHECK_IN: lambda s: common.VehicleCheckInReq(
        Header=s.header(),
        EVCheckInStatus=common.evCheckInStatusType.CheckIn,
        ParkingMethod=common.parkingMethodType.Manual,
    ),
    Request.VEHICLE_CHECK_OUT: lambda s: common.VehicleCheckOutReq(
        Header=s.header(),
        EVCheckOutStatus=common.evCheckOutStatusType.CheckOut,
        CheckOutTime=s.timestamp,
    ),
    # CertificateInstallationReq and MeteringConfirmationReq carry signed data the rig cannot
    # make up: no template.
}


def _response_template(request: Request) -> Callable[[SessionView], Any]:
    def build(s: SessionView) -> Any:
        if request is Request.SUPPORTED_APP_PROTOCOL:
            return app.supportedAppProtocolRes(
                ResponseCode=app.responseCodeType.OK_SuccessfulNegotiation, SchemaID=1
            )
        code = (
            ResponseCode.OK_NewSessionEstablished
            if request is Request.SESSION_SETUP
            else ResponseCode.OK
        )
        return failed_response(
            request,
            s.header(),
            code,
            evse_id=s.evse_id,
            service=s.service,
            control_mode=s.control_mode,
        )

    return build


#: Every message OUT_OF_SEQUENCE can send: element name -> builder from the session's view.
TEMPLATES: Mapping[str, Callable[[SessionView], Any]] = {
    **{str(name): build for name, build in _REQUEST_TEMPLATES.items()},
    **{
        r.response: _response_template(r)
        for r in Request
        if r is not Request.CERTIFICATE_INSTALLATION
    },
}


def build_message(name: str, view: SessionView) -> Any:
    """The template message `name` for the session `view` describes (KeyError: no template)."""
    return TEMPLATES[name](view)


# --- what the injector did -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """One fault that took effect (the data of its "fault_injected" Event)."""

    rule: int
    kind: FaultKind
    message: str
    nth: int
    t_matched: float
    t_sent: float | None
    details: Mapping[str, Any] = dc_field(default_factory=dict)

    def event(self) -> Event:
        return Event(
            "fault_injected",
            {
                "kind": self.kind.value,
                "rule": self.rule,
                "message": self.message,
                "nth": self.nth,
                "t_matched": self.t_matched,
                "t_sent": self.t_sent,
                **self.details,
            },
        )


@dataclass(frozen=True, slots=True)
class HeldResponse:
    """A peer's answer to a request the injector sent on its own, kept from the engine."""

    time: float
    rule: int
    kind: FaultKind
    answers: str  # the injected request's element name
    name: str | None  # None: the frame did not decode
    code: str | None
    frame: bytes
    message: Any = None


@dataclass(slots=True)
class _Pending:
    """A fault decided at the match, reported when its frame goes out (or is lost)."""

    rule: int
    kind: FaultKind
    message: str
    nth: int
    t_matched: float
    details: dict[str, Any]

    def done(self, t_sent: float | None, **more: Any) -> AppliedFault:
        return AppliedFault(
            self.rule,
            self.kind,
            self.message,
            self.nth,
            self.t_matched,
            t_sent,
            {**self.details, **more},
        )


@dataclass(slots=True)
class _Held:
    """A frame held back by DELAY or REORDER until its timer (or the next frame)."""

    timer: str
    send: Send
    faults: list[_Pending]  # the holding fault last
    t_held: float


@dataclass(frozen=True, slots=True)
class _Outstanding:
    """A request on the wire, waiting for its answer; `injected` the rule that sent it on its
    own (its answer is kept from the engine), None for the engine's own."""

    request: str
    response: str
    injected: _Pending | None


# --- the injector --------------------------------------------------------------------------------


class FaultInjector:
    """The rig's engine with faults applied to what it sends (an rig.v2g.engine.Engine)."""

    def __init__(
        self,
        engine: Engine,
        rules: Sequence[FaultRule],
        *,
        rng: random.Random,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        for i, rule in enumerate(rules):
            if not isinstance(rule, FaultRule):
                raise TypeError(f"rules[{i}] is a {type(rule).__name__}, not a FaultRule")
        self.inner = engine
        self.rules: tuple[FaultRule, ...] = tuple(rules)
        self._rng = rng
        self._learned: dict[str, Any] = {}  # SessionView fields seen in the traffic
        #: Every fault that took effect, in the order of their Events.
        self.applied: list[AppliedFault] = []
        #: The peer's answers to injected requests, kept from the engine.
        self.held_responses: list[HeldResponse] = []
        self._seen = [0] * len(self.rules)  # matches per rule
        self._taken = [0] * len(self.rules)  # faults that took effect per rule
        self._reasons: list[str | None] = [None] * len(self.rules)  # why a match did not apply
        self._silenced_by: int | None = None
        self._held: dict[str, _Held] = {}
        self._reorder: list[str] = []  # timers of REORDER holds, oldest first
        self._serial = 0
        self._outstanding: deque[_Outstanding] = deque(maxlen=MAX_OUTSTANDING)
        self._reader = FrameReader(max_payload=max_payload, accepted=SESSION_PAYLOAD_TYPES)
        self._rx = bytearray()  # bytes received and not yet handed on (a partial frame)
        self._unframed = False
        self._reported = False

    # --- the Engine protocol ------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def start(self, now: float) -> list[Output]:
        out: list[Output] = []
        self._from_inner(self.inner.start(now), now, out)
        return out

    def receive_data(self, data: bytes, now: float) -> list[Output]:
        out: list[Output] = []
        if self._unframed:
            self._from_inner(self.inner.receive_data(data, now), now, out)
            return out
        self._rx += data
        try:
            frames = self._reader.feed(data)
        except V2GTPError as e:
            # The framing is lost: no answer can be told apart any more. The engine gets every
            # byte not yet handed on, and all that follows, and judges the stream itself.
            self._unframed = True
            raw, self._rx = bytes(self._rx), bytearray()
            out.append(Event("fault_rx_unframed", {"error": str(e)}))
            self._from_inner(self.inner.receive_data(raw, now), now, out)
            return out
        chunk = bytearray()
        for f in frames:
            del self._rx[: len(f.data)]
            held = self._answer_to_injected(f.payload_type, f.payload, f.data, now)
            if held is None:
                chunk += f.data
                continue
            if chunk:
                self._from_inner(self.inner.receive_data(bytes(chunk), now), now, out)
                chunk = bytearray()
            out.extend(held)
        if chunk:
            self._from_inner(self.inner.receive_data(bytes(chunk), now), now, out)
        return out

    def timer_expired(self, name: str, now: float) -> list[Output]:
        out: list[Output] = []
        if name.startswith(TIMER_PREFIX):
            held = self._held.pop(name, None)
            if held is not None:
                if name in self._reorder:
                    self._reorder.remove(name)
                self._release(held, now, out, overtaken_by=None)
            return out
        self._from_inner(self.inner.timer_expired(name, now), now, out)
        return out

    def connection_lost(self, reason: str, now: float) -> list[Output]:
        out: list[Output] = []
        if self._rx:
            # a frame cut short by the end of the link: the engine reports it as truncated
            partial, self._rx = bytes(self._rx), bytearray()
            self._from_inner(self.inner.receive_data(partial, now), now, out)
        self._from_inner(self.inner.connection_lost(reason, now), now, out)
        self._report_end(now, out)
        return out

    # --- what the engine sends ----------------------------------------------------------------

    def _from_inner(self, outputs: Sequence[Output], now: float, out: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Send):
                self._outgoing(o, now, out)
            elif isinstance(o, Close) and self._silenced_by is not None:
                out.append(
                    Event("fault_suppressed", {"rule": self._silenced_by, "close": o.reason})
                )
            else:
                out.append(o)
        if self.inner.finished:
            self._report_end(now, out)

    def _outgoing(self, send: Send, now: float, out: list[Output]) -> None:
        self._observe(send.message)
        if self._silenced_by is not None:
            out.append(Event("fault_suppressed", {"rule": self._silenced_by, "message": send.name}))
            return
        fired: list[tuple[int, FaultRule, int]] = []
        for i, rule in enumerate(self.rules):
            if rule.matches(send.name, now):
                self._seen[i] += 1
                if rule.takes(self._seen[i]):
                    fired.append((i, rule, self._seen[i]))
        if not fired:
            self._emit(send, [], now, out)
            self._release_reordered(send.name, now, out)
            return
        faults: list[_Pending] = []
        for kind in _CONTENT_KINDS:
            for i, rule, nth in fired:
                if rule.kind is kind:
                    send = self._alter(send, i, rule, nth, now, faults, out)
        delivery: tuple[int, FaultRule, int] | None = None
        for i, rule, nth in fired:
            if rule.kind in _CONTENT_KINDS:
                continue
            if delivery is None:
                delivery = (i, rule, nth)
            else:
                self._reasons[i] = f"rule {delivery[0]} took the same frame"
                out.append(
                    Event(
                        "fault_skipped",
                        {
                            "rule": i,
                            "kind": rule.kind.value,
                            "message": send.name,
                            "nth": nth,
                            "reason": self._reasons[i],
                        },
                    )
                )
        if delivery is None:
            self._emit(send, faults, now, out)
            self._release_reordered(send.name, now, out)
            return
        self._deliver(send, faults, delivery, now, out)

    def _alter(
        self,
        send: Send,
        i: int,
        rule: FaultRule,
        nth: int,
        now: float,
        faults: list[_Pending],
        out: list[Output],
    ) -> Send:
        """Apply one content fault (WRONG_VALUE, CORRUPT, TRUNCATE) to the frame."""
        details: dict[str, Any]
        frame = send.frame
        match rule.kind:
            case K.WRONG_VALUE:
                try:
                    message, old = rule.with_value(send.message)
                    payload_type, frame = encode_frame(message)
                except (_NotApplicable, EXIEncodeError) as e:
                    self._not_applicable(i, rule, send.name, nth, str(e), out)
                    return send
                details = {
                    "field": rule.field,
                    "value": _json_of(rule.typed_value),
                    "was": _json_of(old),
                }
                send = Send(frame, int(payload_type), send.name, message)
            case K.CORRUPT:
                start = 0 if rule.header else HEADER_SIZE * 8
                available = len(frame) * 8 - start
                assert rule.bits is not None
                n = min(rule.bits, available)
                if n <= 0:
                    self._not_applicable(i, rule, send.name, nth, "no bits to flip", out)
                    return send
                positions = sorted(self._rng.sample(range(start, start + available), n))
                damaged = bytearray(frame)
                for p in positions:
                    damaged[p >> 3] ^= 0x80 >> (p & 7)
                details = {"bits": positions, "header": rule.header}
                if n < rule.bits:
                    details["requested_bits"] = rule.bits
                send = Send(bytes(damaged), send.payload_type, send.name, send.message)
            case K.TRUNCATE:
                assert rule.keep is not None
                if rule.keep >= len(frame):
                    reason = f"keep={rule.keep} >= the frame's {len(frame)} bytes"
                    self._not_applicable(i, rule, send.name, nth, reason, out)
                    return send
                details = {"keep": rule.keep, "length": len(frame)}
                send = Send(frame[: rule.keep], send.payload_type, send.name, send.message)
            case _:
                raise AssertionError(f"{rule.kind} is not a content fault")
        faults.append(_Pending(i, rule.kind, send.name, nth, now, details))
        return send

    def _deliver(
        self,
        send: Send,
        faults: list[_Pending],
        delivery: tuple[int, FaultRule, int],
        now: float,
        out: list[Output],
    ) -> None:
        """Apply the one delivery fault of a frame (every kind but the content ones)."""
        i, rule, nth = delivery
        pending = _Pending(i, rule.kind, send.name, nth, now, {})
        match rule.kind:
            case K.DROP:
                for p in [*faults, pending]:
                    self._record(p.done(None), out)
            case K.DELAY | K.REORDER:
                self._serial += 1
                timer = f"{TIMER_PREFIX}{rule.kind.value}:{self._serial}"
                wait = rule.delay if rule.kind is K.DELAY else rule.hold
                assert wait is not None
                self._held[timer] = _Held(timer, send, [*faults, pending], now)
                if rule.kind is K.REORDER:
                    self._reorder.append(timer)
                out.append(StartTimer(timer, now + wait))
            case K.DUPLICATE:
                self._emit(send, faults, now, out)
                self._emit(send, [pending], now, out, injected=pending, details={"copies": 2})
                self._release_reordered(send.name, now, out)
            case K.OUT_OF_SEQUENCE:
                assert rule.send is not None
                view = self._view_for(send.message)
                try:
                    injected = build_message(rule.send, view)
                    payload_type, frame = encode_frame(injected)
                except (EXIEncodeError, ValueError) as e:  # a template bug: say so, send as is
                    self._not_applicable(i, rule, send.name, nth, f"template: {e}", out)
                    self._emit(send, faults, now, out)
                    return
                extra = Send(frame, int(payload_type), rule.send, injected)
                details = {
                    "sent": rule.send,
                    "replace": rule.replace,
                    "session_id": view.session_id.hex().upper(),
                }
                self._emit(extra, [pending], now, out, injected=pending, details=details)
                if rule.replace:
                    for p in faults:
                        self._record(p.done(None, replaced=True), out)
                else:
                    self._emit(send, faults, now, out)
                self._release_reordered(send.name, now, out)
            case K.SILENCE:
                self._silenced_by = i
                for p in [*faults, pending]:
                    self._record(p.done(None), out)
                # frames held for later go nowhere now either
                for timer in list(self._held):
                    self._lose(timer, now, out, "silenced")
            case K.CLOSE:
                reason = f"fault injection: rule {i} closes the connection at {send.name}"
                for p in faults:
                    self._record(p.done(None), out)
                self._record(pending.done(now, reason=reason), out)
                out.append(Close(reason))
            case _:
                raise AssertionError(f"{rule.kind} is not a delivery fault")

    def _emit(
        self,
        send: Send,
        faults: list[_Pending],
        now: float,
        out: list[Output],
        *,
        injected: _Pending | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Put a frame on the wire, with the Events of the faults it carries."""
        for p in faults:
            self._record(p.done(now, **(details or {})) if p is injected else p.done(now), out)
        out.append(send)
        request = request_of(send.name)
        if request is not None:
            self._outstanding.append(_Outstanding(send.name, request.response, injected))

    def _release(
        self, held: _Held, now: float, out: list[Output], *, overtaken_by: str | None
    ) -> None:
        holding = held.faults[-1]
        if holding.kind is K.REORDER:
            holding.details.update(
                overtaken_by=overtaken_by, released_after_hold=overtaken_by is None
            )
        holding.details["held"] = now - held.t_held
        self._emit(held.send, held.faults, now, out)

    def _release_reordered(self, overtaken_by: str, now: float, out: list[Output]) -> None:
        """The engine's next frame went out: the frames REORDER held follow it."""
        timers, self._reorder = self._reorder, []
        for timer in timers:
            held = self._held.pop(timer)
            out.append(CancelTimer(timer))
            self._release(held, now, out, overtaken_by=overtaken_by)

    def _lose(self, timer: str, now: float, out: list[Output], why: str) -> None:
        held = self._held.pop(timer)
        if timer in self._reorder:
            self._reorder.remove(timer)
        out.append(CancelTimer(timer))
        for p in held.faults:
            self._record(p.done(None, lost=why), out)

    def _record(self, applied: AppliedFault, out: list[Output]) -> None:
        self.applied.append(applied)
        self._taken[applied.rule] += 1
        out.append(applied.event())

    def _not_applicable(
        self, i: int, rule: FaultRule, name: str, nth: int, reason: str, out: list[Output]
    ) -> None:
        self._reasons[i] = reason
        out.append(
            Event(
                "fault_not_applicable",
                {"rule": i, "kind": rule.kind.value, "message": name, "nth": nth, "reason": reason},
            )
        )

    def _report_end(self, now: float, out: list[Output]) -> None:
        """The engine's session is over: held frames are lost; rules that never took effect
        are named."""
        if self._reported:
            return
        self._reported = True
        for timer in list(self._held):
            self._lose(timer, now, out, "session ended first")
        for i, rule in enumerate(self.rules):
            if self._taken[i]:
                continue
            seen = self._seen[i]
            reason = self._reasons[i] or (
                "no matching message" if not seen else f"{seen} match(es), none at nth={rule.nth}"
            )
            out.append(
                Event(
                    "fault_not_applied",
                    {
                        "rule": i,
                        "kind": rule.kind.value,
                        "message": rule.message,
                        "matches": seen,
                        "reason": reason,
                    },
                )
            )

    # --- what the peer sends ------------------------------------------------------------------

    def _answer_to_injected(
        self, payload_type: PayloadType, payload: bytes, frame: bytes, now: float
    ) -> list[Output] | None:
        """The outputs for an incoming frame that answers an injected request (kept from the
        engine), or None when the engine should have it."""
        outstanding = self._outstanding
        if not outstanding:
            return None
        if not any(o.injected is not None for o in outstanding):
            # only the engine's own requests on the wire: the answer is the oldest one's
            # (no need to decode: the engine will)
            outstanding.popleft()
            return None
        try:
            message: Any = decode_payload(payload_type, payload)
            name: str | None = message_name(message)
        except (EXIDecodeError, KeyError):
            message, name = None, None
        if name is not None:
            self._observe(message)
            if request_answered_by(name) is None:
                return None  # a request of the peer, not an answer
        # A peer answers in the order it was asked (one TCP stream, served in turn): this is the
        # answer to the oldest request it names, and the requests before that one will never be
        # answered. An answer that names none (or does not decode) is the oldest's.
        at = next((k for k, o in enumerate(outstanding) if o.response == name), 0)
        for _ in range(at):
            outstanding.popleft()
        entry = outstanding.popleft()
        if entry.injected is None:
            return None
        code = getattr(message, "ResponseCode", None)
        held = HeldResponse(
            now,
            entry.injected.rule,
            entry.injected.kind,
            entry.request,
            name,
            None if code is None else code_name(code),
            frame,
            message,
        )
        self.held_responses.append(held)
        data: dict[str, Any] = {
            "rule": held.rule,
            "kind": held.kind.value,
            "answers": held.answers,
            "message": name,
            "code": held.code,
        }
        if message is None:
            data["payload_hex"] = payload[:64].hex()
        out: list[Output] = [Event("fault_response_held", data)]
        if message is not None:
            out.append(Received(frame, int(payload_type), str(name), message))
        return out

    # --- what the traffic says about the session ----------------------------------------------

    @property
    def view(self) -> SessionView:
        """What the traffic has shown of the session so far (for the templates)."""
        return SessionView(**self._learned)

    def _observe(self, message: Any) -> None:
        """Learn SessionID, service and control mode from a message, for the templates."""
        changes = self._learned
        hdr = getattr(message, "Header", None)
        if hdr is not None:
            if any(hdr.SessionID):
                changes["session_id"] = hdr.SessionID
            changes["timestamp"] = hdr.TimeStamp
        name = type(message).__name__
        if name == "SessionSetupReq":
            changes["evcc_id"] = message.EVCCID
        elif name == "SessionSetupRes" and message.EVSEID:
            changes["evse_id"] = message.EVSEID
        elif name == "ServiceSelectionReq":
            selected = message.SelectedEnergyTransferService
            changes["parameter_set_id"] = selected.ParameterSetID
            if selected.ServiceID in _SERVICE_IDS:
                changes["service"] = Service.from_id(selected.ServiceID)
        elif name in ("ScheduleExchangeReq", "ScheduleExchangeRes"):
            dynamic = (
                message.Dynamic_SEReqControlMode
                if name == "ScheduleExchangeReq"
                else message.Dynamic_SEResControlMode
            )
            changes["control_mode"] = (
                ControlMode.DYNAMIC if dynamic is not None else ControlMode.SCHEDULED
            )
        elif name.endswith("_ChargeParameterDiscoveryReq") or name.endswith(
            "_ChargeParameterDiscoveryRes"
        ):
            mode = getattr(message, f"{name[:2]}_CPD{name[-3:]}EnergyTransferMode", None)
            if mode is not None:
                changes["service"] = _service_of(name[:2], type(mode).__name__)
        elif name.endswith("_ChargeLoopReq") or name.endswith("_ChargeLoopRes"):
            mode = getattr(message, "CLReqControlMode", None) or getattr(
                message, "CLResControlMode", None
            )
            if mode is not None:
                variant = type(mode).__name__
                changes["service"] = _service_of(name[:2], variant)
                changes["control_mode"] = (
                    ControlMode.DYNAMIC if "Dynamic" in variant else ControlMode.SCHEDULED
                )

    def _view_for(self, matched: Any) -> SessionView:
        """The view a template is built from: the matched message's header time if it has one."""
        hdr = getattr(matched, "Header", None)
        view = self.view
        return view if hdr is None else dataclasses.replace(view, timestamp=hdr.TimeStamp)


_SERVICE_IDS = frozenset(s.id for s in Service)


def _service_of(prefix: str, variant: str) -> Service:
    bpt = variant.startswith("BPT_")
    if prefix == "DC":
        return Service.DC_BPT if bpt else Service.DC
    return Service.AC_BPT if bpt else Service.AC
