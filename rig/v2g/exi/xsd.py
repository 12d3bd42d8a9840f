"""XML Schema reader for the EXI generator: the subset of XSD 1.0 the V2G schemas use, resolved.

Reads a set of schema documents (following xs:import and xs:include), and gives back a
`SchemaSet`: global element, attribute, simple type and complex type declarations keyed by
qualified name, with every reference (type=, ref=, base=, substitutionGroup=) resolved.
Supported: complexType/simpleType (named and anonymous), sequence/choice/all, minOccurs and
maxOccurs (incl. unbounded), element refs, substitutionGroup and abstract, complexContent
extension and restriction, simpleContent extension and restriction, attributes and attribute
groups (with attributeFormDefault and form), model group definitions, attribute and element
wildcards, mixed content, facets (length, minLength, maxLength, min/max Inclusive/Exclusive,
enumeration, pattern, totalDigits, fractionDigits, whiteSpace), xs:list and xs:union.

Only the standard library's xml.etree is used; the schema text itself never leaves this module.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

XS = "http://www.w3.org/2001/XMLSchema"
_T = TypeVar("_T")
UNBOUNDED = -1  # maxOccurs="unbounded"

QName = tuple[str, str]
"""(namespace URI, local name); the empty string is the absent namespace."""


class SchemaError(Exception):
    """A schema document this reader cannot use (names the file and the construct)."""


@dataclass(frozen=True)
class Facets:
    """Constraining facets of a simple type (only those set by this type's own restriction)."""

    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_inclusive: int | None = None
    max_inclusive: int | None = None
    enumeration: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    total_digits: int | None = None
    fraction_digits: int | None = None
    white_space: str | None = None


@dataclass(eq=False)
class SimpleType:
    """A simple type: a built-in (base is None, variety atomic) or a derivation."""

    name: QName | None
    variety: str  # "atomic" | "list" | "union"
    base: SimpleType | None = None
    facets: Facets = Facets()
    item_type: SimpleType | None = None
    member_types: tuple[SimpleType, ...] = ()
    builtin: bool = False

    def primitive(self) -> SimpleType:
        """The built-in ancestor closest to this type (itself if built-in)."""
        t: SimpleType = self
        while not t.builtin:
            if t.base is None:
                raise SchemaError(f"simple type {self.name} has no base")
            t = t.base
        return t

    def ancestors(self) -> list[SimpleType]:
        """This type and its bases, most derived first, up to the ur simple type."""
        out: list[SimpleType] = []
        t: SimpleType | None = self
        while t is not None:
            out.append(t)
            t = t.base
        return out


@dataclass(eq=False)
class Wildcard:
    """xs:any / xs:anyAttribute: `namespaces` is "##any", "##other" or a tuple of URIs."""

    namespaces: str | tuple[str, ...]
    process_contents: str
    target_namespace: str


@dataclass(eq=False)
class ElementDecl:
    """An element declaration (global, or local inside a content model)."""

    qname: QName
    is_global: bool
    type_name: QName | None = None
    anonymous_type: ComplexType | SimpleType | None = None
    abstract: bool = False
    nillable: bool = False
    substitution_group: QName | None = None
    type: ComplexType | SimpleType | None = None  # set by resolve()
    source: str = ""


@dataclass(eq=False)
class AttributeUse:
    """An attribute use of a complex type."""

    qname: QName
    required: bool
    type_name: QName | None = None
    anonymous_type: SimpleType | None = None
    prohibited: bool = False
    type: SimpleType | None = None  # set by resolve()


@dataclass(eq=False)
class Particle:
    """A particle: occurrence bounds and a term (element, model group or wildcard)."""

    min_occurs: int
    max_occurs: int  # UNBOUNDED for unbounded
    term: ElementDecl | ElementRef | ModelGroup | Wildcard | GroupRef


@dataclass(eq=False)
class ElementRef:
    """`<xs:element ref=...>` before resolution; resolve() swaps it for the global declaration."""

    ref: QName


@dataclass(eq=False)
class GroupRef:
    """`<xs:group ref=...>` before resolution."""

    ref: QName


@dataclass(eq=False)
class ModelGroup:
    """sequence, choice or all."""

    compositor: str  # "sequence" | "choice" | "all"
    particles: list[Particle] = field(default_factory=list)


@dataclass(eq=False)
class AttributeGroupRef:
    ref: QName


@dataclass(eq=False)
class ComplexType:
    """A complex type as written: its own derivation step, content and attributes."""

    name: QName | None
    abstract: bool = False
    mixed: bool = False
    base_name: QName | None = None
    derivation: str | None = None  # "extension" | "restriction" | None (from anyType)
    simple_content: bool = False
    particle: Particle | None = None
    attributes: list[AttributeUse | AttributeGroupRef] = field(default_factory=list)
    attribute_wildcard: Wildcard | None = None
    simple_facets: Facets | None = None  # simpleContent restriction facets
    base: ComplexType | SimpleType | None = None  # set by resolve()
    source: str = ""


@dataclass
class SchemaSet:
    """All declarations of a set of schema documents, resolved."""

    elements: dict[QName, ElementDecl] = field(default_factory=dict)
    complex_types: dict[QName, ComplexType] = field(default_factory=dict)
    simple_types: dict[QName, SimpleType] = field(default_factory=dict)
    attributes: dict[QName, AttributeUse] = field(default_factory=dict)
    groups: dict[QName, ModelGroup] = field(default_factory=dict)
    attribute_groups: dict[QName, list[AttributeUse | AttributeGroupRef]] = field(
        default_factory=dict
    )
    namespaces: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # every element declaration met (global and local), in document order
    all_elements: list[ElementDecl] = field(default_factory=list)
    # every complex type met (named and anonymous), in document order
    all_complex_types: list[ComplexType] = field(default_factory=list)

    def type_of(self, decl: ElementDecl) -> ComplexType | SimpleType:
        if decl.type is None:
            raise SchemaError(f"element {decl.qname} is unresolved")
        return decl.type

    def substitution_members(self, head: QName) -> list[ElementDecl]:
        """All global elements that may substitute for `head` (transitively), not incl. head."""
        out: list[ElementDecl] = []
        todo = [head]
        seen = {head}
        while todo:
            h = todo.pop()
            for decl in self.elements.values():
                if decl.substitution_group == h and decl.qname not in seen:
                    seen.add(decl.qname)
                    out.append(decl)
                    todo.append(decl.qname)
        return out


# --- built-in simple types -------------------------------------------------------------------

_INT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
    "nonNegativeInteger": (0, None),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 2**8 - 1),
    "positiveInteger": (1, None),
}
# derivation chain of the built-ins: name -> base name (None for the primitives)
_BUILTIN_BASE: dict[str, str | None] = {
    "anySimpleType": None,
    "string": "anySimpleType",
    "boolean": "anySimpleType",
    "decimal": "anySimpleType",
    "float": "anySimpleType",
    "double": "anySimpleType",
    "duration": "anySimpleType",
    "dateTime": "anySimpleType",
    "time": "anySimpleType",
    "date": "anySimpleType",
    "gYearMonth": "anySimpleType",
    "gYear": "anySimpleType",
    "gMonthDay": "anySimpleType",
    "gDay": "anySimpleType",
    "gMonth": "anySimpleType",
    "hexBinary": "anySimpleType",
    "base64Binary": "anySimpleType",
    "anyURI": "anySimpleType",
    "QName": "anySimpleType",
    "NOTATION": "anySimpleType",
    "normalizedString": "string",
    "token": "normalizedString",
    "language": "token",
    "NMTOKEN": "token",
    "Name": "token",
    "NCName": "Name",
    "ID": "NCName",
    "IDREF": "NCName",
    "ENTITY": "NCName",
    "integer": "decimal",
    "nonPositiveInteger": "integer",
    "negativeInteger": "nonPositiveInteger",
    "long": "integer",
    "int": "long",
    "short": "int",
    "byte": "short",
    "nonNegativeInteger": "integer",
    "unsignedLong": "nonNegativeInteger",
    "unsignedInt": "unsignedLong",
    "unsignedShort": "unsignedInt",
    "unsignedByte": "unsignedShort",
    "positiveInteger": "nonNegativeInteger",
}


