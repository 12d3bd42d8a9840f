"""Python source of the generated JSON converters: one `_j_<Class>(value) -> body` per type class.

A converter returns what rig.v2g.exi.jsonform.body returns for the same instance (the JSON form
is specified there), with the walk decided at generation time: the keys are constants, a field of
a small all-required type (RationalNumberType, -2's PhysicalValueType) is a nested dict literal
in its parent's code, and the only dispatch left at run time is the member class of a
substitution group. The trace stores the JSON form of every message of a run (an hour of
ChargeLoop is 28,800 messages), so this is a hot path.

Instances whose fields hold their declared types are converted here; the rest are handed to the
generic walk (jsonform.body), which stays the reference: a required plain value that is None
(the generic walk leaves it out) and a substitution member of an unexpected class fall back
inside the converter, and anything else unexpected (a value of the wrong type raising) makes
jsonform.to_json redo the message with the generic walk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.v2g.exi.meta import FieldKind, Rep
from rig.v2g.exi.model import ClassModel, FieldModel, SimpleModel, element_key
from rig.v2g.exi.xsd import SchemaError

if TYPE_CHECKING:
    from rig.v2g.exi.codegen import ModuleWriter, Src

INLINE_DEPTH = 3  # how deep all-required types are written as literals into their parents
INLINE_FIELDS = 8  # and how many fields such a type may have (bounds the code they copy)


def is_value_wrapper(cm: ClassModel) -> bool:
    """A class with one CONTENT field and nothing else: its JSON body is the value itself."""
    return len(cm.fields) == 1 and cm.fields[0].kind == FieldKind.CONTENT


def _rep_expr(sm: SimpleModel, x: str) -> str:
    """The JSON value of simple value `x` (as jsonform's _out gives it for this datatype)."""
    rep = sm.datatype.rep
    if rep == Rep.HEX:
        return f"{x}.hex().upper()"
    if rep == Rep.BASE64:
        return f"_b2a({x}, newline=False).decode()"
    if rep == Rep.ENUM:
        # a member's value; a raw value raises here and the generic walk passes it through
        return f"{x}._value_"
    return x


def _plain(sm: SimpleModel) -> bool:
    """Whether the JSON value is the Python value unchanged (so None would pass unnoticed)."""
    return sm.datatype.rep not in (Rep.HEX, Rep.BASE64, Rep.ENUM)


class JsonWriter:
    """Generates `_j_<Class>(v)` for one type class."""

    def __init__(self, mw: ModuleWriter, cm: ClassModel, src: Src) -> None:
        self.mw = mw
        self.cm = cm
        self.src = src
        self.counter = 0

    def table(self, value: str) -> str:
        """A module-level table of the unit, numbered apart from the codec's tables (so that
        adding converters renumbers nothing of the encoders and decoders)."""
        self.mw.json_tables += 1
        name = f"_J{self.mw.json_tables}"
        self.mw.tables.append(f"{name} = {value}")
        return name

    def var(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    # -- what a value of a complex type becomes
    def literal_inlinable(self, cm: ClassModel, depth: int) -> bool:
        """A type whose body is one dict literal: every field required and single, of a simple
        type or of such a type itself (RationalNumberType, PhysicalValueType...)."""
        if depth >= INLINE_DEPTH or is_value_wrapper(cm) or len(cm.fields) > INLINE_FIELDS:
            return False
        if cm.base_key is not None or not cm.fields:
            return False
        for f in cm.fields:
            if f.min_occurs < 1 or f.is_list or f.kind == FieldKind.SUBSTITUTION:
                return False
            if f.simple is None:
                assert f.complex_key is not None
                sub = self.mw.mb.classes[f.complex_key]
                if not is_value_wrapper(sub) and not self.literal_inlinable(sub, depth + 1):
                    return False
        return True

    def complex_expr(self, f: FieldModel, x: str, depth: int, checks: list[str]) -> str:
        """The body of complex value `x` of field `f`. Loads that a literal needs are written
        now; the names of plain required values that must not be None go to `checks`."""
        assert f.complex_key is not None
        cm = self.mw.ref_class(f.complex_key)
        if is_value_wrapper(cm):
            # the generic walk gives the content as it is, None included
            sm = cm.fields[0].simple
            assert sm is not None
            return _rep_expr(sm, f"{x}.CONTENT")
        if self.literal_inlinable(cm, depth):
            return self.literal(cm, x, depth + 1, checks)
        return f"{self.mw.ref_codec(cm, '_j_')}({x})"

    def literal(self, cm: ClassModel, x: str, depth: int, checks: list[str]) -> str:
        items = []
        for f in cm.fields:
            y = self.var("y")
            self.src(f"{y} = {x}.{f.name}")
            if f.simple is not None:
                if _plain(f.simple):
                    checks.append(y)
                items.append(f"{f.name!r}: {_rep_expr(f.simple, y)}")
            else:
                items.append(f"{f.name!r}: {self.complex_expr(f, y, depth, checks)}")
        return "{" + ", ".join(items) + "}"

    def value_expr(self, f: FieldModel, x: str, checks: list[str]) -> str:
        """The JSON value of single (non-list, non-substitution) field value `x`."""
        if f.simple is not None:
            return _rep_expr(f.simple, x)
        return self.complex_expr(f, x, 0, checks)

    def list_expr(self, f: FieldModel, x: str) -> str:
        if f.simple is not None:
            if _plain(f.simple):
                return f"list({x})"
            return f"[{_rep_expr(f.simple, 'i')} for i in {x}]"
        assert f.complex_key is not None
        cm = self.mw.ref_class(f.complex_key)
        if is_value_wrapper(cm):
            sm = cm.fields[0].simple
            assert sm is not None
            return f"[{_rep_expr(sm, 'i.CONTENT')} for i in {x}]"
        return f"[{self.mw.ref_codec(cm, '_j_')}(i) for i in {x}]"

    def fallback_if_none(self, checks: list[str]) -> None:
        if checks:
            self.src(f"if {' or '.join(c + ' is None' for c in checks)}:")
            self.src("    return _rt.json_body(v)")

    # -- the function
    def write(self) -> None:
        cm = self.cm
        src = self.src
        src("")
        src(f"def _j_{cm.name}(v):")
        with src.indent():
            if is_value_wrapper(cm):
                sm = cm.fields[0].simple
                assert sm is not None
                src(f"return {_rep_expr(sm, 'v.CONTENT')}")
                return
            # the leading run of required single fields becomes one dict literal
            lead: list[str] = []
            checks: list[str] = []
            rest = list(enumerate(cm.fields))
            while rest:
                i, f = rest[0]
                if f.min_occurs < 1 or f.is_list or f.kind == FieldKind.SUBSTITUTION:
                    break
                rest.pop(0)
                x = f"x{i}"
                src(f"{x} = v.{f.name}")
                if f.simple is not None and _plain(f.simple):
                    checks.append(x)
                lead.append(f"{f.name!r}: {self.value_expr(f, x, checks)}")
            self.fallback_if_none(checks)
            src("d = {" + ", ".join(lead) + "}")
            for i, f in rest:
                self.field(f, f"x{i}")
            src("return d")

    def field(self, f: FieldModel, x: str) -> None:
        src = self.src
        src(f"{x} = v.{f.name}")
        if f.is_list:
            if f.kind == FieldKind.SUBSTITUTION:
                raise SchemaError(f"{self.cm.name}.{f.name}: repeated substitution groups")
            # an empty list is left out like an absent element (required or not)
            src(f"if {x}:")
            src(f"    d[{f.name!r}] = {self.list_expr(f, x)}")
            return
        src(f"if {x} is not None:")
        with src.indent():
            if f.kind == FieldKind.SUBSTITUTION:
                members = [self.mw.ref_class(element_key(m)) for m in f.members]
                index = self.table(
                    "{" + ", ".join(f"{c.name}: {i}" for i, c in enumerate(members)) + "}"
                )
                names = self.table("(" + "".join(f"{m.qname[1]!r}, " for m in f.members) + ")")
                # a list: lazy puts each member's compiled converter in place of its stub
                convert = self.table(
                    "[" + ", ".join(self.mw.ref_codec(c, "_j_") for c in members) + "]"
                )
                src(f"j = {index}.get({x}.__class__)")
                src("if j is None:")
                src("    return _rt.json_body(v)")
                src(f"d[{names}[j]] = {convert}[j]({x})")
                return
            checks: list[str] = []
            value = self.value_expr(f, x, checks)
            self.fallback_if_none(checks)
            src(f"d[{f.name!r}] = {value}")
