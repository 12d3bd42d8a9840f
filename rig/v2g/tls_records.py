"""TLS 1.3 records read back from captured bytes and an NSS key log (SSLKEYLOGFILE).

The capture side of the rig decodes the V2G traffic of a TLS session with this: each direction's
TCP payload goes in as a byte stream, the key log the TLS layer wrote gives the traffic secrets,
and out come the records in order, decrypted where the keys allow (RFC 8446):

    decoder = Tls13Decoder(KeyLog.parse(keylog_text))
    for record in decoder.feed(Direction.CLIENT, client_bytes): ...
    for record in decoder.feed(Direction.SERVER, server_bytes): ...

Feed the two directions in the order the bytes were seen (the ServerHello must come before the
client's encrypted records are decoded); either direction may come in any fragmentation.

Keys: HKDF-Expand-Label (RFC 8446 7.1) from the handshake and application traffic secrets
(CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT_/SERVER_TRAFFIC_SECRET_0), key and iv per
direction (7.3), the per-record nonce from the 64-bit sequence number (5.3), additional data the
record header (5.2), inner content type after the zero padding (5.4), "traffic upd" after a
KeyUpdate (7.2). Suites: AES-128/256-GCM, ChaCha20-Poly1305, AES-128-CCM(-8).

Bounded: a record longer than 2^14 + 256 bytes, inner plaintext longer than 2^14 + 1 bytes, a
handshake message longer than MAX_HANDSHAKE_MESSAGE, a key-log line or file over its limit, all
end in TlsDecodeError naming what and where; nothing loops on input it cannot consume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

MAX_CIPHERTEXT = (1 << 14) + 256  # RFC 8446 5.2: TLSCiphertext.length
MAX_INNER_PLAINTEXT = (1 << 14) + 1  # content plus the content type byte (padding excluded)
RECORD_HEADER = 5
MAX_HANDSHAKE_MESSAGE = 1 << 18  # more than any certificate chain a -20 peer sends
MAX_KEYLOG_LINE = 1024
MAX_KEYLOG_BYTES = 16 << 20

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_RANDOM = bytes.fromhex(
    "CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"
)


class TlsDecodeError(ValueError):
    """Input that is not a TLS 1.3 stream this module can decode, or keys that do not fit."""


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


class HandshakeType(IntEnum):
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    NEW_SESSION_TICKET = 4
    END_OF_EARLY_DATA = 5
    ENCRYPTED_EXTENSIONS = 8
    CERTIFICATE = 11
    CERTIFICATE_REQUEST = 13
    CERTIFICATE_VERIFY = 15
    FINISHED = 20
    KEY_UPDATE = 24
    MESSAGE_HASH = 254


class Direction(StrEnum):
    CLIENT = "client"  # client to server (EVCC to SECC)
    SERVER = "server"  # server to client


class Epoch(StrEnum):
    """Which keys protect a record."""

    PLAINTEXT = "plaintext"
    HANDSHAKE = "handshake"
    APPLICATION = "application"


class KeyLogLabel(StrEnum):
    """The TLS 1.3 labels of the NSS key log format."""

    CLIENT_HANDSHAKE_TRAFFIC_SECRET = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
    SERVER_HANDSHAKE_TRAFFIC_SECRET = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
    CLIENT_TRAFFIC_SECRET_0 = "CLIENT_TRAFFIC_SECRET_0"
    SERVER_TRAFFIC_SECRET_0 = "SERVER_TRAFFIC_SECRET_0"
    EXPORTER_SECRET = "EXPORTER_SECRET"


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One TLSPlaintext/TLSCiphertext record as it was on the wire."""

    content_type: int
    legacy_version: int
    fragment: bytes
    offset: int  # where its header starts in the direction's stream

    @property
    def header(self) -> bytes:
        return bytes(
            (self.content_type, self.legacy_version >> 8, self.legacy_version & 0xFF)
        ) + len(self.fragment).to_bytes(2, "big")


