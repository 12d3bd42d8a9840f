"""Descriptions of the generated message classes, read by the JSON form and by tests.

The fast codec paths are generated code and do not read these; `to_json`/`from_json`, the CLI and
the property tests walk a class's `_exi_fields` tuple of `FieldMeta` instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class Rep(enum.Enum):
    """EXI datatype representation of a simple value (EXI 1.0 section 7.1)."""

    BOOLEAN = "boolean"
    NBIT = "nbit"  # bounded integer: n-bit unsigned offset from the minimum
    UINT = "uint"  # unsigned integer, 7-bit groups
    INT = "int"  # sign bit + unsigned magnitude
    HEX = "hexBinary"  # binary: length + octets; JSON upper-case hex
    BASE64 = "base64Binary"  # binary: length + octets; JSON base64
    STRING = "string"  # string table miss/hit encoding
    ENUM = "enum"  # n-bit index in schema order


def _resolve(ref: str) -> Any:
    """'module:Name' of a generated module, created on first use (see rig.v2g.exi.lazy)."""
    from rig.v2g.exi import lazy

    module, name = ref.split(":", 1)
    return lazy.get(lazy.module_globals(module), name)


@dataclass(frozen=True)
class SimpleSpec:
    """A simple type as the codec sees it: representation plus the facets it enforces."""

    name: str
    rep: Rep
    lo: int | None = None  # integer bounds (inclusive)
    hi: int | None = None
    nbits: int = 0  # NBIT and ENUM width
    min_length: int | None = None  # characters for strings, octets for binary
    max_length: int | None = None
    enum_ref: str | None = None  # "module:EnumName" of ENUM types

    @property
    def enum(self) -> type[enum.Enum]:
        if self.enum_ref is None:
            raise TypeError(f"{self.name} is not an enumeration")
        cls: type[enum.Enum] = _resolve(self.enum_ref)
        return cls


class FieldKind(enum.Enum):
    ATTRIBUTE = "attribute"
    ELEMENT = "element"  # a simple- or complex-typed element
    SUBSTITUTION = "substitution"  # holds one of several global element classes
    CONTENT = "content"  # simple content of a complex type (JSON key "CONTENT")


@dataclass(frozen=True)
class FieldMeta:
    """One field of a generated class."""

    name: str
    kind: FieldKind
    min_occurs: int
    max_occurs: int  # -1 for unbounded
    simple: SimpleSpec | None = None
    ref: str | None = None  # complex-typed element: "module:Class" of its value
    member_refs: tuple[tuple[str, str], ...] = ()  # SUBSTITUTION: (element name, "module:Class")

    @property
    def cls(self) -> type:
        """Class of a complex-typed element's value."""
        if self.ref is None:
            raise TypeError(f"field {self.name} is not complex-typed")
        cls: type = _resolve(self.ref)
        return cls

    @property
    def members(self) -> tuple[tuple[str, type], ...]:
        """SUBSTITUTION fields: (element name, class) of every member, in event-code order."""
        return tuple((name, _resolve(ref)) for name, ref in self.member_refs)

    @property
    def is_list(self) -> bool:
        return self.max_occurs == -1 or self.max_occurs > 1

    @property
    def required(self) -> bool:
        return self.min_occurs > 0


@dataclass(frozen=True)
class ClassMeta:
    """What a generated class stands for."""

    type_name: str  # the schema type's local name (or the element's, for anonymous types)
    namespace: str
    element: str | None  # set on global element classes: the element's local name
    ns_set: str  # home namespace set ("common", "dc", ...; "xmldsig" for signature types)
    unsupported: str | None = None  # why the codec cannot encode it, if it cannot (wildcards)


class EXIMessage(Protocol):
    """An instance of any generated class (a message, a type or a global element): what
    encode() and to_json() take. Every generated class carries its ClassMeta."""

    _exi_meta: ClassVar[ClassMeta]
