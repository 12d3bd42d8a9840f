"""Documents and fragments of each namespace set: which class and codec function a root
element or fragment element maps to, resolved lazily and cached.

Namespace sets: "app" (supportedAppProtocol), "common" (CommonMessages + CommonTypes +
xmldsig), "dc", "ac", "acdp", "wpt" (each with what it imports); fragments also over "xmldsig"
alone, the grammar -20 signs SignedInfo with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from rig.v2g.exi import lazy, runtime
from rig.v2g.exi.errors import EXIDecodeError, EXIEncodeError
from rig.v2g.exi.meta import EXIMessage

if TYPE_CHECKING:
    # typed through the stubs beside the generated modules; nothing is imported at run time
    from rig.v2g.exi._generated import ac, acdp, app, common, dc, din, iso2, wpt, xmldsig

DOCUMENT_SETS = ("app", "common", "dc", "ac", "acdp", "wpt", "din", "iso2")
FRAGMENT_SETS = (*DOCUMENT_SETS, "xmldsig")
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

_ENC: dict[tuple[type, str | None], tuple[int, int, runtime.Encoder, str]] = {}
_FRAG_ENC: dict[tuple[str, str, str], tuple[int, int, int, runtime.Encoder, type, str]] = {}
_FRAG_DEC: dict[tuple[str, int], tuple[str, runtime.Decoder, type] | None] = {}


@dataclass(frozen=True)
class Fragment:
    """A decoded EXI fragment: the element's local name and its value."""

    name: str
    value: Any


