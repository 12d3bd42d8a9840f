"""Schema-informed EXI codec for ISO 15118-20 and the supportedAppProtocol handshake.

EXI 1.0 as -20 uses it: header byte 0x80, schema-informed, bit-packed, non-strict, whole
documents (fragments only for signatures), strings always written as table misses. The message
classes and the codec are generated from the schemas (see rig.v2g.exi.generate) and created on
first use, so importing this package loads nothing of them.

    encode(message) -> bytes           decode(ns, data) -> message
    to_json(message) -> dict            from_json(ns, obj) -> message
    encode_fragment(element, ...)       decode_fragment(ns, data) -> Fragment
    message_types(ns) -> {element name: class}    types(ns) -> module of classes and enums

`ns` is one of "app", "common", "dc", "ac", "acdp", "wpt" ("xmldsig" too for fragments). Every
failure is an EXIError: EXIEncodeError names the field path, EXIDecodeError the bit offset.
The generated modules are also reachable as attributes: `from rig.v2g.exi import dc`.
"""

from __future__ import annotations

from typing import Any

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

__all__ = [
    "DOCUMENT_SETS",
    "EXIDecodeError",
    "EXIEncodeError",
    "EXIError",
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

DOCUMENT_SETS = ("app", "common", "dc", "ac", "acdp", "wpt")
_MODULES = {"app", "common", "commontypes", "dc", "ac", "acdp", "wpt", "xmldsig"}


def to_json(message: object) -> dict[str, Any]:
    """JSON form {element name: body} of a message."""
    from rig.v2g.exi.jsonform import to_json as _to_json

    return _to_json(message)


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
