"""Bit-level building blocks the generated EXI codec calls: integers, binary, strings, windows.

Encoding accumulates into one Python int `a` that starts with a sentinel 1 bit, so the number of
bits written is `a.bit_length() - 1` and no separate counter is needed. Decoding reads from `D`,
an int holding a window of the input bytes whose last bit is absolute bit `E - 1`; reading bits
[p, q) is `(D >> (E - q)) & mask`. `win()` moves the window forward (and raises at the end of
the input), so each read costs O(window) however long the stream is.

String values follow EXI 1.0 section 7.3: the encoder always writes a miss (length + 2, then
the code points); the decoder also accepts local hits (0) and global hits (1) and keeps the
string tables (a miss of length > 0 is added to the global table and to the local table of
the element or attribute qname).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rig.v2g.exi.errors import EXIDecodeError, EXIEncodeError

WINDOW = 512  # bytes of input held in the decoder's working integer
HEADER = 0x80  # EXI header: distinguishing bits 10, no options, format version 1 (EXI 5)
MAX_STRING_CODE_POINT = 0x10FFFF


class StringTable:
    """Value partitions of one stream: global, and local per element/attribute qname."""

    __slots__ = ("glob", "local")

    def __init__(self) -> None:
        self.glob: list[str] = []
        self.local: dict[object, list[str]] = {}


# --- windows ----------------------------------------------------------------------------------


def win(data: bytes, p: int, q: int) -> tuple[int, int]:
    """A window of `data` starting at the byte of bit `p` and covering bit `q - 1`."""
    need = (q + 7) >> 3
    if need > len(data):
        raise EXIDecodeError(
            f"stream ends after {len(data)} bytes but {q - p} more bits are needed", p
        )
    start = p >> 3
    end = min(len(data), max(need, start + WINDOW))
    return int.from_bytes(data[start:end], "big"), end << 3


def look(D: int, E: int, p: int, data: bytes, need: int, ahead: int) -> tuple[int, int, int]:
    """`need` bits at p followed by `ahead` bits of look-ahead, near the end of the window:
    the bits before an unsigned integer and its first octet, then its next octets.

    The `need` bits must exist (else the stream is too short); look-ahead bits past the end of
    the stream read as 1, and so does the first bit of an octet the end cuts, so an integer
    that would run past the end reads as one whose octets all say "more follow" and is handed
    to dec_uint, which then reports the end of the stream.
    """
    total = len(data) << 3
    if p + need > total:
        raise EXIDecodeError(
            f"stream ends after {len(data)} bytes but {need} more bits are needed", p
        )
    q = p + need + ahead
    have = min(q, total)
    if have > E:  # else the window reaches the end of the stream already
        D, E = win(data, p, have)
    bits = (D >> (E - have)) & ((1 << (have - p)) - 1)
    missing = q - have
    out = (bits << missing) | ((1 << missing) - 1)
    cut = (have - (p + need - 8)) & 7  # bits of the integer's octet the end cuts
    if missing and cut:
        out |= 1 << (q - 1 - (have - cut))
    return out, D, E


def first_window(data: bytes) -> tuple[int, int]:
    end = min(len(data), WINDOW)
    return int.from_bytes(data[:end], "big"), end << 3


def finish(a: int) -> bytes:
    """Bytes of an accumulator (sentinel 1 bit first), padded with zero bits to a byte."""
    n = a.bit_length() - 1
    pad = -n % 8
    n += pad
    return ((a << pad) - (1 << n)).to_bytes(n >> 3, "big")


# --- unsigned integers (EXI 7.1.6) ------------------------------------------------------------


def enc_uint(a: int, x: int) -> int:
    """7-bit groups, least significant first; the high bit of each octet says 'more follow'.
    The octets are gathered in a small int first: the accumulator is shifted once."""
    octets = 0
    width = 8
    while x >= 128:
        octets = (octets << 8) | 128 | (x & 127)
        x >>= 7
        width += 8
    return (a << width) | (octets << 8) | x


BULK_GROUPS = 10  # octets of an unsigned integer read at once when the window holds them


def dec_uint(D: int, E: int, p: int, data: bytes, max_groups: int) -> tuple[int, int, int, int]:
    start = p
    limit = max_groups
    x = 0
    shift = 0
    bulk = min(max_groups, BULK_GROUPS) << 3
    q = p + bulk
    if q > E and q <= len(data) << 3:
        D, E = win(data, p, q)
    if q <= E:
        # the octets in one read (an unsignedLong's ten at most), then taken apart
        c = (D >> (E - q)) & ((1 << bulk) - 1)
        sh = bulk - 8
        while sh >= 0:
            b = (c >> sh) & 255
            x |= (b & 127) << shift
            if b < 128:
                return x, D, E, q - sh
            shift += 7
            sh -= 8
        p = q
        max_groups -= bulk >> 3
    for _ in range(max_groups):
        q = p + 8
        if q > E:
            D, E = win(data, p, q)
        b = (D >> (E - q)) & 255
        p = q
        x |= (b & 127) << shift
        if b < 128:
            return x, D, E, p
        shift += 7
    raise EXIDecodeError(f"unsigned integer longer than {limit} octets", start)


# --- binary (EXI 7.1.1) -----------------------------------------------------------------------


def enc_binary(a: int, x: bytes) -> int:
    n = len(x)
    a = (a << 8) | n if n < 128 else enc_uint(a, n)
    if n:
        a = (a << (n << 3)) | int.from_bytes(x, "big")
    return a


def dec_binary(
    D: int, E: int, p: int, data: bytes, lo: int | None, hi: int | None, what: str
) -> tuple[bytes, int, int, int]:
    start = p
    q = p + 8
    if q > E:
        D, E = win(data, p, q)
    n = (D >> (E - q)) & 255
    if n < 128:
        p = q
    else:
        n, D, E, p = dec_uint(D, E, p, data, 5)
    if (hi is not None and n > hi) or (lo is not None and n < lo):
        raise EXIDecodeError(f"{what}: {n} octets, the schema allows {_range(lo, hi)}", start)
    q = p + (n << 3)
    if q > len(data) << 3:
        raise EXIDecodeError(f"{what}: {n} octets run past the end of the stream", start)
    if not n:
        return b"", D, E, p
    if not p & 7:
        return data[p >> 3 : q >> 3], D, E, q
    if q > E:
        D, E = win(data, p, q)
    v = (D >> (E - q)) & ((1 << (n << 3)) - 1)
    return v.to_bytes(n, "big"), D, E, q


# --- strings (EXI 7.1.10, 7.3) ----------------------------------------------------------------


def enc_string(a: int, x: str) -> int:
    n = len(x)
    a = (a << 8) | (n + 2) if n < 126 else enc_uint(a, n + 2)
    if x.isascii():
        if n:
            a = (a << (n << 3)) | int.from_bytes(x.encode("ascii"), "big")
        return a
    for ch in x:
        c = ord(ch)
        a = (a << 8) | c if c < 128 else enc_uint(a, c)
    return a


def dec_string(
    D: int,
    E: int,
    p: int,
    data: bytes,
    st: StringTable,
    key: object,
    lo: int | None,
    hi: int | None,
    what: str,
) -> tuple[str, int, int, int]:
    start = p
    q = p + 8
    if q > E:
        D, E = win(data, p, q)
    n = (D >> (E - q)) & 255
    if n < 128:
        p = q
    else:
        n, D, E, p = dec_uint(D, E, p, data, 5)
    if n < 2:
        table = st.glob if n == 1 else st.local.get(key, [])
        kind = "global" if n == 1 else "local"
        m = len(table)
        if not m:
            raise EXIDecodeError(f"{what}: {kind} string table hit but the table is empty", start)
        w = (m - 1).bit_length()
        q = p + w
        if q > E:
            D, E = win(data, p, q)
        idx = (D >> (E - q)) & ((1 << w) - 1)
        if idx >= m:
            raise EXIDecodeError(f"{what}: {kind} string table hit {idx} of {m} entries", p)
        s = table[idx]
        if (hi is not None and len(s) > hi) or (lo is not None and len(s) < lo):
            raise EXIDecodeError(
                f"{what}: {len(s)} characters, the schema allows {_range(lo, hi)}", start
            )
        return s, D, E, q
    n -= 2
    if (hi is not None and n > hi) or (lo is not None and n < lo):
        raise EXIDecodeError(f"{what}: {n} characters, the schema allows {_range(lo, hi)}", start)
    q = p + (n << 3)
    if q > len(data) << 3:
        raise EXIDecodeError(f"{what}: {n} characters run past the end of the stream", start)
    if not n:
        return "", D, E, p
    if q > E:
        D, E = win(data, p, q)
    raw = ((D >> (E - q)) & ((1 << (n << 3)) - 1)).to_bytes(n, "big")
    if raw.isascii():
        s = raw.decode("ascii")
        p = q
    else:
        chars: list[str] = []
        for _ in range(n):
            at = p
            c, D, E, p = dec_uint(D, E, p, data, 3)
            if c > MAX_STRING_CODE_POINT:
                raise EXIDecodeError(f"{what}: code point {c:#x} is not a character", at)
            chars.append(chr(c))
        s = "".join(chars)
    st.glob.append(s)
    local = st.local.get(key)
    if local is None:
        st.local[key] = [s]
    else:
        local.append(s)
    return s, D, E, p


# --- empty simple-typed elements --------------------------------------------------------------

# Second level of the first state of a simple type's grammar, non-strict, default options
# (EXI 1.0 8.5.4.4.1): EE 2.0, AT(xsi:type) 2.1, AT(xsi:nil) 2.2, AT(*) 2.3,
# AT[schema-invalid value] 2.4, SE(*) 2.5, CH[untyped] 2.6: 7 productions, 3 bits.
FIRST_STATE_LEVEL2_WIDTH = 3


def _empty_or_value(D: int, E: int, p: int, data: bytes, what: str) -> tuple[bool, int, int, int]:
    """Read the 1-bit event code after SE of a simple-typed element: CH (False) or the
    second-level EE of an empty element (True; other second-level events are refused)."""
    q = p + 1
    if q > E:
        D, E = win(data, p, q)
    if not (D >> (E - q)) & 1:
        return False, D, E, q
    r = q + FIRST_STATE_LEVEL2_WIDTH
    if r > E:
        D, E = win(data, q, r)
    if (D >> (E - r)) & ((1 << FIRST_STATE_LEVEL2_WIDTH) - 1):
        raise EXIDecodeError(
            f"{what}: event code escapes to a second-level event other than EE (an "
            "undeclared or non-schema event, not allowed for -20)",
            p,
        )
    return True, D, E, r


def _end(D: int, E: int, p: int, data: bytes, what: str) -> tuple[int, int, int]:
    q = p + 1
    if q > E:
        D, E = win(data, p, q)
    if (D >> (E - q)) & 1:
        raise EXIDecodeError(
            f"{what}: event code escapes to the second level (an undeclared or non-schema "
            "event, not allowed for -20)",
            p,
        )
    return D, E, q


def dec_string_element(
    D: int,
    E: int,
    p: int,
    data: bytes,
    st: StringTable,
    key: object,
    lo: int | None,
    hi: int | None,
    what: str,
) -> tuple[str, int, int, int]:
    """CH, string, EE of a string-typed element; an element written without CH (EE at the
    second level, as EXIficient writes empty values) is the empty string."""
    empty, D, E, p = _empty_or_value(D, E, p, data, what)
    if empty:
        if lo:
            raise EXIDecodeError(f"{what}: empty, the schema allows {_range(lo, hi)}", p)
        return "", D, E, p
    s, D, E, p = dec_string(D, E, p, data, st, key, lo, hi, what)
    D, E, p = _end(D, E, p, data, what)
    return s, D, E, p


def dec_binary_element(
    D: int, E: int, p: int, data: bytes, lo: int | None, hi: int | None, what: str
) -> tuple[bytes, int, int, int]:
    """CH, binary, EE of a binary-typed element; written without CH it is empty."""
    empty, D, E, p = _empty_or_value(D, E, p, data, what)
    if empty:
        if lo:
            raise EXIDecodeError(f"{what}: empty, the schema allows {_range(lo, hi)}", p)
        return b"", D, E, p
    b, D, E, p = dec_binary(D, E, p, data, lo, hi, what)
    D, E, p = _end(D, E, p, data, what)
    return b, D, E, p


# --- errors raised by generated code ----------------------------------------------------------


def _range(lo: int | None, hi: int | None) -> str:
    if lo is None and hi is None:
        return "any"
    if lo is None:
        return f"at most {hi}"
    if hi is None:
        return f"at least {lo}"
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def escape(p: int, c: int, width: int, mask: int, where: str) -> EXIDecodeError:
    """A 1-bit event code read as 1: the escape to second-level (undeclared) events."""
    bad = c & mask
    at = p + width - bad.bit_length()
    return EXIDecodeError(
        f"{where}: event code escapes to the second level (an undeclared or non-schema event, "
        "not allowed for -20)",
        at,
    )


def bad_code(p: int, code: int, n: int, where: str) -> EXIDecodeError:
    if code == n:
        msg = (
            f"{where}: event code {code} escapes to the second level (an undeclared or "
            "non-schema event, not allowed for -20)"
        )
    else:
        msg = f"{where}: event code {code} is undefined ({n} productions)"
    return EXIDecodeError(msg, p)


def unsupported(p: int, where: str, what: str = "wildcard content") -> EXIDecodeError:
    return EXIDecodeError(f"{where}: unsupported: {what}", p)


def out_of_range(p: int, what: str, value: int, lo: int | None, hi: int | None) -> EXIDecodeError:
    return EXIDecodeError(f"{what}: value {value} outside {_range(lo, hi)}", p)


def bad_enum_index(p: int, what: str, index: int, count: int) -> EXIDecodeError:
    return EXIDecodeError(f"{what}: enumeration index {index} of {count} values", p)


def bad_type(x: object, expected: str) -> EXIEncodeError:
    if x is None:
        return missing()
    return EXIEncodeError(f"expected {expected}, got {type(x).__name__} {x!r:.60}")


def bad_int(x: object, lo: int | None, hi: int | None) -> EXIEncodeError:
    if type(x) is not int:
        return bad_type(x, "int")
    return EXIEncodeError(f"value {x} outside the schema range {_range(lo, hi)}")


def bad_length(x: object, lo: int | None, hi: int | None, expected: type) -> EXIEncodeError:
    if type(x) is not expected:
        return bad_type(x, expected.__name__)
    assert isinstance(x, (str, bytes))
    unit = "characters" if expected is str else "octets"
    return EXIEncodeError(f"{len(x)} {unit}, the schema allows {_range(lo, hi)}")


def bad_enum(x: object, enum_name: str) -> EXIEncodeError:
    if x is None:
        return missing()
    return EXIEncodeError(f"expected a member of {enum_name}, got {x!r:.60}")


def missing() -> EXIEncodeError:
    return EXIEncodeError("required element or attribute is missing (None)")


def bad_count(x: object, lo: int, hi: int) -> EXIEncodeError:
    if x is None and lo > 0:
        return missing()
    if not isinstance(x, (list, tuple)):
        return bad_type(x, "list")
    top = "unbounded" if hi < 0 else str(hi)
    return EXIEncodeError(f"{len(x)} items, the schema allows {lo}..{top}")


def bad_class(x: object, expected: str) -> EXIEncodeError:
    if x is None:
        return missing()
    return EXIEncodeError(f"expected {expected}, got {type(x).__name__}")


def not_here(what: str) -> EXIEncodeError:
    return EXIEncodeError(
        f"{what} cannot appear here: the content does not match the schema (a choice with "
        "none or several alternatives set, or elements the model does not allow together)"
    )


def incomplete(expected: str) -> EXIEncodeError:
    return EXIEncodeError(f"content is incomplete: expected {expected}")


def wrap_encode(e: Exception) -> EXIEncodeError:
    """An unexpected exception inside an encoder (a value of the wrong shape) as an encode error."""
    return EXIEncodeError(f"cannot encode: {type(e).__name__}: {e}")


def unsupported_encode(what: str) -> EXIEncodeError:
    return EXIEncodeError(f"unsupported: {what}")


# --- the JSON form ---------------------------------------------------------------------------


def json_body(value: object) -> Any:
    """The generic JSON walk of a value (rig.v2g.exi.jsonform.body): what a generated converter
    hands an instance it does not convert itself. Imported on first use, not with the codec."""
    from rig.v2g.exi.jsonform import body

    return body(value)


# --- documents and fragments ------------------------------------------------------------------

Encoder = Callable[[int, Any], int]
Decoder = Callable[[int, int, int, bytes, StringTable, type], tuple[Any, int, int, int]]


def _check_header(data: bytes) -> None:
    if not data:
        raise EXIDecodeError("empty stream", 0)
    if data[0] != HEADER:
        if data[:4] == b"$EXI":
            raise EXIDecodeError("unsupported: EXI cookie", 0)
        raise EXIDecodeError(
            f"EXI header byte is {data[0]:#04x}, expected 0x80 (no options, version 1)", 0
        )


def _check_end(data: bytes, p: int) -> None:
    spare = (len(data) << 3) - p
    if spare >= 8:
        raise EXIDecodeError(f"{spare >> 3} trailing bytes after the end of the stream", p)


def encode_document(width: int, code: int, enc: Encoder, msg: object) -> bytes:
    """Header, SE(root) of the document grammar (EXI 8.5.1), the root's content; ED is 0 bits."""
    a = (((1 << 8) | HEADER) << width) | code
    return finish(enc(a, msg))


