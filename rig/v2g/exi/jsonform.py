"""The JSON form of messages: element and attribute names as keys.

`{"DC_ChargeLoopReq": {"Header": {"SessionID": "5A2CDE53F701D4AC", "TimeStamp": 1718607534},
"EVPresentVoltage": {"Exponent": 0, "Value": 400}, ...}}`: hexBinary as upper-case hex,
base64Binary as standard base64, enumerations by their schema value, repeated elements as
lists, absent optional elements left out, a substitution-group member under its own element
name, simple content of a complex type under "CONTENT"; a global element of a simple type is
its value directly.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable
from typing import Any

from rig.v2g.exi import lazy
from rig.v2g.exi.errors import EXIEncodeError
from rig.v2g.exi.meta import FieldKind, FieldMeta, Rep, SimpleSpec


def _fields(cls: type) -> tuple[FieldMeta, ...]:
    fields = getattr(cls, "_exi_fields", None)
    if fields is None:
        raise TypeError(f"{cls.__name__} is not a generated EXI message class")
    return fields  # type: ignore[no-any-return]


def _is_value_wrapper(cls: type) -> bool:
    """A global element of a simple type: one CONTENT field and nothing else."""
    fields = _fields(cls)
    return len(fields) == 1 and fields[0].kind == FieldKind.CONTENT


def to_json(message: object) -> dict[str, Any]:
    """{element name: body} of a global element instance."""
    entry = _CONVERTERS.get(message.__class__)
    if entry is None:
        entry = _converter(type(message))
    element, convert = entry
    try:
        return {element: convert(message)}
    except Exception:
        # a value of the wrong type somewhere: the generic walk is the reference (it gives the
        # same form where it can, or raises what it raises)
        return {element: body(message)}


# The generated converter of each global element class (rig.v2g.exi.jsongen), found on first use.
_CONVERTERS: dict[type, tuple[str, Callable[[Any], Any]]] = {}


def _converter(cls: type) -> tuple[str, Callable[[Any], Any]]:
    meta = getattr(cls, "_exi_meta", None)
    if meta is None or meta.element is None:
        raise TypeError(f"{cls.__name__} is not a global element class")
    entry = (meta.element, lazy.codec(cls.__module__.rsplit(".", 1)[-1], f"_j_{cls.__name__}"))
    _CONVERTERS[cls] = entry
    return entry


def body(value: object) -> Any:
    """The JSON body of any generated class instance, by a generic walk of its field
    descriptions: the reference the generated converters (`_j_<Class>`) are held to, and what
    they fall back to for instances whose fields do not hold their declared types."""
    cls = type(value)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    if plan.__class__ is int:  # a value wrapper: the rep of its one CONTENT field
        return _out(plan, value.CONTENT)  # type: ignore[arg-type, attr-defined]
    out: dict[str, Any] = {}
    for name, kind, rep, is_list in plan:  # type: ignore[union-attr]
        x = getattr(value, name)
        if x is None or (is_list and not x):
            continue
        if kind == _SUBSTITUTION:
            out[type(x)._exi_meta.element] = body(x)
        elif kind == _SIMPLE:
            out[name] = [_out(rep, i) for i in x] if is_list else _out(rep, x)
        else:
            out[name] = [body(i) for i in x] if is_list else body(x)
    return out


# How body() walks a class, built once per class.
_COMPLEX, _SUBSTITUTION, _SIMPLE = 0, 1, 2
_PLAIN, _HEX, _BASE64, _ENUM = 0, 1, 2, 3
_REPS = {Rep.HEX: _HEX, Rep.BASE64: _BASE64, Rep.ENUM: _ENUM}
_Plan = int | tuple[tuple[str, int, int, bool], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    plan: _Plan
    if _is_value_wrapper(cls):
        spec = _fields(cls)[0].simple
        assert spec is not None
        plan = _REPS.get(spec.rep, _PLAIN)
    else:
        steps = []
        for fm in _fields(cls):
            if fm.kind == FieldKind.SUBSTITUTION:
                steps.append((fm.name, _SUBSTITUTION, _PLAIN, fm.is_list))
            elif fm.simple is not None:
                steps.append((fm.name, _SIMPLE, _REPS.get(fm.simple.rep, _PLAIN), fm.is_list))
            else:
                steps.append((fm.name, _COMPLEX, _PLAIN, fm.is_list))
        plan = tuple(steps)
    _PLANS[cls] = plan
    return plan


def _out(rep: int, x: Any) -> Any:
    if rep == _PLAIN:
        return x
    if rep == _HEX:
        return bytes(x).hex().upper()
    if rep == _BASE64:
        return base64.b64encode(bytes(x)).decode("ascii")
    return x.value if isinstance(x, enum.Enum) else x


def from_json(ns: str, obj: Any) -> Any:
    """The message of JSON form `obj` ({global element name: body}) in namespace set `ns`."""
    from rig.v2g.exi.codec import FRAGMENT_SETS

    if ns not in FRAGMENT_SETS:
        raise ValueError(f"unknown namespace set {ns!r}")
    if not isinstance(obj, dict) or len(obj) != 1:
        raise EXIEncodeError("expected an object with exactly one key: the root element name")
    ((name, content),) = obj.items()
    g = lazy.module_globals(ns)
    if name not in {n for n, _u in g["ROOTS"]}:
        raise EXIEncodeError(f"{name!r} is not a global element of namespace set {ns!r}")
    cls = lazy.get(g, name)
    try:
        return from_body(cls, content)
    except EXIEncodeError as e:
        raise e.within(name) from None


def from_body(cls: type, content: Any) -> Any:
    """An instance of generated class `cls` from its JSON body."""
    if _is_value_wrapper(cls):
        spec = _fields(cls)[0].simple
        assert spec is not None
        return cls(CONTENT=_scalar_in(spec, content))
    if not isinstance(content, dict):
        raise EXIEncodeError(f"expected an object for {cls.__name__}, got {type(content).__name__}")
    kwargs: dict[str, Any] = {}
    used: set[str] = set()
    for fm in _fields(cls):
        try:
            if fm.kind == FieldKind.SUBSTITUTION:
                present = [(n, c) for n, c in fm.members if n in content]
                if len(present) > 1:
                    names = ", ".join(n for n, _ in present)
                    raise EXIEncodeError(f"only one of {names} may be given")
                if present:
                    ((n, c),) = present
                    used.add(n)
                    kwargs[fm.name] = from_body(c, content[n])
                continue
            if fm.name not in content:
                continue
            used.add(fm.name)
            raw = content[fm.name]
            if fm.is_list:
                if not isinstance(raw, list):
                    raise EXIEncodeError("expected a list (repeated element)")
                kwargs[fm.name] = [_field_in(fm, item) for item in raw]
            else:
                kwargs[fm.name] = _field_in(fm, raw)
        except EXIEncodeError as e:
            raise e.within(fm.name) from None
    unknown = sorted(set(content) - used)
    if unknown:
        raise EXIEncodeError(f"unknown keys for {cls.__name__}: {', '.join(unknown)}")
    for fm in _fields(cls):
        if fm.required and fm.name not in kwargs:
            what = "one of " + ", ".join(n for n, _ in fm.members) if fm.members else fm.name
            raise EXIEncodeError(f"required element missing: {what}").within(fm.name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise EXIEncodeError(f"{cls.__name__}: {e}") from None


def _field_in(fm: FieldMeta, raw: Any) -> Any:
    if fm.simple is not None:
        return _scalar_in(fm.simple, raw)
    return from_body(fm.cls, raw)


def _scalar_in(spec: SimpleSpec, raw: Any) -> Any:
    rep = spec.rep
    if rep == Rep.BOOLEAN:
        if not isinstance(raw, bool):
            raise EXIEncodeError(f"expected true/false for {spec.name}, got {raw!r:.40}")
        return raw
    if rep in (Rep.NBIT, Rep.UINT, Rep.INT):
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise EXIEncodeError(f"expected an integer for {spec.name}, got {raw!r:.40}")
        return raw
    if rep == Rep.STRING:
        if not isinstance(raw, str):
            raise EXIEncodeError(f"expected a string for {spec.name}, got {raw!r:.40}")
        return raw
    if rep == Rep.HEX:
        if not isinstance(raw, str):
            raise EXIEncodeError(f"expected hex digits for {spec.name}, got {raw!r:.40}")
        try:
            return bytes.fromhex(raw)
        except ValueError:
            raise EXIEncodeError(f"not hex: {raw!r:.40}") from None
    if rep == Rep.BASE64:
        if not isinstance(raw, str):
            raise EXIEncodeError(f"expected base64 for {spec.name}, got {raw!r:.40}")
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise EXIEncodeError(f"not base64: {raw!r:.40}") from None
    if rep == Rep.ENUM:
        try:
            return spec.enum(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in spec.enum)
            raise EXIEncodeError(f"{raw!r:.40} is not one of {allowed}") from None
    raise EXIEncodeError(f"no JSON form for {rep}")  # pragma: no cover
