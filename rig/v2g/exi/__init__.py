"""Schema-informed EXI codec for ISO 15118-20, ISO 15118-2, DIN 70121 and supportedAppProtocol.

EXI 1.0 as V2G uses it: header byte 0x80, schema-informed, bit-packed, non-strict, whole
documents (fragments only for signatures), strings always written as table misses. The message
classes and the codec are generated from the schemas (see rig.v2g.exi.generate, which also notes
the DIN / -2 profile facts) and created on first use, so importing this package loads nothing of
them. DIN 70121 ("din") and -2 ("iso2") documents are one V2G_Message each: Header, then Body
with the message as a member of the BodyElement substitution group; which of the two a
connection speaks is what its supportedAppProtocol exchange chose ("app").

    encode(message) -> bytes           decode(ns, data) -> message
    to_json(message) -> dict            from_json(ns, obj) -> message
    encode_fragment(element, ...)       decode_fragment(ns, data) -> Fragment
    message_types(ns) -> {element name: class}    types(ns) -> module of classes and enums

`ns` is one of "app", "common", "dc", "ac", "acdp", "wpt", "din", "iso2" ("xmldsig" too for
fragments). Every failure is an EXIError: EXIEncodeError names the field path, EXIDecodeError
the bit offset.
The generated modules are also reachable as attributes: `from rig.v2g.exi import dc`.

Typing: each generated module has a stub beside it (rig.v2g.exi.stubgen), so under strict mypy
`dc.DC_ChargeLoopReq(...)` checks field names and types. `decode("dc", data)` and
`from_json("dc", obj)` with a literal namespace set return `dc.Document`, the union of the
set's global element classes: narrow it with `isinstance` or `match` (the usual engine step,
"which message is this"), with no cast. With a namespace set held in a plain str they return
EXIMessage, the protocol every generated class meets; encode() and to_json() take any
EXIMessage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

# the codec core is small; the generated modules it uses load on demand
from rig.v2g.exi.codec import (
    Fragment,
    decode,
    decode_fragment,
    encode,
    encode_fragment,
    message_types,
    types,
)
from rig.v2g.exi.errors import EXIDecodeError, EXIEncodeError, EXIError
from rig.v2g.exi.meta import EXIMessage

if TYPE_CHECKING:
    # What `from rig.v2g.exi import dc` gives, for mypy: the module __getattr__ below hides the
    # generated modules from it, these imports name them (at run time they load on first use).
    from rig.v2g.exi._generated import ac as ac
    from rig.v2g.exi._generated import acdp as acdp
    from rig.v2g.exi._generated import app as app
    from rig.v2g.exi._generated import common as common
    from rig.v2g.exi._generated import commontypes as commontypes
    from rig.v2g.exi._generated import dc as dc
    from rig.v2g.exi._generated import din as din
    from rig.v2g.exi._generated import iso2 as iso2
    from rig.v2g.exi._generated import wpt as wpt
    from rig.v2g.exi._generated import xmldsig as xmldsig

__all__ = [
    "DOCUMENT_SETS",
    "EXIDecodeError",
    "EXIEncodeError",
    "EXIError",
    "EXIMessage",
    "Fragment",
    "decode",
    "decode_fragment",
    "encode",
    "encode_fragment",
    "from_json",
    "message_types",
    "to_json",
    "types",
]

DOCUMENT_SETS = ("app", "common", "dc", "ac", "acdp", "wpt", "din", "iso2")
_MODULES = {"app", "common", "commontypes", "dc", "ac", "acdp", "wpt", "xmldsig", "din", "iso2"}


def to_json(message: EXIMessage) -> dict[str, Any]:
    """JSON form {element name: body} of a message."""
    convert = _to_json
    if convert is None:
        convert = _load_to_json()
    return convert(message)


# jsonform is imported on the first to_json (not at package import), then called directly: the
# trace takes the JSON form of every message of a run.
_to_json: Callable[[EXIMessage], dict[str, Any]] | None = None


def _load_to_json() -> Callable[[EXIMessage], dict[str, Any]]:
    global _to_json
    from rig.v2g.exi.jsonform import to_json as convert

    _to_json = convert
    return convert


@overload
def from_json(ns: Literal["app"], obj: Any) -> app.Document: ...
@overload
def from_json(ns: Literal["common"], obj: Any) -> common.Document: ...
@overload
def from_json(ns: Literal["dc"], obj: Any) -> dc.Document: ...
@overload
def from_json(ns: Literal["ac"], obj: Any) -> ac.Document: ...
@overload
def from_json(ns: Literal["acdp"], obj: Any) -> acdp.Document: ...
@overload
def from_json(ns: Literal["wpt"], obj: Any) -> wpt.Document: ...
@overload
def from_json(ns: Literal["din"], obj: Any) -> din.Document: ...
@overload
def from_json(ns: Literal["iso2"], obj: Any) -> iso2.Document: ...
@overload
def from_json(ns: Literal["xmldsig"], obj: Any) -> xmldsig.Document: ...
@overload
def from_json(ns: str, obj: Any) -> EXIMessage: ...
def from_json(ns: str, obj: Any) -> Any:
    """Message of a JSON form; raises EXIEncodeError naming the path of a bad field."""
    from rig.v2g.exi.jsonform import from_json as _from_json

    return _from_json(ns, obj)


def __getattr__(name: str) -> Any:
    # `from rig.v2g.exi import dc` gives the generated module (PEP 562), loaded on demand
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"rig.v2g.exi._generated.{name}")
    raise AttributeError(f"module 'rig.v2g.exi' has no attribute {name!r}")