def _set(ns: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if ns not in allowed:
        raise ValueError(f"unknown namespace set {ns!r}; one of {', '.join(allowed)}")
    return lazy.module_globals(ns)


def _home(cls: type) -> str:
    return cls.__module__.rsplit(".", 1)[-1]


def _meta(obj: object) -> Any:
    meta = getattr(type(obj), "_exi_meta", None)
    if meta is None:
        raise EXIEncodeError(f"{type(obj).__name__} is not a generated EXI message class")
    return meta


# --- documents --------------------------------------------------------------------------------


def _root_entry(cls: type, ns: str | None) -> tuple[int, int, runtime.Encoder, str]:
    meta = getattr(cls, "_exi_meta", None)
    if meta is None:
        raise EXIEncodeError(f"{cls.__name__} is not a generated EXI message class")
    if meta.element is None:
        raise EXIEncodeError(
            f"{cls.__name__} is the class of a type, not of a global element; encode an "
            "element class (e.g. the message class named like the element)"
        )
    if meta.unsupported is not None and meta.unsupported.startswith("its type"):
        raise EXIEncodeError(f"{meta.element}: {meta.unsupported}")
    use = ns or meta.ns_set
    g = _set(use, (*DOCUMENT_SETS, "xmldsig"))
    key = (meta.element, meta.namespace)
    roots: tuple[tuple[str, str], ...] = g["ROOTS"]
    if key not in roots:
        raise EXIEncodeError(f"{meta.element} is not a global element of namespace set {use!r}")
    enc = lazy.codec(_home(cls), f"_e_{cls.__name__}")
    return g["DOCUMENT_WIDTH"], roots.index(key), enc, meta.element


def encode(message: EXIMessage, ns: str | None = None) -> bytes:
    """The EXI document of a global element instance (header 0x80, bit-packed, padded)."""
    cls = type(message)
    entry = _ENC.get((cls, ns))
    if entry is None:
        entry = _root_entry(cls, ns)
        _ENC[(cls, ns)] = entry
    width, code, enc, element = entry
    try:
        return runtime.encode_document(width, code, enc, message)
    except EXIEncodeError as e:
        raise e.within(element) from None


class _Roots:
    """Decoder and class per root event code of one namespace set, resolved on first use."""

    def __init__(self, ns: str) -> None:
        g = _set(ns, (*DOCUMENT_SETS, "xmldsig"))
        self.ns = ns
        self.g = g
        self.width: int = g["DOCUMENT_WIDTH"]
        self.names: tuple[tuple[str, str], ...] = g["ROOTS"]
        self.entries: list[tuple[runtime.Decoder, type] | None] = [None] * len(self.names)

    def get(self, code: int) -> tuple[runtime.Decoder, type] | None:
        entry = self.entries[code]
        if entry is None:
            cls = lazy.get(self.g, self.names[code][0])
            why = cls._exi_meta.unsupported
            if why is not None and why.startswith("its type"):
                # The root event code sits right after the one-byte header.
                raise EXIDecodeError(f"root {self.names[code][0]}: {why}", 8)
            entry = (lazy.codec(_home(cls), f"_d_{cls.__name__}"), cls)
            self.entries[code] = entry
        return entry


_ROOTS: dict[str, _Roots] = {}


# decode and message_types: a literal namespace set gives that set's `Document`, the union of
# its global element classes (narrow it with isinstance or match); any other str the protocol.
@overload
def decode(ns: Literal["app"], data: bytes) -> app.Document: ...
@overload
def decode(ns: Literal["common"], data: bytes) -> common.Document: ...
@overload
def decode(ns: Literal["dc"], data: bytes) -> dc.Document: ...
@overload
def decode(ns: Literal["ac"], data: bytes) -> ac.Document: ...
@overload
def decode(ns: Literal["acdp"], data: bytes) -> acdp.Document: ...
@overload
def decode(ns: Literal["wpt"], data: bytes) -> wpt.Document: ...
@overload
def decode(ns: Literal["din"], data: bytes) -> din.Document: ...
@overload
def decode(ns: Literal["iso2"], data: bytes) -> iso2.Document: ...
@overload
def decode(ns: Literal["xmldsig"], data: bytes) -> xmldsig.Document: ...
@overload
def decode(ns: str, data: bytes) -> EXIMessage: ...
def decode(ns: str, data: bytes) -> Any:
    """The message of an EXI document of namespace set `ns`; EXIDecodeError if it is not one."""
    roots = _ROOTS.get(ns)
    if roots is None:
        roots = _ROOTS[ns] = _Roots(ns)
    if data.__class__ is not bytes:
        data = _as_bytes(data)
    try:
        return runtime.decode_document(data, roots.width, len(roots.names), roots.get, ns)
    except EXIDecodeError:
        raise
    except RecursionError:
        raise EXIDecodeError("nesting too deep", 0) from None
    except Exception as e:  # a decoder bug must still surface as a decode error
        raise EXIDecodeError(f"internal decoder error ({type(e).__name__}: {e})", 0) from e


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


@overload
def message_types(ns: Literal["app"]) -> dict[str, type[app.Document]]: ...
@overload
def message_types(ns: Literal["common"]) -> dict[str, type[common.Document]]: ...
@overload
def message_types(ns: Literal["dc"]) -> dict[str, type[dc.Document]]: ...
@overload
def message_types(ns: Literal["ac"]) -> dict[str, type[ac.Document]]: ...
@overload
def message_types(ns: Literal["acdp"]) -> dict[str, type[acdp.Document]]: ...
@overload
def message_types(ns: Literal["wpt"]) -> dict[str, type[wpt.Document]]: ...
@overload
def message_types(ns: Literal["din"]) -> dict[str, type[din.Document]]: ...
@overload
def message_types(ns: Literal["iso2"]) -> dict[str, type[iso2.Document]]: ...
@overload
def message_types(ns: Literal["xmldsig"]) -> dict[str, type[xmldsig.Document]]: ...
@overload
def message_types(ns: str) -> dict[str, type[EXIMessage]]: ...
def message_types(ns: str) -> dict[str, Any]:
    """Every global element of namespace set `ns` -> its class, in event-code order."""
    g = _set(ns, (*DOCUMENT_SETS, "xmldsig"))
    return {name: lazy.get(g, name) for name, _uri in g["ROOTS"]}


def types(ns: str) -> Any:
    """The generated module of namespace set `ns` (classes and enums as attributes)."""
    import importlib

    _set(ns, FRAGMENT_SETS)
    return importlib.import_module(f"{lazy.PACKAGE}.{ns}")


# --- fragments --------------------------------------------------------------------------------


def _fragment_entry(
    value: object, name: str | None, ns: str | None
) -> tuple[int, int, int, runtime.Encoder, type, str]:
    meta = _meta(value)
    if name is None:
        if meta.element is None:
            raise EXIEncodeError(
                f"{type(value).__name__} is a type class: say which element it is (name=...)"
            )
        local, uri = meta.element, meta.namespace
    elif name.startswith("{"):
        uri, local = name[1:].split("}", 1)
    else:
        local, uri = name, ""
    if ns is None:
        # -20 signs SignedInfo as a fragment of the xmldsig schema alone (cf. libcbv2g)
        ns = "xmldsig" if meta.namespace == XMLDSIG_NS else meta.ns_set
    key = (ns, local, uri)
    if key in _FRAG_ENC:
        return _FRAG_ENC[key]
    g = _set(ns, FRAGMENT_SETS)
    frags: tuple[tuple[str, str, str | None], ...] = g["FRAGMENTS"]
    matches = [i for i, (n, u, _c) in enumerate(frags) if n == local and (not uri or u == uri)]
    if not matches:
        raise EXIEncodeError(f"{local} is not an element of namespace set {ns!r}")
    if len(matches) > 1:
        names = ", ".join("{" + frags[i][1] + "}" + local for i in matches)
        raise EXIEncodeError(f"{local} is ambiguous in {ns!r}: name one of {names}")
    code = matches[0]
    clsname = frags[code][2]
    if clsname is None:
        raise EXIEncodeError(f"unsupported: fragment element {local} (no single type)")
    cls = lazy.get(g, clsname)
    enc = lazy.codec(_home(cls), f"_e_{cls.__name__}")
    # FragmentContent: SE(F0..Fn-1), SE(*) = n, ED = n + 1 (EXI 8.5.2)
    entry = (g["FRAGMENT_WIDTH"], code, len(frags) + 1, enc, cls, local)
    _FRAG_ENC[key] = entry
    return entry


def encode_fragment(value: object, *, name: str | None = None, ns: str | None = None) -> bytes:
    """An EXI fragment (EXI 8.5.2) holding one element, as signatures digest them.

    `value` is a global element instance, or a type instance with `name` (the element's local
    name, or "{uri}local" when the local name is ambiguous). `ns` picks the fragment grammar:
    by default "xmldsig" for signature types and the value's own namespace set otherwise.
    """
    width, code, end, enc, cls, local = _fragment_entry(value, name, ns)
    # a global element's class, or the class of its type (the element class extends it)
    if not isinstance(value, cls) and not issubclass(cls, type(value)):
        raise EXIEncodeError(f"{local} holds {cls.__name__}, got {type(value).__name__}")
    try:
        return runtime.encode_fragment(width, code, end, enc, value)
    except EXIEncodeError as e:
        raise e.within(local) from None


def _frag_dec_entry(ns: str, code: int) -> tuple[str, runtime.Decoder, type] | None:
    key = (ns, code)
    if key in _FRAG_DEC:
        return _FRAG_DEC[key]
    g = lazy.module_globals(ns)
    local, _uri, clsname = g["FRAGMENTS"][code]
    entry: tuple[str, runtime.Decoder, type] | None = None
    if clsname is not None:
        cls = lazy.get(g, clsname)
        entry = (local, lazy.codec(_home(cls), f"_d_{cls.__name__}"), cls)
    _FRAG_DEC[key] = entry
    return entry


def decode_fragment(ns: str, data: bytes) -> Fragment:
    """The element of an EXI fragment of namespace set `ns` (see encode_fragment)."""
    g = _set(ns, FRAGMENT_SETS)
    data = _as_bytes(data)
    try:
        name, value = runtime.decode_fragment(
            data, g["FRAGMENT_WIDTH"], len(g["FRAGMENTS"]), lambda c: _frag_dec_entry(ns, c), ns
        )
    except EXIDecodeError:
        raise
    except RecursionError:
        raise EXIDecodeError("nesting too deep", 0) from None
    except Exception as e:
        raise EXIDecodeError(f"internal decoder error ({type(e).__name__}: {e})", 0) from e
    return Fragment(name, value)