class RecordReader:
    """Splits one direction's byte stream into records, across any fragmentation."""

    def __init__(self, name: str = "stream") -> None:
        self._name = name
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0]

    def feed(self, data: bytes) -> list[Record]:
        self._buffer += data
        records: list[Record] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= RECORD_HEADER:
            ctype = buf[pos]
            if ctype not in _CONTENT_TYPES:
                raise TlsDecodeError(
                    f"{self._name} offset {self._offset + pos}: content type {ctype} is not TLS"
                )
            length = int.from_bytes(buf[pos + 3 : pos + 5], "big")
            if length > MAX_CIPHERTEXT:
                raise TlsDecodeError(
                    f"{self._name} offset {self._offset + pos}: record length {length} > "
                    f"{MAX_CIPHERTEXT} (RFC 8446 5.2)"
                )
            end = pos + RECORD_HEADER + length
            if end > len(buf):
                break
            version = int.from_bytes(buf[pos + 1 : pos + 3], "big")
            records.append(
                Record(ctype, version, bytes(buf[pos + RECORD_HEADER : end]), self._offset + pos)
            )
            pos = end
        del buf[:pos]
        self._offset += pos
        return records

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record held back (at most one record)."""
        return len(self._buffer)


_CONTENT_TYPES = frozenset(int(c) for c in ContentType)


def parse_records(stream: bytes) -> tuple[list[Record], bytes]:
    """Every whole record of a stream, and the incomplete tail."""
    reader = RecordReader()
    records = reader.feed(stream)
    return records, stream[len(stream) - reader.pending :] if reader.pending else b""


# --- key schedule ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suite:
    """A TLS 1.3 cipher suite as far as record protection goes."""

    name: str
    code: int
    hash: Callable[[], hashes.HashAlgorithm]
    key_length: int
    aead: Callable[[bytes], AESGCM | ChaCha20Poly1305 | AESCCM]

    @property
    def hash_length(self) -> int:
        return self.hash().digest_size


SUITES: dict[int, Suite] = {
    s.code: s
    for s in (
        Suite("TLS_AES_128_GCM_SHA256", 0x1301, hashes.SHA256, 16, AESGCM),
        Suite("TLS_AES_256_GCM_SHA384", 0x1302, hashes.SHA384, 32, AESGCM),
        Suite("TLS_CHACHA20_POLY1305_SHA256", 0x1303, hashes.SHA256, 32, ChaCha20Poly1305),
        Suite("TLS_AES_128_CCM_SHA256", 0x1304, hashes.SHA256, 16, AESCCM),
        Suite("TLS_AES_128_CCM_8_SHA256", 0x1305, hashes.SHA256, 16, lambda k: AESCCM(k, 8)),
    )
}


def hkdf_expand_label(
    secret: bytes, label: bytes, context: bytes, length: int, hash_algorithm: hashes.HashAlgorithm
) -> bytes:
    """HKDF-Expand-Label (RFC 8446 7.1): HKDF-Expand(secret, HkdfLabel, length) with
    HkdfLabel = uint16 length || opaque label<7..255> ("tls13 " + label) || opaque context<0..255>."""
    full = b"tls13 " + label
    if len(full) > 255 or len(context) > 255 or not 0 < length < 1 << 16:
        raise ValueError("HKDF-Expand-Label: label, context or length out of range")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hash_algorithm, length, info).derive(secret)


def traffic_keys(secret: bytes, suite: Suite) -> tuple[bytes, bytes]:
    """(key, iv) of one direction from its traffic secret (RFC 8446 7.3)."""
    h = suite.hash()
    return (
        hkdf_expand_label(secret, b"key", b"", suite.key_length, h),
        hkdf_expand_label(secret, b"iv", b"", 12, h),
    )


def next_traffic_secret(secret: bytes, suite: Suite) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", suite.hash_length, suite.hash())


@dataclass(frozen=True, slots=True)
class InnerPlaintext:
    content_type: int
    content: bytes
    padding: int  # zero bytes that followed the content type


class RecordDecryptor:
    """One direction's record protection under one traffic secret; counts sequence numbers."""

    def __init__(self, secret: bytes, suite: Suite) -> None:
        self.secret = secret
        self.suite = suite
        key, self._iv = traffic_keys(secret, suite)
        self._aead = suite.aead(key)
        self.sequence = 0

    def open(self, record: Record) -> InnerPlaintext:
        if record.content_type != ContentType.APPLICATION_DATA:
            raise TlsDecodeError(
                f"record at offset {record.offset}: protected records have outer type 23, "
                f"not {record.content_type}"
            )
        # RFC 8446 5.3: the 64-bit sequence number, left-padded to the iv length, XOR the iv
        seq = self.sequence.to_bytes(len(self._iv), "big")
        nonce = bytes(a ^ b for a, b in zip(self._iv, seq, strict=True))
        try:
            plain = self._aead.decrypt(nonce, record.fragment, record.header)
        except InvalidTag:
            raise TlsDecodeError(
                f"record at offset {record.offset} (sequence {self.sequence}) does not decrypt "
                f"with {self.suite.name}: wrong key, a record missing before it, or corrupt"
            ) from None
        self.sequence += 1
        # RFC 8446 5.4: content || content type || zeros; the type is the last non-zero byte
        end = len(plain)
        while end and plain[end - 1] == 0:
            end -= 1
        if not end:
            raise TlsDecodeError(f"record at offset {record.offset}: inner plaintext all zeros")
        if end > MAX_INNER_PLAINTEXT:
            raise TlsDecodeError(
                f"record at offset {record.offset}: inner plaintext {end} bytes > "
                f"{MAX_INNER_PLAINTEXT}"
            )
        return InnerPlaintext(plain[end - 1], plain[: end - 1], len(plain) - end)


