"""Which EXI datatype representation a schema simple type gets, and its effective facets.

EXI 1.0 section 7.1 and the datatype representation map: boolean; integers as n-bit unsigned
offsets when the bounded range has at most 4096 values, as unsigned integers when the lower
bound is not negative, else as signed integers; hexBinary and base64Binary as binary; string,
anyURI, ID and other string types (and unions) through the string tables; any atomic type with
an enumeration facet as an n-bit index into the enumeration, in schema order (section 7.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.v2g.exi.meta import Rep
from rig.v2g.exi.xsd import XS, SchemaError, SimpleType

NBIT_RANGE_LIMIT = 4096  # EXI 7.1.5: bounded ranges up to 4096 values use n-bit integers

_STRING_PRIMITIVES = {"string", "anyURI", "anySimpleType"}
_UNSUPPORTED = {
    "decimal",
    "float",
    "double",
    "duration",
    "dateTime",
    "time",
    "date",
    "gYearMonth",
    "gYear",
    "gMonthDay",
    "gDay",
    "gMonth",
    "QName",
    "NOTATION",
}


@dataclass(frozen=True)
class Datatype:
    """Representation and effective facets of a simple type (generator side)."""

    rep: Rep
    lo: int | None = None
    hi: int | None = None
    nbits: int = 0
    min_length: int | None = None
    max_length: int | None = None
    enumeration: tuple[str, ...] = ()


def _builtin_names(t: SimpleType) -> list[str]:
    return [a.name[1] for a in t.ancestors() if a.builtin and a.name is not None]


def datatype(t: SimpleType) -> Datatype:
    """The EXI representation of `t` with the facets inherited along its derivation chain."""
    if t.variety == "union":
        return Datatype(Rep.STRING)
    if t.variety == "list":
        raise SchemaError(f"simple type {t.name}: xs:list is not supported (none in -20)")
    chain = t.ancestors()
    enumeration: tuple[str, ...] = ()
    for a in chain:
        if a.facets.enumeration:
            enumeration = a.facets.enumeration
            break
    lo: int | None = None
    hi: int | None = None
    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    for a in chain:
        f = a.facets
        if f.min_inclusive is not None:
            lo = f.min_inclusive if lo is None else max(lo, f.min_inclusive)
        if f.max_inclusive is not None:
            hi = f.max_inclusive if hi is None else min(hi, f.max_inclusive)
        if f.length is not None and length is None:
            length = f.length
        if f.min_length is not None:
            min_length = f.min_length if min_length is None else max(min_length, f.min_length)
        if f.max_length is not None:
            max_length = f.max_length if max_length is None else min(max_length, f.max_length)
        if f.patterns and not a.builtin:
            raise SchemaError(f"simple type {t.name}: pattern facets are not supported")
    if length is not None:
        min_length = max_length = length
    names = _builtin_names(t)
    primitive = names[-2] if len(names) >= 2 else names[-1]  # the one below anySimpleType
    if enumeration:
        return Datatype(
            Rep.ENUM, nbits=(len(enumeration) - 1).bit_length(), enumeration=enumeration
        )
    if primitive == "boolean":
        return Datatype(Rep.BOOLEAN)
    if primitive == "hexBinary":
        return Datatype(Rep.HEX, min_length=min_length, max_length=max_length)
    if primitive == "base64Binary":
        return Datatype(Rep.BASE64, min_length=min_length, max_length=max_length)
    if "integer" in names:
        if lo is not None and hi is not None and hi - lo + 1 <= NBIT_RANGE_LIMIT:
            return Datatype(Rep.NBIT, lo=lo, hi=hi, nbits=(hi - lo).bit_length())
        if lo is not None and lo >= 0:
            return Datatype(Rep.UINT, lo=lo, hi=hi)
        return Datatype(Rep.INT, lo=lo, hi=hi)
    if primitive in _UNSUPPORTED:
        raise SchemaError(f"simple type {t.name}: xs:{primitive} is not supported (none in -20)")
    if primitive in _STRING_PRIMITIVES or "string" in names:
        return Datatype(Rep.STRING, min_length=min_length, max_length=max_length)
    raise SchemaError(f"simple type {t.name}: no EXI representation for xs:{primitive}")


def is_builtin(t: SimpleType) -> bool:
    return t.builtin and t.name is not None and t.name[0] == XS