def _builtins() -> dict[QName, SimpleType]:
    out: dict[QName, SimpleType] = {}

    def make(name: str) -> SimpleType:
        q = (XS, name)
        if q in out:
            return out[q]
        base_name = _BUILTIN_BASE[name]
        base = make(base_name) if base_name else None
        lo, hi = _INT_BOUNDS.get(name, (None, None))
        t = SimpleType(
            name=q,
            variety="atomic",
            base=base,
            facets=Facets(min_inclusive=lo, max_inclusive=hi),
            builtin=True,
        )
        out[q] = t
        return t

    for n in _BUILTIN_BASE:
        make(n)
    return out


# --- reading ----------------------------------------------------------------------------------


def _parse_with_ns(path: Path) -> tuple[ET.Element, dict[int, dict[str, str]]]:
    """Parse `path`, returning the root and, per element id(), its in-scope prefix map."""
    scopes: dict[int, dict[str, str]] = {}
    stack: list[dict[str, str]] = [{"xml": "http://www.w3.org/XML/1998/namespace"}]
    pending: dict[str, str] = {}
    root: ET.Element | None = None
    for event, item in ET.iterparse(str(path), events=("start-ns", "start", "end")):
        if event == "start-ns":
            prefix, uri = item  # type: ignore[misc]
            pending[prefix] = uri
        elif event == "start":
            elem: ET.Element = item  # type: ignore[assignment]
            scope = dict(stack[-1])
            scope.update(pending)
            pending = {}
            stack.append(scope)
            scopes[id(elem)] = scope
            if root is None:
                root = elem
        else:
            stack.pop()
    if root is None:
        raise SchemaError(f"{path}: empty document")
    return root, scopes