# --- key log -----------------------------------------------------------------------------------


class KeyLog:
    """Secrets from an NSS key log, by client random (lines: LABEL <client random> <secret>)."""

    def __init__(self) -> None:
        self._secrets: dict[bytes, dict[str, bytes]] = {}

    @classmethod
    def parse(cls, text: str) -> KeyLog:
        if len(text) > MAX_KEYLOG_BYTES:
            raise TlsDecodeError(f"key log of {len(text)} characters > {MAX_KEYLOG_BYTES}")
        log = cls()
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if len(line) > MAX_KEYLOG_LINE:
                raise TlsDecodeError(f"key log line {number}: longer than {MAX_KEYLOG_LINE}")
            log.add_line(line, number)
        return log

    def add_line(self, line: str, number: int = 0) -> None:
        parts = line.split()
        if len(parts) != 3:
            raise TlsDecodeError(f"key log line {number}: expected 'LABEL random secret'")
        label, random_hex, secret_hex = parts
        try:
            random = bytes.fromhex(random_hex)
            secret = bytes.fromhex(secret_hex)
        except ValueError:
            raise TlsDecodeError(f"key log line {number}: random or secret is not hex") from None
        if len(random) != 32:
            raise TlsDecodeError(f"key log line {number}: client random is not 32 bytes")
        self._secrets.setdefault(random, {})[label] = secret

    def secret(self, client_random: bytes, label: KeyLogLabel) -> bytes:
        try:
            return self._secrets[client_random][label.value]
        except KeyError:
            raise TlsDecodeError(
                f"key log has no {label} for client random {client_random.hex()}"
            ) from None

    def __contains__(self, client_random: object) -> bool:
        return client_random in self._secrets

    def __len__(self) -> int:
        return len(self._secrets)


# --- hello messages ----------------------------------------------------------------------------


class _Cursor:
    """Bounded reads from a handshake body; every overrun is a TlsDecodeError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TlsDecodeError(f"{self.what}: truncated at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))


def _extensions(cursor: _Cursor) -> dict[int, bytes]:
    if cursor.pos == len(cursor.data):
        return {}
    block = _Cursor(cursor.vector(2), cursor.what + " extensions")
    out: dict[int, bytes] = {}
    while block.pos < len(block.data):
        ext_type = block.uint(2)
        out[ext_type] = block.vector(2)
    return out


_SUPPORTED_VERSIONS = 43


@dataclass(frozen=True, slots=True)
class ClientHello:
    random: bytes
    session_id: bytes  # legacy_session_id, echoed by the ServerHello
    cipher_suites: tuple[int, ...]
    supported_versions: tuple[int, ...]  # empty: no supported_versions extension (TLS <= 1.2)
    extensions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ServerHello:
    random: bytes
    cipher_suite: int
    selected_version: int | None

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HELLO_RETRY_RANDOM


def parse_client_hello(body: bytes) -> ClientHello:
    """The fields of a ClientHello body (after the 4-byte handshake header) that TLS 1.3 needs."""
    c = _Cursor(body, "ClientHello")
    c.uint(2)  # legacy_version
    random = c.take(32)
    session_id = c.vector(1)
    suites_raw = c.vector(2)
    if len(suites_raw) % 2:
        raise TlsDecodeError("ClientHello: odd cipher_suites length")
    c.vector(1)  # legacy_compression_methods
    extensions = _extensions(c)
    versions: tuple[int, ...] = ()
    if _SUPPORTED_VERSIONS in extensions:
        v = _Cursor(extensions[_SUPPORTED_VERSIONS], "ClientHello supported_versions")
        raw = v.vector(1)
        versions = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))
    suites = tuple(
        int.from_bytes(suites_raw[i : i + 2], "big") for i in range(0, len(suites_raw), 2)
    )
    return ClientHello(random, session_id, suites, versions, tuple(extensions))


def parse_server_hello(body: bytes) -> ServerHello:
    c = _Cursor(body, "ServerHello")
    c.uint(2)
    random = c.take(32)
    c.vector(1)
    suite = c.uint(2)
    c.uint(1)
    extensions = _extensions(c)
    selected = None
    if _SUPPORTED_VERSIONS in extensions:
        selected = _Cursor(extensions[_SUPPORTED_VERSIONS], "ServerHello supported_versions").uint(
            2
        )
    return ServerHello(random, suite, selected)


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    msg_type: int
    body: bytes


class HandshakeReassembler:
    """Handshake messages from record contents: a message may span records, a record may hold
    several messages."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[HandshakeMessage]:
        self._buffer += data
        out: list[HandshakeMessage] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 4:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                raise TlsDecodeError(
                    f"{self._name}: handshake message of {length} bytes > {MAX_HANDSHAKE_MESSAGE}"
                )
            if len(buf) - pos - 4 < length:
                break
            out.append(HandshakeMessage(buf[pos], bytes(buf[pos + 4 : pos + 4 + length])))
            pos += 4 + length
        del buf[:pos]
        return out

    @property
    def empty(self) -> bool:
        return not self._buffer