def decode_document(
    data: bytes,
    width: int,
    n: int,
    root: Callable[[int], tuple[Decoder, type] | None],
    where: str,
) -> object:
    """Header, SE(root) among n global elements (code n is SE(*)), the root; ED is 0 bits."""
    size = len(data)
    if not size or data[0] != HEADER:
        _check_header(data)
    if size > WINDOW:
        D, E = first_window(data)
    else:
        D, E = int.from_bytes(data, "big"), size << 3
    q = 8 + width
    if q > E:
        D, E = win(data, 8, q)
    code = (D >> (E - q)) & ((1 << width) - 1)
    if code >= n:
        if code == n:
            raise unsupported(8, where, "root element SE(*) (wildcard content)")
        raise bad_code(8, code, n + 1, where)
    entry = root(code)
    if entry is None:
        raise unsupported(8, where, "root element without a generated class")
    msg, D, E, p = entry[0](D, E, q, data, StringTable(), entry[1])
    if (size << 3) - p >= 8:
        _check_end(data, p)
    return msg


def encode_fragment(width: int, code: int, end_code: int, enc: Encoder, value: object) -> bytes:
    """Header, SE(F_i) of the fragment grammar (EXI 8.5.2), the element, then ED."""
    a = (((1 << 8) | HEADER) << width) | code
    a = enc(a, value)
    return finish((a << width) | end_code)


