"""IEEE 488.2 definite-length arbitrary blocks (`#<n><length><bytes>`), as scopes send waveforms.

IEEE 488.2 8.7.9: `#`, one digit n (1-9) giving how many digits follow, those n digits giving the
byte count, then the bytes. Decoding is bounded: a block never claims more than `max_bytes`.
"""

from __future__ import annotations

#: Largest block accepted by default (a 64 Mpoint WORD record is 128 MB).
MAX_BLOCK_BYTES = 256 * 1024 * 1024


class BlockError(ValueError):
    """Not a well-formed definite-length block."""


def encode_block(payload: bytes) -> bytes:
    length = str(len(payload)).encode("ascii")
    if len(length) > 9:
        raise BlockError(f"payload of {len(payload)} bytes does not fit a definite-length block")
    return b"#" + str(len(length)).encode("ascii") + length + payload


def block_header_length(head: bytes) -> tuple[int, int]:
    """(header bytes, payload bytes) from the first bytes of a block (at least 2 + n)."""
    if len(head) < 2 or head[:1] != b"#":
        raise BlockError(f"a block starts with '#<digit>', got {head[:8]!r}")
    digits = head[1:2]
    if not digits.isdigit() or digits == b"0":
        # '#0' is the indefinite-length form (IEEE 488.2 8.7.10): not what these drivers read.
        raise BlockError(f"expected a definite-length block, got {head[:8]!r}")
    n = int(digits)
    if len(head) < 2 + n:
        raise BlockError("block header cut short")
    length_text = head[2 : 2 + n]
    if not length_text.isdigit():
        raise BlockError(f"block length is not decimal: {length_text!r}")
    return 2 + n, int(length_text)


def decode_block(data: bytes, *, max_bytes: int = MAX_BLOCK_BYTES) -> bytes:
    """The payload of one block; trailing terminator bytes after it are ignored."""
    header, length = block_header_length(data[:11])
    if length > max_bytes:
        raise BlockError(f"block claims {length} bytes, more than the {max_bytes} allowed")
    payload = data[header : header + length]
    if len(payload) != length:
        raise BlockError(f"block cut short: {len(payload)} of {length} bytes")
    return payload