# --- the decoder -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record with its protection removed (or as it was, if it was not protected)."""

    direction: Direction
    epoch: Epoch
    content_type: int  # the inner type for protected records
    data: bytes
    sequence: int | None  # the record's sequence number under its keys (None: plaintext)
    offset: int  # where its header starts in the direction's stream

    @property
    def is_application_data(self) -> bool:
        return self.content_type == ContentType.APPLICATION_DATA


_HANDSHAKE_LABEL = {
    Direction.CLIENT: KeyLogLabel.CLIENT_HANDSHAKE_TRAFFIC_SECRET,
    Direction.SERVER: KeyLogLabel.SERVER_HANDSHAKE_TRAFFIC_SECRET,
}
_APPLICATION_LABEL = {
    Direction.CLIENT: KeyLogLabel.CLIENT_TRAFFIC_SECRET_0,
    Direction.SERVER: KeyLogLabel.SERVER_TRAFFIC_SECRET_0,
}


class _Side:
    def __init__(self, direction: Direction) -> None:
        self.reader = RecordReader(f"{direction} stream")
        self.plain_handshake = HandshakeReassembler(f"{direction} plaintext handshake")
        self.handshake = HandshakeReassembler(f"{direction} handshake")
        self.decryptor: RecordDecryptor | None = None
        self.epoch = Epoch.PLAINTEXT


