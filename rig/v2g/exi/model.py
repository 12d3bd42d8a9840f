"""The Python data model the generator emits: classes, fields and enums per schema namespace.

Every complex type used by an element becomes a frozen dataclass named after the type; every
global element becomes a class named after the element (a subclass of its type's class, or the
class itself for an anonymous type, or a one-field wrapper for a simple type). Fields follow the
effective content: attributes first (sorted like the grammar), then elements in particle order
(flattened: an element that may occur more than once is a list), then `CONTENT` for simple
content. An element particle whose declaration heads a substitution group is one field holding
an instance of one of the member element classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rig.v2g.exi.datatypes import Datatype, datatype
from rig.v2g.exi.grammar import (
    Content,
    GrammarBuilder,
    Kind,
    Terminal,
    TypeGrammar,
    effective_content,
)
from rig.v2g.exi.meta import FieldKind, Rep
from rig.v2g.exi.xsd import (
    UNBOUNDED,
    XS,
    ComplexType,
    ElementDecl,
    ModelGroup,
    Particle,
    QName,
    SchemaError,
    SchemaSet,
    SimpleType,
    Wildcard,
)

XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
ISO20 = "urn:iso:std:iso:15118:-20:"

# namespace URI -> generated module name
MODULE_OF_NAMESPACE = {
    "urn:iso:15118:2:2010:AppProtocol": "app",
    ISO20 + "CommonMessages": "common",
    ISO20 + "CommonTypes": "commontypes",
    ISO20 + "DC": "dc",
    ISO20 + "AC": "ac",
    ISO20 + "ACDP": "acdp",
    ISO20 + "WPT": "wpt",
    XMLDSIG: "xmldsig",
}
# DIN 70121 and ISO 15118-2 split one message set over four namespaces (MsgDef, MsgHeader,
# MsgBody, MsgDataTypes) whose local names never collide: one module per standard
DIN = "urn:din:70121:2012:"
ISO2 = "urn:iso:15118:2:2013:"
for _part in ("MsgDef", "MsgHeader", "MsgBody", "MsgDataTypes"):
    MODULE_OF_NAMESPACE[DIN + _part] = "din"
    MODULE_OF_NAMESPACE[ISO2 + _part] = "iso2"


def module_of(uri: str) -> str:
    if uri not in MODULE_OF_NAMESPACE:
        raise SchemaError(f"no generated module for namespace {uri!r}")
    return MODULE_OF_NAMESPACE[uri]


def _mul(a: int, b: int) -> int:
    if a == UNBOUNDED or b == UNBOUNDED:
        return 0 if (a == 0 or b == 0) else UNBOUNDED
    return a * b


def _add(a: int, b: int) -> int:
    return UNBOUNDED if UNBOUNDED in (a, b) else a + b


@dataclass
class SimpleModel:
    """A simple type as used by a field: its datatype and the name of its spec constant."""

    key: str  # unique name of the spec constant (per module)
    module: str
    type_name: str  # schema name for messages ("xs:unsignedLong", "percentValueType")
    datatype: Datatype
    enum_name: str | None  # class name of the enum (ENUM only)


@dataclass
class FieldModel:
    name: str
    kind: FieldKind
    qname: QName  # element or attribute qname; for SUBSTITUTION the head's
    min_occurs: int
    max_occurs: int
    simple: SimpleModel | None = None
    complex_key: QName | None = None  # key of the ClassModel of the value's type
    members: list[ElementDecl] = field(default_factory=list)

    @property
    def is_list(self) -> bool:
        return self.max_occurs == UNBOUNDED or self.max_occurs > 1

    def terminals(self) -> list[Terminal]:
        """The grammar terminals that carry this field."""
        if self.kind == FieldKind.ATTRIBUTE:
            return [Terminal(Kind.AT, self.qname[0], self.qname[1])]
        if self.kind == FieldKind.CONTENT:
            return [Terminal(Kind.CH)]
        if self.kind == FieldKind.SUBSTITUTION:
            return [Terminal(Kind.SE, m.qname[0], m.qname[1]) for m in self.members]
        return [Terminal(Kind.SE, self.qname[0], self.qname[1])]


@dataclass
class ClassModel:
    """One generated class."""

    key: QName  # type qname, or ("#element", uri + " " + local) for element classes
    name: str  # Python class name
    module: str
    type_name: str
    namespace: str
    fields: list[FieldModel]
    grammar: TypeGrammar
    element: ElementDecl | None = None  # global element classes
    base_key: QName | None = None  # element classes: the type class they extend
    wildcard: bool = False  # has SE(*)/AT(*)/mixed productions the data model cannot hold
    grammar_sig: str = ""
    abstract_type: bool = False  # a global element of an abstract type: valid only with xsi:type


def element_key(decl: ElementDecl) -> QName:
    return ("#element", decl.qname[0] + " " + decl.qname[1])


@dataclass
class SetModel:
    """What one namespace set (document grammar) needs."""

    name: str
    sset: SchemaSet
    roots: list[ElementDecl]  # sorted global elements: index = event code
    fragments: list[tuple[QName, QName | None]]  # sorted qname -> class key (None: relaxed)
    root_width: int
    fragment_width: int


class ModelBuilder:
    """Collects classes, enums and simple specs over several namespace sets."""

    def __init__(self) -> None:
        self.classes: dict[QName, ClassModel] = {}
        self.simples: dict[tuple[str, str], SimpleModel] = {}  # (module, key)
        self.enums: dict[tuple[str, str], tuple[str, ...]] = {}  # (module, name) -> values
        self.sets: list[SetModel] = []

    # -- simple types
    def simple(self, t: SimpleType, where: str) -> SimpleModel:
        dt = datatype(t)
        if t.name is not None and t.name[0] == XS:
            module, key, tname = "runtime", "xs_" + t.name[1], "xs:" + t.name[1]
        elif t.name is not None:
            module, key, tname = module_of(t.name[0]), t.name[1], t.name[1]
        else:
            # anonymous simple type: named after where it is used
            module, key, tname = where.split(":", 1)[0], where.split(":", 1)[1], "(anonymous)"
        enum_name = None
        if dt.rep == Rep.ENUM:
            enum_name = key
            prev = self.enums.get((module, enum_name))
            if prev is not None and prev != dt.enumeration:
                raise SchemaError(f"enumeration {enum_name} differs between schema sets")
            self.enums[(module, enum_name)] = dt.enumeration
        sm = SimpleModel(key, module, tname, dt, enum_name)
        prev_sm = self.simples.get((module, key))
        if prev_sm is not None and prev_sm.datatype != dt:
            raise SchemaError(f"simple type {key} differs between schema sets")
        self.simples[(module, key)] = sm
        return sm

    # -- complex types
    def complex_class(
        self, gb: GrammarBuilder, ct: ComplexType, owner: ElementDecl | None
    ) -> QName:
        """Register the class of `ct` (owner: the global element of an anonymous type)."""
        if ct.name is not None:
            key = ct.name
            name = ct.name[1]
            uri = ct.name[0]
        else:
            if owner is None or not owner.is_global:
                raise SchemaError("anonymous complex types on local elements are not supported")
            key = element_key(owner)
            name = owner.qname[1]
            uri = owner.qname[0]
        grammar = gb.type_grammar(ct)
        sig = repr(grammar)
        existing = self.classes.get(key)
        if existing is not None:
            if existing.grammar_sig != sig:
                raise SchemaError(f"type {name} has different grammars in different sets")
            return key
        module = module_of(uri)
        content = effective_content(ct)
        cm = ClassModel(key, name, module, name, uri, [], grammar, grammar_sig=sig)
        if owner is not None and ct.name is None:
            cm.element = owner
        self.classes[key] = cm  # registered before the fields: types may refer to themselves
        cm.fields = self._fields(gb, content, name, module)
        cm.wildcard = _has_wildcard(grammar)
        names = [f.name for f in cm.fields]
        if len(set(names)) != len(names):
            raise SchemaError(f"type {name}: two fields with the same name {names}")
        return key

    def _fields(
        self, gb: GrammarBuilder, content: Content, owner: str, module: str
    ) -> list[FieldModel]:
        out: list[FieldModel] = []
        for a in content.attributes:
            assert a.type is not None
            sm = self.simple(a.type, f"{module}:{owner}_{a.qname[1]}")
            out.append(FieldModel(a.qname[1], FieldKind.ATTRIBUTE, a.qname, int(a.required), 1, sm))
        if content.kind == "simple":
            assert content.value_type is not None
            sm = self.simple(content.value_type, f"{module}:{owner}_CONTENT")
            out.append(FieldModel("CONTENT", FieldKind.CONTENT, ("", "CONTENT"), 1, 1, sm))
            return out
        by_name: dict[str, FieldModel] = {}
        for p in content.particles:
            self._walk(gb, p, 1, 1, out, by_name, owner, module)
        return out

    def _walk(
        self,
        gb: GrammarBuilder,
        p: Particle,
        lo: int,
        hi: int,
        out: list[FieldModel],
        by_name: dict[str, FieldModel],
        owner: str,
        module: str,
    ) -> None:
        lo = lo * p.min_occurs
        hi = _mul(hi, p.max_occurs)
        t = p.term
        if isinstance(t, Wildcard):
            return
        if isinstance(t, ModelGroup):
            branch_lo = 0 if (t.compositor == "choice" and len(t.particles) > 1) else lo
            if t.compositor == "all":
                branch_lo = 0
            for child in t.particles:
                self._walk(gb, child, branch_lo, hi, out, by_name, owner, module)
            return
        assert isinstance(t, ElementDecl)
        members = gb.members(t)
        substitution = t.is_global and (len(members) != 1 or members[0] is not t)
        name = t.qname[1]
        if name in by_name:
            f = by_name[name]
            if f.qname != t.qname:
                raise SchemaError(f"type {owner}: two elements named {name}")
            f.min_occurs = 0
            f.max_occurs = _add(f.max_occurs, hi)
            return
        f = FieldModel(name, FieldKind.ELEMENT, t.qname, lo, hi)
        if substitution:
            f.kind = FieldKind.SUBSTITUTION
            f.members = members
            for m in members:
                self.element_class(gb, m)
        else:
            et = gb.sset.type_of(t)
            if isinstance(et, SimpleType):
                f.simple = self.simple(et, f"{module}:{owner}_{name}")
            else:
                f.complex_key = self.complex_class(gb, et, None)
        by_name[name] = f
        out.append(f)

    # -- element classes
    def element_class(self, gb: GrammarBuilder, decl: ElementDecl) -> QName:
        key = element_key(decl)
        if key in self.classes:
            return key
        et = gb.sset.type_of(decl)
        module = module_of(decl.qname[0])
        if isinstance(et, ComplexType):
            if et.name is None:
                return self.complex_class(gb, et, decl)
            base_key = self.complex_class(gb, et, None)
            base = self.classes[base_key]
            cm = ClassModel(
                key,
                decl.qname[1],
                module,
                base.type_name,
                decl.qname[0],
                base.fields,
                base.grammar,
                element=decl,
                base_key=base_key,
                wildcard=base.wildcard,
                grammar_sig=base.grammar_sig,
                abstract_type=et.abstract,
            )
        else:
            sm = self.simple(et, f"{module}:{decl.qname[1]}")
            grammar = gb.simple_grammar()
            cm = ClassModel(
                key,
                decl.qname[1],
                module,
                sm.type_name,
                decl.qname[0],
                [FieldModel("CONTENT", FieldKind.CONTENT, ("", "CONTENT"), 1, 1, sm)],
                grammar,
                element=decl,
                grammar_sig=repr(grammar),
            )
        self.classes[key] = cm
        return key

    # -- namespace sets
    def add_set(self, name: str, sset: SchemaSet) -> SetModel:
        from rig.v2g.exi.grammar import (
            document_width,
            fragment_entries,
            fragment_width,
            sorted_globals,
        )

        gb = GrammarBuilder(sset)
        roots = sorted_globals(sset)
        for decl in roots:
            self.element_class(gb, decl)
        # every complex type of the set gets its class too (local elements reach them anyway;
        # this adds the named types only used through substitution or not at all)
        for ct in sset.all_complex_types:
            if ct.name is not None and not ct.abstract:
                self.complex_class(gb, ct, None)
        frags: list[tuple[QName, QName | None]] = []
        for entry in fragment_entries(sset):
            t = entry.unique_type
            key: QName | None
            if t is None:
                key = None
            elif isinstance(t, ComplexType):
                glob = sset.elements.get(entry.qname)
                if glob is not None:
                    # a global element: its own class (a subclass of its type's class)
                    key = self.element_class(gb, glob)
                elif t.name is None:
                    key = None
                else:
                    key = self.complex_class(gb, t, None)
            else:
                decls = [d for d in sset.elements.values() if d.qname == entry.qname]
                key = element_key(decls[0]) if decls else None
            frags.append((entry.qname, key))
        sm = SetModel(
            name,
            sset,
            roots,
            frags,
            document_width(sset),
            fragment_width(len(frags)),
        )
        self.sets.append(sm)
        return sm


def _has_wildcard(g: TypeGrammar) -> bool:
    wild = {Kind.SE_ANY, Kind.SE_URI, Kind.AT_ANY, Kind.AT_URI}
    for st in g.states:
        for p in st.productions:
            if p.terminal.kind in wild or (p.terminal.kind == Kind.CH and not p.terminal.typed):
                return True
    return False
