"""Seeded random messages for every message class of rig.v2g.exi, in the JSON form, for cross-checks.

The generator reflects over what the codec generates: each class's `_exi_fields` (FieldMeta:
element/attribute/substitution/content, occurrence bounds, SimpleSpec with representation and
facets) and `_exi_meta`. It writes the JSON form directly (keys are schema names, a substitution
group member under its own element name) and lets the codec judge it: a candidate that from_json()
or encode() refuses with an EXIError (e.g. both branches of a flattened xs:choice set) is drawn
again. Values lean on edges: bounds of every integer range, 7-bit group boundaries, shortest and
longest lengths (empty values only with allow_empty), characters outside ASCII and the BMP,
whitespace, XML-special characters.

Deterministic: the draw for (namespace, class, index) depends only on the seed and those names.
"""

from __future__ import annotations

import base64
import random
import string
import zlib
from dataclasses import dataclass
from typing import Any

# The abstract-typed heads of the control-mode substitution groups: CommonTypes.xsd declares
# CLReqControlMode/CLResControlMode with CLReqControlModeType/CLResControlModeType abstract="true",
# so a valid document never carries them (an instance would need xsi:type).
ABSTRACT_TYPED_HEADS = frozenset({"CLReqControlMode", "CLResControlMode"})


def abstract_typed(cls: type) -> bool:
    """A global element whose type is abstract (the -20 control-mode heads above; in DIN 70121
    and -2 the heads of EVChargeParameter, EVSEStatus, SASchedules, BodyElement and the like):
    no valid instance exists without xsi:type, so it is never drawn."""
    meta = cls._exi_meta  # type: ignore[attr-defined]
    return cls.__name__ in ABSTRACT_TYPED_HEADS or (meta.unsupported or "").startswith("its type")


# Characters a string value may hold. XML 1.0 Char (section 2.2) excludes most C0 controls,
# surrogates and U+FFFE/U+FFFF; xs:string values are sequences of Char, so nothing else is drawn.
_ASCII = string.ascii_letters + string.digits + " -_.:*/#@+=,;!?()[]{}<>&'\""
_WIDE = "éßü€中文😀𝄞\u00a0\u2028\ud7ff\ue000\ufffd"
_WHITESPACE = " \t\n\r"
_NCNAME_START = string.ascii_letters + "_"
_NCNAME_REST = string.ascii_letters + string.digits + "_-."

# Lists are kept short so that a message stays small; a small maxOccurs is sometimes hit exactly
# (the grammar after the last allowed occurrence differs from the one before it).
LIST_CAP = 3
EXACT_MAX_LIMIT = 8
STRING_CAP = 24
BINARY_CAP = 40


def _seed(seed: int, *parts: str) -> int:
    return zlib.crc32("\x00".join(parts).encode(), seed)


def _int_edges(lo: int, hi: int) -> list[int]:
    edges = {lo, hi, lo + 1, hi - 1, 0, 1, -1, 127, 128, 16383, 16384, 2**31 - 1, -(2**31)}
    edges |= {2**32 - 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1}
    return sorted(e for e in edges if lo <= e <= hi)


