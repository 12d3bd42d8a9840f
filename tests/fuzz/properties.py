"""The robustness property of the EXI decoder, shared by the atheris harness and its CI variant.

Issue 3: for any byte string, decode(ns, data) returns a message or raises EXIDecodeError, never
another exception. rig.v2g.exi.decode turns an unexpected exception of its own into
EXIDecodeError("internal decoder error ...") chained `from` the original, and a RecursionError
into "nesting too deep": both keep the interface but are decoder bugs (nothing in the -20 schemas
nests deep enough to exhaust the stack), so they count as violations here.

A decoded message must also survive the way back: encode() gives bytes (or EXIEncodeError, when
the decoder accepted a value the encoder's facet checks refuse: counted, not a violation), and
those bytes decode to an equal message.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Outcome(Enum):
    REJECTED = "rejected"  # EXIDecodeError, as it should for a malformed stream
    DECODED = "decoded"  # a message that re-encodes and decodes back equal
    NOT_REENCODABLE = "not re-encodable"  # decoded, but encode() refuses it (EXIEncodeError)


class PropertyViolation(AssertionError):
    """The decoder broke the property for one input."""


def hidden_internal_error(exc: BaseException) -> BaseException | None:
    """The non-EXI exception a decode error stands in for, if it stands in for one."""
    from rig.v2g.exi import EXIError

    for inner in (exc.__cause__, exc.__context__):
        if inner is not None and not isinstance(inner, EXIError):
            return inner
    return None


def check_decode(exi: Any, ns: str, data: bytes) -> Outcome:
    """Apply the property to one input; raise PropertyViolation (or let any other error out)."""
    try:
        message = exi.decode(ns, data)
    except exi.EXIDecodeError as exc:
        inner = hidden_internal_error(exc)
        if inner is not None:
            raise PropertyViolation(
                f"decode({ns!r}) hid {type(inner).__name__}: {inner} behind {exc}"
            ) from exc
        return Outcome.REJECTED
    try:
        # ns given: an xmldsig root (e.g. DigestValue) belongs to every set, with a different
        # root event code in each; encode() alone would use the class's home set.
        again = exi.encode(message, ns)
    except exi.EXIEncodeError:
        return Outcome.NOT_REENCODABLE
    back = exi.decode(ns, again)
    if back != message:
        raise PropertyViolation(f"decode(encode(m)) != m for ns={ns!r}: {again.hex()}")
    return Outcome.DECODED