def _tag(e: ET.Element) -> str:
    t = e.tag
    if not isinstance(t, str) or not t.startswith("{" + XS + "}"):
        return ""
    return t[len(XS) + 2 :]


class _Reader:
    """Reads one schema document into a SchemaSet."""

    def __init__(
        self, sset: SchemaSet, path: Path, locations: dict[str, Path] | None = None
    ) -> None:
        self.sset = sset
        self.path = path
        self.locations = locations or {}
        self.root, self.scopes = _parse_with_ns(path)
        if _tag(self.root) != "schema":
            raise SchemaError(f"{path}: root is not xs:schema")
        self.tns = self.root.get("targetNamespace", "")
        self.element_qualified = self.root.get("elementFormDefault") == "qualified"
        self.attribute_qualified = self.root.get("attributeFormDefault") == "qualified"

    def where(self, e: ET.Element) -> str:
        return f"{self.path.name}: <xs:{_tag(e)} name={e.get('name') or e.get('ref')!r}>"

    def qname(self, e: ET.Element, value: str) -> QName:
        """Resolve a QName-valued attribute in the scope of element `e`."""
        scope = self.scopes[id(e)]
        if ":" in value:
            prefix, local = value.split(":", 1)
            if prefix not in scope:
                raise SchemaError(f"{self.where(e)}: unknown prefix {prefix!r}")
            return (scope[prefix], local)
        return (scope.get("", ""), value)

    def read(self) -> list[Path]:
        """Read every top-level component; return the schema files this one imports/includes."""
        more: list[Path] = []
        if self.tns not in self.sset.namespaces:
            self.sset.namespaces.append(self.tns)
        for child in self.root:
            tag = _tag(child)
            if tag in ("import", "include"):
                loc = child.get("schemaLocation")
                found = (self.path.parent / loc).resolve() if loc else None
                if tag == "import" and (found is None or not found.is_file()):
                    # The DIN 70121 and ISO 15118-2 schemas import xmldsig from a location their
                    # published folders do not hold: the caller names a file per namespace.
                    found = self.locations.get(child.get("namespace", ""), found)
                if found is not None:
                    more.append(found.resolve())
            elif tag == "element":
                decl = self.element(child, is_global=True)
                self._put(self.sset.elements, decl.qname, decl, child)
            elif tag == "complexType":
                ct = self.complex_type(child)
                assert ct.name is not None
                self._put(self.sset.complex_types, ct.name, ct, child)
            elif tag == "simpleType":
                st = self.simple_type(child)
                assert st.name is not None
                self._put(self.sset.simple_types, st.name, st, child)
            elif tag == "attribute":
                au = self.attribute(child, is_global=True)
                self._put(self.sset.attributes, au.qname, au, child)
            elif tag == "group":
                name = (self.tns, child.get("name", ""))
                mg = self.model_group_def(child)
                self._put(self.sset.groups, name, mg, child)
            elif tag == "attributeGroup":
                name = (self.tns, child.get("name", ""))
                self._put(self.sset.attribute_groups, name, self.attribute_uses(child), child)
            elif tag in ("annotation", "notation", "redefine", "override"):
                if tag in ("redefine", "override"):
                    raise SchemaError(f"{self.where(child)}: xs:{tag} is not supported")
            elif tag:
                raise SchemaError(f"{self.where(child)}: unexpected top-level xs:{tag}")
        return more

    def _put(self, table: dict[QName, _T], key: QName, value: _T, e: ET.Element) -> None:
        if key in table:
            raise SchemaError(f"{self.where(e)}: {key} declared twice")
        table[key] = value

    # -- occurrences
    def occurs(self, e: ET.Element) -> tuple[int, int]:
        lo = int(e.get("minOccurs", "1"))
        hi_s = e.get("maxOccurs", "1")
        hi = UNBOUNDED if hi_s == "unbounded" else int(hi_s)
        if hi != UNBOUNDED and hi < lo:
            raise SchemaError(f"{self.where(e)}: maxOccurs < minOccurs")
        return lo, hi

    # -- elements
    def element(self, e: ET.Element, is_global: bool) -> ElementDecl:
        name = e.get("name")
        if not name:
            raise SchemaError(f"{self.where(e)}: element without name")
        if is_global:
            ns = self.tns
        else:
            form = e.get("form")
            qualified = form == "qualified" if form else self.element_qualified
            ns = self.tns if qualified else ""
        decl = ElementDecl(
            qname=(ns, name),
            is_global=is_global,
            abstract=e.get("abstract") == "true",
            nillable=e.get("nillable") == "true",
            source=self.path.name,
        )
        if e.get("type"):
            decl.type_name = self.qname(e, e.get("type", ""))
        sg = e.get("substitutionGroup")
        if sg:
            decl.substitution_group = self.qname(e, sg)
        for child in e:
            tag = _tag(child)
            if tag == "complexType":
                decl.anonymous_type = self.complex_type(child, anonymous=True)
            elif tag == "simpleType":
                decl.anonymous_type = self.simple_type(child, anonymous=True)
            elif tag in ("annotation", "unique", "key", "keyref", ""):
                continue
            else:
                raise SchemaError(f"{self.where(child)}: unexpected xs:{tag} in element")
        if decl.type_name is None and decl.anonymous_type is None:
            decl.type_name = (XS, "anyType")
        self.sset.all_elements.append(decl)
        return decl

    # -- attributes
    def attribute(self, e: ET.Element, is_global: bool) -> AttributeUse:
        use = e.get("use", "optional")
        if e.get("ref"):
            ref = self.qname(e, e.get("ref", ""))
            return _AttrRef(ref, use)
        name = e.get("name", "")
        if is_global:
            ns = self.tns
        else:
            form = e.get("form")
            qualified = form == "qualified" if form else self.attribute_qualified
            ns = self.tns if qualified else ""
        au = AttributeUse(
            qname=(ns, name), required=use == "required", prohibited=use == "prohibited"
        )
        if e.get("type"):
            au.type_name = self.qname(e, e.get("type", ""))
        for child in e:
            if _tag(child) == "simpleType":
                au.anonymous_type = self.simple_type(child, anonymous=True)
        if au.type_name is None and au.anonymous_type is None:
            au.type_name = (XS, "anySimpleType")
        return au

    def attribute_uses(self, e: ET.Element) -> list[AttributeUse | AttributeGroupRef]:
        out: list[AttributeUse | AttributeGroupRef] = []
        for child in e:
            tag = _tag(child)
            if tag == "attribute":
                out.append(self.attribute(child, is_global=False))
            elif tag == "attributeGroup":
                out.append(AttributeGroupRef(self.qname(child, child.get("ref", ""))))
        return out

    def wildcard(self, e: ET.Element) -> Wildcard:
        ns = e.get("namespace", "##any")
        namespaces: str | tuple[str, ...]
        if ns in ("##any", "##other"):
            namespaces = ns
        else:
            uris: list[str] = []
            for tok in ns.split():
                if tok == "##targetNamespace":
                    uris.append(self.tns)
                elif tok == "##local":
                    uris.append("")
                else:
                    uris.append(tok)
            namespaces = tuple(uris)
        return Wildcard(namespaces, e.get("processContents", "strict"), self.tns)

    # -- model groups
    def particle(self, e: ET.Element) -> Particle | None:
        tag = _tag(e)
        lo, hi = self.occurs(e)
        if tag == "element":
            if e.get("ref"):
                term: ElementDecl | ElementRef | ModelGroup | Wildcard | GroupRef
                term = ElementRef(self.qname(e, e.get("ref", "")))
            else:
                term = self.element(e, is_global=False)
        elif tag in ("sequence", "choice", "all"):
            term = self.model_group(e)
        elif tag == "any":
            term = self.wildcard(e)
        elif tag == "group":
            term = GroupRef(self.qname(e, e.get("ref", "")))
        elif tag == "annotation" or not tag:
            return None
        else:
            raise SchemaError(f"{self.where(e)}: unexpected xs:{tag} in a content model")
        return Particle(lo, hi, term)

    def model_group(self, e: ET.Element) -> ModelGroup:
        mg = ModelGroup(_tag(e))
        for child in e:
            p = self.particle(child)
            if p is not None:
                mg.particles.append(p)
        return mg

    def model_group_def(self, e: ET.Element) -> ModelGroup:
        for child in e:
            if _tag(child) in ("sequence", "choice", "all"):
                return self.model_group(child)
        raise SchemaError(f"{self.where(e)}: group without a model group")

    # -- complex types
    def complex_type(self, e: ET.Element, anonymous: bool = False) -> ComplexType:
        name = None if anonymous else (self.tns, e.get("name", ""))
        ct = ComplexType(
            name=name,
            abstract=e.get("abstract") == "true",
            mixed=e.get("mixed") == "true",
            source=self.path.name,
        )
        for child in e:
            tag = _tag(child)
            if tag in ("sequence", "choice", "all", "group"):
                ct.particle = self.particle(child)
            elif tag in ("complexContent", "simpleContent"):
                ct.simple_content = tag == "simpleContent"
                if child.get("mixed") is not None:
                    ct.mixed = child.get("mixed") == "true"
                self.derivation(ct, child)
            elif tag == "attribute":
                ct.attributes.append(self.attribute(child, is_global=False))
            elif tag == "attributeGroup":
                ct.attributes.append(AttributeGroupRef(self.qname(child, child.get("ref", ""))))
            elif tag == "anyAttribute":
                ct.attribute_wildcard = self.wildcard(child)
            elif tag in ("annotation", ""):
                continue
            else:
                raise SchemaError(f"{self.where(child)}: unexpected xs:{tag} in complexType")
        self.sset.all_complex_types.append(ct)
        return ct

    def derivation(self, ct: ComplexType, content: ET.Element) -> None:
        for d in content:
            tag = _tag(d)
            if tag not in ("extension", "restriction"):
                continue
            ct.derivation = tag
            ct.base_name = self.qname(d, d.get("base", ""))
            facets: dict[str, object] = {}
            enums: list[str] = []
            patterns: list[str] = []
            for child in d:
                ctag = _tag(child)
                if ctag in ("sequence", "choice", "all", "group"):
                    ct.particle = self.particle(child)
                elif ctag == "attribute":
                    ct.attributes.append(self.attribute(child, is_global=False))
                elif ctag == "attributeGroup":
                    ct.attributes.append(AttributeGroupRef(self.qname(child, child.get("ref", ""))))
                elif ctag == "anyAttribute":
                    ct.attribute_wildcard = self.wildcard(child)
                elif ctag in _FACET_NAMES:
                    self._facet(child, ctag, facets, enums, patterns)
            if ct.simple_content and tag == "restriction":
                ct.simple_facets = _make_facets(facets, enums, patterns)
            return
        raise SchemaError(f"{self.where(content)}: content without extension/restriction")

    # -- simple types
    def simple_type(self, e: ET.Element, anonymous: bool = False) -> SimpleType:
        name = None if anonymous else (self.tns, e.get("name", ""))
        for child in e:
            tag = _tag(child)
            if tag == "restriction":
                return self.restriction(name, child)
            if tag == "list":
                item: SimpleType
                if child.get("itemType"):
                    item = _Named(self.qname(child, child.get("itemType", "")))
                else:
                    inner = [c for c in child if _tag(c) == "simpleType"]
                    item = self.simple_type(inner[0], anonymous=True)
                return SimpleType(name=name, variety="list", item_type=item)
            if tag == "union":
                members: list[SimpleType] = [
                    _Named(self.qname(child, m)) for m in child.get("memberTypes", "").split()
                ]
                members += [
                    self.simple_type(c, anonymous=True) for c in child if _tag(c) == "simpleType"
                ]
                return SimpleType(name=name, variety="union", member_types=tuple(members))
        raise SchemaError(f"{self.where(e)}: simpleType without restriction/list/union")

    def restriction(self, name: QName | None, r: ET.Element) -> SimpleType:
        base: SimpleType
        if r.get("base"):
            base = _Named(self.qname(r, r.get("base", "")))
        else:
            inner = [c for c in r if _tag(c) == "simpleType"]
            if not inner:
                raise SchemaError(f"{self.where(r)}: restriction without base")
            base = self.simple_type(inner[0], anonymous=True)
        facets: dict[str, object] = {}
        enums: list[str] = []
        patterns: list[str] = []
        for child in r:
            tag = _tag(child)
            if tag in _FACET_NAMES:
                self._facet(child, tag, facets, enums, patterns)
        return SimpleType(
            name=name,
            variety="atomic",
            base=base,
            facets=_make_facets(facets, enums, patterns),
        )

    def _facet(
        self,
        e: ET.Element,
        tag: str,
        facets: dict[str, object],
        enums: list[str],
        patterns: list[str],
    ) -> None:
        value = e.get("value", "")
        if tag == "enumeration":
            enums.append(value)
        elif tag == "pattern":
            patterns.append(value)
        elif tag == "whiteSpace":
            facets["white_space"] = value
        elif tag == "minExclusive":
            facets["min_inclusive"] = _int(value, e, self) + 1
        elif tag == "maxExclusive":
            facets["max_inclusive"] = _int(value, e, self) - 1
        else:
            facets[_FACET_NAMES[tag]] = _int(value, e, self)