class Tls13Decoder:
    """Decodes both directions of one TLS 1.3 session with the secrets of a key log (sans-IO)."""

    def __init__(self, key_log: KeyLog) -> None:
        self.key_log = key_log
        self._sides = {d: _Side(d) for d in Direction}
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.suite: Suite | None = None

    def feed(self, direction: Direction, data: bytes) -> list[DecodedRecord]:
        side = self._sides[direction]
        return [self._decode(direction, side, r) for r in side.reader.feed(data)]

    def _decode(self, direction: Direction, side: _Side, record: Record) -> DecodedRecord:
        if record.content_type != ContentType.APPLICATION_DATA or side.decryptor is None:
            # Protected records always have outer type 23 (RFC 8446 5.2); any other is in the
            # clear: hellos, the compatibility change_cipher_spec (D.4), an early alert.
            if record.content_type == ContentType.HANDSHAKE and side.decryptor is None:
                for message in side.plain_handshake.feed(record.fragment):
                    self._plaintext_handshake(direction, message)
            elif record.content_type == ContentType.APPLICATION_DATA:
                raise TlsDecodeError(
                    f"{direction} record at offset {record.offset}: protected record before "
                    "the keys are known (feed the ServerHello first, or the key log lacks them)"
                )
            return DecodedRecord(
                direction, Epoch.PLAINTEXT, record.content_type, record.fragment, None,
                record.offset,
            )  # fmt: skip
        decryptor = side.decryptor
        sequence = decryptor.sequence
        inner = decryptor.open(record)
        epoch = side.epoch
        if inner.content_type == ContentType.HANDSHAKE:
            for message in side.handshake.feed(inner.content):
                self._protected_handshake(direction, side, message)
        return DecodedRecord(
            direction, epoch, inner.content_type, inner.content, sequence, record.offset
        )

    def _plaintext_handshake(self, direction: Direction, message: HandshakeMessage) -> None:
        if message.msg_type == HandshakeType.CLIENT_HELLO and direction is Direction.CLIENT:
            if self.client_hello is None:  # after a HelloRetryRequest the random stays the same
                self.client_hello = parse_client_hello(message.body)
        elif message.msg_type == HandshakeType.SERVER_HELLO and direction is Direction.SERVER:
            server_hello = parse_server_hello(message.body)
            if server_hello.is_hello_retry_request:
                return  # a second ClientHello follows, still in the clear
            self.server_hello = server_hello
            suite = SUITES.get(server_hello.cipher_suite)
            if suite is None:
                raise TlsDecodeError(
                    f"ServerHello: unknown cipher suite {server_hello.cipher_suite:#06x}"
                )
            if self.client_hello is None:
                raise TlsDecodeError("ServerHello before any ClientHello was fed")
            self.suite = suite
            for d, s in self._sides.items():
                secret = self.key_log.secret(self.client_hello.random, _HANDSHAKE_LABEL[d])
                s.decryptor = RecordDecryptor(secret, suite)
                s.epoch = Epoch.HANDSHAKE

    def _protected_handshake(
        self, direction: Direction, side: _Side, message: HandshakeMessage
    ) -> None:
        assert self.suite is not None and self.client_hello is not None
        if message.msg_type == HandshakeType.FINISHED and side.epoch is Epoch.HANDSHAKE:
            # RFC 8446 7.1: after its Finished, a side protects with its application secret
            secret = self.key_log.secret(self.client_hello.random, _APPLICATION_LABEL[direction])
            side.decryptor = RecordDecryptor(secret, self.suite)
            side.epoch = Epoch.APPLICATION
        elif message.msg_type == HandshakeType.KEY_UPDATE and side.epoch is Epoch.APPLICATION:
            assert side.decryptor is not None
            side.decryptor = RecordDecryptor(
                next_traffic_secret(side.decryptor.secret, self.suite), self.suite
            )


def decode_streams(
    key_log: KeyLog, client_stream: bytes, server_stream: bytes
) -> tuple[Tls13Decoder, list[DecodedRecord]]:
    """Decode a whole session from its two directions captured apart (the TCP payload each way).

    Records are taken from each direction in order; a direction waits while its next record is
    protected by keys not known yet (the client's Finished waits for the ServerHello), which is
    all the ordering TLS 1.3 needs. Raises TlsDecodeError for what cannot be decoded, including
    a trailing incomplete record."""
    decoder = Tls13Decoder(key_log)
    pending: dict[Direction, list[Record]] = {}
    for direction, stream in ((Direction.CLIENT, client_stream), (Direction.SERVER, server_stream)):
        reader = RecordReader(f"{direction} stream")
        pending[direction] = reader.feed(stream)
        if reader.pending:
            raise TlsDecodeError(
                f"{direction} stream ends inside a record ({reader.pending} bytes)"
            )
    position = dict.fromkeys(Direction, 0)
    out: list[DecodedRecord] = []
    progressed = True
    while progressed:
        progressed = False
        for direction in Direction:
            records, side = pending[direction], decoder._sides[direction]
            while position[direction] < len(records):
                record = records[position[direction]]
                if record.content_type == ContentType.APPLICATION_DATA and side.decryptor is None:
                    break  # waits for the other direction's ServerHello
                out.append(decoder._decode(direction, side, record))
                position[direction] += 1
                progressed = True
    for direction in Direction:
        if position[direction] < len(pending[direction]):
            raise TlsDecodeError(
                f"{direction} stream: {len(pending[direction]) - position[direction]} protected "
                "record(s) and no ServerHello to derive their keys from"
            )
    return decoder, out


def application_data(records: list[DecodedRecord], direction: Direction) -> bytes:
    """The application bytes one direction carried, in order."""
    return b"".join(r.data for r in records if r.direction is direction and r.is_application_data)


def iter_handshake_messages(records: list[Record]) -> Iterator[HandshakeMessage]:
    """Handshake messages of plaintext records (a ClientHello, a ServerHello) in order."""
    reassembler = HandshakeReassembler("records")
    for record in records:
        if record.content_type == ContentType.HANDSHAKE:
            yield from reassembler.feed(record.fragment)