@dataclass
class Draw:
    """One random walk over a class tree."""

    rng: random.Random
    optional_p: float = 0.5
    depth_cap: int = 12
    # The peer writes an empty string or binary value as an element without content (a
    # second-level EE instead of CH); cases with empty values are drawn only when asked for.
    allow_empty: bool = False

    def integer(self, lo: int | None, hi: int | None) -> int:
        lo_ = lo if lo is not None else -(2**70)
        hi_ = hi if hi is not None else 2**70
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(_int_edges(lo_, hi_))
        if r < 0.7:  # small magnitudes are what real messages carry
            small_lo, small_hi = max(lo_, -1000), min(hi_, 1000)
            if small_lo <= small_hi:
                return self.rng.randint(small_lo, small_hi)
        return self.rng.randint(lo_, hi_)

    def length(self, lo: int | None, hi: int | None, cap: int) -> int:
        lo_ = lo or (0 if self.allow_empty else 1)
        hi_ = hi if hi is not None else max(lo_, cap)
        if hi_ - lo_ > cap and self.rng.random() < 0.85:
            hi_ = lo_ + cap
        if self.rng.random() < 0.25:
            return self.rng.choice((lo_, hi_))
        return self.rng.randint(lo_, hi_)

    def text(self, spec: Any) -> str:
        n = self.length(spec.min_length, spec.max_length, STRING_CAP)
        if spec.name == "xs:ID":  # an NCName (XML Namespaces 1.0): what an Id attribute may hold
            n = max(n, 1)
            return self.rng.choice(_NCNAME_START) + "".join(
                self.rng.choice(_NCNAME_REST) for _ in range(n - 1)
            )
        pool = _ASCII
        r = self.rng.random()
        if r < 0.25:
            pool = _ASCII + _WIDE
        elif r < 0.35:
            pool = _ASCII + _WHITESPACE
        return "".join(self.rng.choice(pool) for _ in range(n))

    def simple(self, spec: Any) -> Any:
        rep = spec.rep.value
        if rep == "boolean":
            return self.rng.random() < 0.5
        if rep in ("nbit", "uint", "int"):
            return self.integer(spec.lo, spec.hi)
        if rep in ("hexBinary", "base64Binary"):
            raw = self.rng.randbytes(self.length(spec.min_length, spec.max_length, BINARY_CAP))
            return raw.hex().upper() if rep == "hexBinary" else base64.b64encode(raw).decode()
        if rep == "enum":
            return self.rng.choice(list(spec.enum)).value
        if rep == "string":
            return self.text(spec)
        raise ValueError(f"no generator for representation {rep!r} ({spec.name})")

    def occurrences(self, f: Any) -> int:
        hi = f.max_occurs
        if f.max_occurs == 1:
            if f.min_occurs == 1:
                return 1
            return 1 if self.rng.random() < self.optional_p else 0
        if 0 < hi <= EXACT_MAX_LIMIT and self.rng.random() < 0.1:
            return hi
        cap = LIST_CAP if hi < 0 else min(hi, LIST_CAP)
        return self.rng.randint(f.min_occurs, max(f.min_occurs, cap))

    def body(self, cls: type, depth: int = 0) -> Any:
        """JSON form of the content of an instance of `cls` (without the element wrapper)."""
        fields = cls._exi_fields  # type: ignore[attr-defined]
        if len(fields) == 1 and fields[0].kind.value == "content":
            # A global element of a simple type: its JSON body is the value itself.
            return self.simple(fields[0].simple)
        out: dict[str, Any] = {}
        for f in fields:
            kind = f.kind.value
            count = self.occurrences(f)
            if depth >= self.depth_cap and not f.required:
                count = 0
            if kind == "substitution":
                members = [(n, m) for n, m in f.members if not abstract_typed(m)]
                if count == 0 or not members:
                    continue
                name, member = self.rng.choice(members)
                out[name] = self.body(member, depth + 1)
                continue
            complex_typed = f.ref is not None
            values = [
                self.body(f.cls, depth + 1) if complex_typed else self.simple(f.simple)
                for _ in range(count)
            ]
            if not values:
                continue
            out[f.name] = values if f.is_list else values[0]
        return out


def element_name(cls: type) -> str:
    meta = cls._exi_meta  # type: ignore[attr-defined]
    return str(meta.element)


@dataclass(frozen=True)
class Generated:
    """A message our codec accepts, with its JSON form and our EXI stream."""

    ns: str
    element: str
    index: int
    message: Any
    json: dict[str, Any]
    exi: bytes
    attempts: int


def generate(
    exi: Any,
    ns: str,
    cls: type,
    index: int,
    seed: int,
    attempts: int = 200,
    allow_empty: bool = False,
) -> Generated | None:
    """Draw #index of a valid `cls` message, or None when no draw was valid in `attempts`."""
    name = element_name(cls)
    rng = random.Random(_seed(seed, ns, name, str(index)))
    for attempt in range(1, attempts + 1):
        draw = Draw(rng, optional_p=rng.choice((0.2, 0.5, 0.8)), allow_empty=allow_empty)
        candidate = {name: draw.body(cls)}
        try:
            message = exi.from_json(ns, candidate)
            data = exi.encode(message, ns)
        except exi.EXIError:
            continue
        return Generated(ns, name, index, message, exi.to_json(message), data, attempt)
    return None


def generate_document(
    exi: Any,
    ns: str,
    member: str,
    index: int,
    seed: int,
    attempts: int = 200,
) -> Generated | None:
    """Draw #index of a valid DIN 70121 / -2 document: a V2G_Message whose Body holds `member`
    (a message element such as "CurrentDemandReq"), the only kind of document these sets send.
    None when no draw was valid in `attempts`."""
    types = exi.message_types(ns)
    root = types["V2G_Message"]
    fields = {f.name: f for f in root._exi_fields}
    header_cls = fields["Header"].cls
    body_field = next(f for f in fields["Body"].cls._exi_fields if f.name == "BodyElement")
    member_cls = dict(body_field.members)[member]
    rng = random.Random(_seed(seed, ns, "V2G_Message", member, str(index)))
    for _ in range(attempts):
        draw = Draw(rng, optional_p=rng.choice((0.2, 0.5, 0.8)))
        candidate = {
            "V2G_Message": {
                "Header": draw.body(header_cls, 1),
                "Body": {member: draw.body(member_cls, 2)},
            }
        }
        try:
            message = exi.from_json(ns, candidate)
            data = exi.encode(message, ns)
        except exi.EXIError:
            continue
        return Generated(ns, "V2G_Message", index, message, exi.to_json(message), data, 1)
    return None


def body_members(exi: Any, ns: str) -> list[str]:
    """The message elements of a DIN 70121 / -2 Body (the BodyElement substitution group), in
    event-code order, without the heads whose type is abstract (no valid instance)."""
    root = exi.message_types(ns)["V2G_Message"]
    body = next(f for f in root._exi_fields if f.name == "Body").cls
    field = next(f for f in body._exi_fields if f.name == "BodyElement")
    return [name for name, cls in field.members if not abstract_typed(cls)]