class _AttrRef(AttributeUse):
    """An attribute use by reference (resolved against the global attributes)."""

    def __init__(self, ref: QName, use: str) -> None:
        super().__init__(qname=ref, required=use == "required", prohibited=use == "prohibited")
        self.is_ref = True


class _Named(SimpleType):
    """A reference to a named simple type, replaced by resolve()."""

    def __init__(self, ref: QName) -> None:
        super().__init__(name=ref, variety="ref")


_FACET_NAMES = {
    "length": "length",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minInclusive": "min_inclusive",
    "maxInclusive": "max_inclusive",
    "minExclusive": "min_inclusive",
    "maxExclusive": "max_inclusive",
    "totalDigits": "total_digits",
    "fractionDigits": "fraction_digits",
    "enumeration": "enumeration",
    "pattern": "patterns",
    "whiteSpace": "white_space",
}


def _int(value: str, e: ET.Element, reader: _Reader) -> int:
    try:
        return int(value)
    except ValueError:
        raise SchemaError(
            f"{reader.where(e)}: facet value {value!r} is not an integer (only integer facets "
            "are supported)"
        ) from None


def _make_facets(facets: dict[str, object], enums: list[str], patterns: list[str]) -> Facets:
    return Facets(
        length=facets.get("length"),  # type: ignore[arg-type]
        min_length=facets.get("min_length"),  # type: ignore[arg-type]
        max_length=facets.get("max_length"),  # type: ignore[arg-type]
        min_inclusive=facets.get("min_inclusive"),  # type: ignore[arg-type]
        max_inclusive=facets.get("max_inclusive"),  # type: ignore[arg-type]
        enumeration=tuple(enums),
        patterns=tuple(patterns),
        total_digits=facets.get("total_digits"),  # type: ignore[arg-type]
        fraction_digits=facets.get("fraction_digits"),  # type: ignore[arg-type]
        white_space=facets.get("white_space"),  # type: ignore[arg-type]
    )