def decode_fragment(
    data: bytes,
    width: int,
    n: int,
    element: Callable[[int], tuple[str, Decoder, type] | None],
    where: str,
) -> tuple[str, object]:
    """Header, SE(F_i) among n elements (n is SE(*), n + 1 is ED), the element, then ED."""
    _check_header(data)
    D, E = first_window(data)

    def read_code(D: int, E: int, p: int) -> tuple[int, int, int, int]:
        q = p + width
        if q > E:
            D, E = win(data, p, q)
        return (D >> (E - q)) & ((1 << width) - 1), D, E, q

    code, D, E, q = read_code(D, E, 8)
    if code == n + 1:
        raise EXIDecodeError(f"{where}: empty fragment", 8)
    if code >= n:
        if code == n:
            raise unsupported(8, where, "fragment element SE(*) (wildcard content)")
        raise bad_code(8, code, n + 2, where)
    entry = element(code)
    if entry is None:
        raise unsupported(8, where, "fragment element whose declarations have different types")
    name, dec, cls = entry
    value, D, E, p = dec(D, E, q, data, StringTable(), cls)
    code, D, E, q = read_code(D, E, p)
    if code != n + 1:
        if code < n:
            raise unsupported(p, where, "fragment with more than one element")
        raise bad_code(p, code, n + 2, where)
    _check_end(data, q)
    return name, value