# --- resolution -------------------------------------------------------------------------------

_ANY_TYPE = ComplexType(name=(XS, "anyType"), mixed=True)


class _Resolver:
    def __init__(self, sset: SchemaSet) -> None:
        self.s = sset
        self.builtins = _builtins()

    def simple(self, t: SimpleType, where: str) -> SimpleType:
        if isinstance(t, _Named):
            assert t.name is not None
            if t.name in self.builtins:
                return self.builtins[t.name]
            if t.name in self.s.simple_types:
                return self.s.simple_types[t.name]
            raise SchemaError(f"{where}: unknown simple type {t.name}")
        if t.base is not None:
            t.base = self.simple(t.base, where)
        if t.item_type is not None:
            t.item_type = self.simple(t.item_type, where)
        if t.member_types:
            t.member_types = tuple(self.simple(m, where) for m in t.member_types)
        return t

    def type_by_name(self, q: QName, where: str) -> ComplexType | SimpleType:
        if q in self.s.complex_types:
            return self.s.complex_types[q]
        if q in self.s.simple_types:
            return self.s.simple_types[q]
        if q in self.builtins:
            return self.builtins[q]
        if q == (XS, "anyType"):
            return _ANY_TYPE
        raise SchemaError(f"{where}: unknown type {q}")

    def element(self, d: ElementDecl) -> None:
        where = f"{d.source}: element {d.qname[1]}"
        if d.anonymous_type is not None:
            if isinstance(d.anonymous_type, SimpleType):
                d.type = self.simple(d.anonymous_type, where)
            else:
                d.type = d.anonymous_type
        else:
            assert d.type_name is not None
            t = self.type_by_name(d.type_name, where)
            d.type = self.simple(t, where) if isinstance(t, SimpleType) else t
        if d.substitution_group is not None and d.substitution_group not in self.s.elements:
            raise SchemaError(f"{where}: unknown substitution group head {d.substitution_group}")

    def particle(self, p: Particle, where: str) -> None:
        t = p.term
        if isinstance(t, ElementRef):
            if t.ref not in self.s.elements:
                raise SchemaError(f"{where}: unknown element {t.ref}")
            p.term = self.s.elements[t.ref]
        elif isinstance(t, GroupRef):
            if t.ref not in self.s.groups:
                raise SchemaError(f"{where}: unknown group {t.ref}")
            p.term = self.s.groups[t.ref]
            self.particle(p, where)
        elif isinstance(t, ModelGroup):
            for child in t.particles:
                self.particle(child, where)

    def attributes(
        self, uses: list[AttributeUse | AttributeGroupRef], where: str
    ) -> list[AttributeUse | AttributeGroupRef]:
        out: list[AttributeUse | AttributeGroupRef] = []
        for u in uses:
            if isinstance(u, AttributeGroupRef):
                if u.ref not in self.s.attribute_groups:
                    raise SchemaError(f"{where}: unknown attribute group {u.ref}")
                out += self.attributes(self.s.attribute_groups[u.ref], where)
                continue
            if isinstance(u, _AttrRef):
                if u.qname not in self.s.attributes:
                    raise SchemaError(f"{where}: unknown attribute {u.qname}")
                g = self.s.attributes[u.qname]
                u = AttributeUse(
                    qname=g.qname,
                    required=u.required,
                    prohibited=u.prohibited,
                    type_name=g.type_name,
                    anonymous_type=g.anonymous_type,
                )
            if u.anonymous_type is not None:
                u.type = self.simple(u.anonymous_type, where)
            else:
                assert u.type_name is not None
                t = self.type_by_name(u.type_name, where)
                if not isinstance(t, SimpleType):
                    raise SchemaError(f"{where}: attribute {u.qname} has a complex type")
                u.type = self.simple(t, where)
            out.append(u)
        return out

    def complex(self, ct: ComplexType) -> None:
        where = f"{ct.source}: complexType {ct.name[1] if ct.name else '(anonymous)'}"
        if ct.base_name is not None:
            t = self.type_by_name(ct.base_name, where)
            ct.base = self.simple(t, where) if isinstance(t, SimpleType) else t
        if ct.particle is not None:
            self.particle(ct.particle, where)
        ct.attributes = self.attributes(ct.attributes, where)

    def run(self) -> None:
        for name, st in list(self.s.simple_types.items()):
            self.s.simple_types[name] = self.simple(st, f"simpleType {name[1]}")
        for d in self.s.all_elements:
            self.element(d)
        for ct in self.s.all_complex_types:
            self.complex(ct)


def load(entry_files: list[Path], locations: dict[str, Path] | None = None) -> SchemaSet:
    """Read `entry_files` and every schema they import or include; resolve all references.

    `locations` maps a namespace URI to the schema file to read for an xs:import of that
    namespace whose schemaLocation is absent or names no existing file.
    """
    sset = SchemaSet()
    seen: set[Path] = set()
    todo = [p.resolve() for p in entry_files]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            raise SchemaError(f"schema file not found: {path}")
        sset.files.append(path)
        todo += _Reader(sset, path, locations).read()
    _Resolver(sset).run()
    return sset
