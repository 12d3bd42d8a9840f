"""TLS 1.3 for ISO 15118-20 as a byte-link layer: a ByteLink that wraps another ByteLink.

    context = TlsContext(TlsConfig.secc(chain, key, trust_anchors=(oem_root,)))
    link = context.wrap(lower)            # lower: memory pipe (virtual time) or TCP (real time)
    link.set_receiver(on_data, on_closed)
    link.send(b"...")                     # queued until the handshake is done, then encrypted

OpenSSL does the protocol through memory BIOs: bytes from the lower link go in, records for the
lower link come out, and nothing blocks, sleeps or starts a thread; the layer is driven entirely
by the lower link's callbacks and by send()/close() from above.

Why pyOpenSSL rather than the standard library's ssl.SSLObject: the -20 cipher suites
[V2G20-1856, V2G20-2459] must be the only ones offered and accepted, and Python's ssl cannot
restrict TLS 1.3 suites (set_ciphers() touches TLS 1.2 only; an OpenSSL configuration file would
act on every context of the process and only if loaded before ssl initialises). pyOpenSSL's
Context.set_tls13_ciphersuites (SSL_CTX_set_ciphersuites, as EVerest's libiso15118 calls it) sets
them per context, so the ClientHello carries exactly those two and a server selects nothing else;
the same library gives a key-log callback (SSL_CTX_set_keylog_callback) and a verify callback,
which the standard library lacks, so refusals are decided inside the handshake with the precise
cause. tests/v2g/tls/ pins the ClientHello's suite list and the refusals on the wire.

Policy, per ISO 15118-20 as FACTS.md "TLS" states it:
- TLS 1.3 only; TLS 1.2 and lower are refused (protocol_version).
- TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256 only.
- Mutual authentication: the SECC requires the EV's certificate and verifies its chain against
  the OEM root(s); the EVCC verifies the SECC's chain against the V2G root(s).
- Every certificate of the peer's chain must use an allowed key type (secp521r1 by default;
  `peer_key_types` widens it for -2 style benches); checked in the verify callback.
- No SNI and no host name check: an EVCC reaches its SECC at the link-local address SDP gave it,
  with no DNS name to check, and the open implementations verify the chain only (Josev sets
  check_hostname = False; EVerest's libiso15118 checks no name). A bench that knows the SECC's
  EVSEID can pin the leaf's common name with `peer_common_name`.
- No session resumption (nothing in a -20 session needs it): no session cache and no ticket
  keys (OP_NO_TICKET), and the EVCC never offers a session. OpenSSL still sends two stateful
  NewSessionTicket messages after the handshake; with no cache behind them they resume nothing.
- Bounds: record sizes are TLS's own (2^14 bytes of plaintext; OpenSSL refuses larger records
  and certificate lists over 100 KiB); plaintext queued before the handshake completes is
  capped (`max_pending_bytes`). The handshake timeout belongs to the connection layer, which
  closes the link when it expires.

A refusal ends the link with a reason that names the cause, e.g. ``tls unknown_ca: SECC
certificate chain does not lead to a trusted root (...)``, through on_closed(reason), and is kept
as `TlsLink.failure` (a TlsRefusal with a TlsFailure code) for the trace and the run's summary.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from rig.v2g.link import ByteLink, ClosedCallback, DataCallback, LinkClosed
from rig.v2g.pki import Curve, PrivateKey

#: Read size for the memory BIOs; larger than one TLS record (2^14 + 256 bytes).
_CHUNK = 1 << 17


def _bio_size_probe() -> Callable[[Any], int] | None:
    """How many bytes wait in a connection's memory BIO, or None where pyOpenSSL does not let us
    ask. Asking first spares the WantReadError that an empty read raises (about 1 us each, three
    per message over TLS: the sender's flush, the receiver's last recv and flush)."""
    lib = getattr(SSL, "_lib", None)
    ffi = getattr(SSL, "_ffi", None)
    get_mem_data = getattr(lib, "BIO_get_mem_data", None)
    if ffi is None or get_mem_data is None:
        return None
    out = ffi.new("char **")

    def size(bio: Any) -> int:
        return int(get_mem_data(bio, out))

    return size


_BIO_SIZE = _bio_size_probe()


class CipherSuite(StrEnum):
    """TLS 1.3 cipher suites by their IANA name; `.code` is the two-byte value on the wire."""

    TLS_AES_128_GCM_SHA256 = "TLS_AES_128_GCM_SHA256"
    TLS_AES_256_GCM_SHA384 = "TLS_AES_256_GCM_SHA384"
    TLS_CHACHA20_POLY1305_SHA256 = "TLS_CHACHA20_POLY1305_SHA256"
    TLS_AES_128_CCM_SHA256 = "TLS_AES_128_CCM_SHA256"
    TLS_AES_128_CCM_8_SHA256 = "TLS_AES_128_CCM_8_SHA256"

    @property
    def code(self) -> int:
        return _SUITE_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> CipherSuite | None:
        for suite, value in _SUITE_CODES.items():
            if value == code:
                return suite
        return None


_SUITE_CODES = {
    CipherSuite.TLS_AES_128_GCM_SHA256: 0x1301,
    CipherSuite.TLS_AES_256_GCM_SHA384: 0x1302,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: 0x1303,
    CipherSuite.TLS_AES_128_CCM_SHA256: 0x1304,
    CipherSuite.TLS_AES_128_CCM_8_SHA256: 0x1305,
}

#: The suites ISO 15118-20 allows, in its order of preference [V2G20-1856, V2G20-2459].
V2G20_CIPHER_SUITES = (CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_CHACHA20_POLY1305_SHA256)


class TlsRole(StrEnum):
    """EVCC is the TLS client, SECC the server."""

    EVCC = "evcc"
    SECC = "secc"


class TlsFailure(StrEnum):
    """Why a TLS link was refused or broke; the first word of the reason after "tls"."""

    UNKNOWN_CA = "unknown_ca"  # the chain does not lead to a trusted root
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    WRONG_CURVE = "wrong_curve"  # a key type outside peer_key_types
    BAD_CERTIFICATE = "bad_certificate"  # any other certificate problem (signature, usage, name)
    NO_CLIENT_CERTIFICATE = "no_client_certificate"
    PROTOCOL_VERSION = "protocol_version"  # not TLS 1.3
    CIPHER_SUITE = "cipher_suite"  # no suite of -20's list in common
    HANDSHAKE_FAILURE = "handshake_failure"  # the peer's generic refusal (alert 40)
    PEER_ALERT = "peer_alert"  # any other fatal alert from the peer
    PROTOCOL_ERROR = "protocol_error"  # not TLS, or a record or message that does not parse
    LINK_CLOSED = "link_closed"  # the link below ended before the handshake completed
    OVERFLOW = "overflow"  # more plaintext queued before the handshake than allowed


@dataclass(frozen=True, slots=True)
class TlsRefusal:
    """A failed TLS link: the cause, what was seen, and whether the peer said so (an alert)."""

    failure: TlsFailure
    detail: str
    by_peer: bool = False

    @property
    def reason(self) -> str:
        return f"tls {self.failure}: {self.detail}"


@dataclass(frozen=True, slots=True)
class TlsSessionInfo:
    """What the handshake agreed, for the trace."""

    version: str  # "TLSv1.3"
    cipher_suite: CipherSuite | str
    group: str | None  # the key exchange group, e.g. "x25519"
    peer_certificate: x509.Certificate | None

    @property
    def peer_common_name(self) -> str | None:
        if self.peer_certificate is None:
            return None
        return _common_name(self.peer_certificate)


#: Where NSS key-log lines go: a file (appended, created 0600) or a callable taking one line.
KeyLogSink = Path | Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """One endpoint's TLS policy and credentials. Use TlsConfig.evcc() / TlsConfig.secc()."""

    role: TlsRole
    certificate_chain: tuple[x509.Certificate, ...]  # leaf first, then sub-CAs; () = present none
    private_key: PrivateKey | None
    trust_anchors: tuple[x509.Certificate, ...]
    cipher_suites: tuple[CipherSuite, ...] = V2G20_CIPHER_SUITES
    peer_key_types: frozenset[Curve] = frozenset({Curve.SECP521R1})
    verify_peer: bool = True
    peer_common_name: str | None = None
    key_log: KeyLogSink | None = None
    max_pending_bytes: int = 1 << 16

    def __post_init__(self) -> None:
        outside = [s for s in self.cipher_suites if s not in V2G20_CIPHER_SUITES]
        if outside or not self.cipher_suites:
            raise ValueError(
                f"cipher_suites must be a non-empty subset of {[s.value for s in V2G20_CIPHER_SUITES]}"
                f" [V2G20-1856]; got {[s.value for s in self.cipher_suites]}"
            )
        if bool(self.certificate_chain) != (self.private_key is not None):
            raise ValueError("certificate_chain and private_key go together (both or neither)")
        if self.verify_peer and not self.trust_anchors:
            raise ValueError("verify_peer needs at least one trust anchor")
        if self.role is TlsRole.SECC and not self.certificate_chain:
            raise ValueError("a SECC (TLS server) needs a certificate chain and key")
        if self.max_pending_bytes <= 0:
            raise ValueError("max_pending_bytes must be positive")

    @classmethod
    def evcc(
        cls,
        chain: tuple[x509.Certificate, ...],
        key: PrivateKey | None,
        trust_anchors: tuple[x509.Certificate, ...],
        **options: Any,
    ) -> TlsConfig:
        """The EV's side: presents its vehicle (or OEM provisioning) chain, verifies the SECC
        against the V2G root(s)."""
        return cls(TlsRole.EVCC, tuple(chain), key, tuple(trust_anchors), **options)

    @classmethod
    def secc(
        cls,
        chain: tuple[x509.Certificate, ...],
        key: PrivateKey,
        trust_anchors: tuple[x509.Certificate, ...],
        **options: Any,
    ) -> TlsConfig:
        """The charger's side: presents the SECC chain, requires and verifies the EV's chain
        against the OEM root(s)."""
        return cls(TlsRole.SECC, tuple(chain), key, tuple(trust_anchors), **options)


class TlsContext:
    """An OpenSSL context built once from a TlsConfig; wrap() makes one TlsLink per connection."""

    def __init__(self, config: TlsConfig) -> None:
        self.config = config
        server = config.role is TlsRole.SECC
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        # [V2G20-1856, V2G20-2459]: exactly these suites in the ClientHello and in a server's choice
        ctx.set_tls13_ciphersuites(":".join(s.value for s in config.cipher_suites).encode())
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        if config.certificate_chain:
            assert config.private_key is not None  # __post_init__ pairs them
            ctx.use_certificate(config.certificate_chain[0])
            for sub_ca in config.certificate_chain[1:]:
                ctx.add_extra_chain_cert(sub_ca)
            ctx.use_privatekey(config.private_key)
            ctx.check_privatekey()
        store = ctx.get_cert_store()
        assert store is not None
        for anchor in config.trust_anchors:
            store.add_cert(crypto.X509.from_cryptography(anchor))
        if config.verify_peer:
            mode = SSL.VERIFY_PEER
            if server:
                mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT  # mutual authentication in -20
            ctx.set_verify(mode, _verify)
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        if config.key_log is not None:
            ctx.set_keylog_callback(_key_logger(config.key_log))
        self._ctx = ctx

    def wrap(
        self, lower: ByteLink, *, on_handshake: Callable[[TlsSessionInfo], None] | None = None
    ) -> TlsLink:
        """A TLS link over `lower`; an EVCC sends its ClientHello at once."""
        return TlsLink(lower, self, on_handshake=on_handshake)

    @property
    def openssl_context(self) -> SSL.Context:
        return self._ctx


def _key_logger(sink: KeyLogSink) -> Callable[[SSL.Connection, bytes], None]:
    if isinstance(sink, Path):
        path = sink

        def to_file(conn: SSL.Connection, line: bytes) -> None:
            # One open per line (five per handshake): the file stays whole if the run dies, and
            # the secrets in it are never world-readable (created 0600).
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)

        return to_file
    callback = sink

    def to_callback(conn: SSL.Connection, line: bytes) -> None:
        callback(line.decode("ascii", "replace"))

    return to_callback


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


# X.509 verification errors (OpenSSL's X509_V_ERR_* numbers) and what they mean for -20.
_X509_UNKNOWN_CA = {2, 18, 19, 20, 21}  # issuer not found / self-signed / unable to verify leaf
_X509_EXPIRED = 10
_X509_NOT_YET_VALID = 9


def _verify(conn: SSL.Connection, cert: crypto.X509, errnum: int, depth: int, ok: int) -> bool:
    """OpenSSL's verify callback: called per certificate of the peer's chain, root first.
    Notes the first refusal on the link so that the reason names it precisely."""
    link = conn.get_app_data()
    if not isinstance(link, TlsLink):
        return bool(ok)
    certificate = cert.to_cryptography()
    peer = "SECC" if link.role is TlsRole.EVCC else "EV"
    where = f"depth {depth}, {_describe(certificate)}"
    if not ok:
        if errnum in _X509_UNKNOWN_CA:
            failure = TlsFailure.UNKNOWN_CA
            text = f"{peer} certificate chain does not lead to a trusted root"
        elif errnum == _X509_EXPIRED:
            failure = TlsFailure.CERTIFICATE_EXPIRED
            text = (
                f"{peer} certificate expired {certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
            )
        elif errnum == _X509_NOT_YET_VALID:
            failure = TlsFailure.CERTIFICATE_NOT_YET_VALID
            text = (
                f"{peer} certificate not valid before "
                f"{certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
            )
        else:
            failure = TlsFailure.BAD_CERTIFICATE
            text = f"{peer} certificate refused"
        link._note_refusal(
            TlsRefusal(failure, f"{text} ({where}: X509 error {errnum} {_x509_error(errnum)})")
        )
        return False
    curve = Curve.of_key(certificate.public_key())
    if curve not in link.config.peer_key_types:
        allowed = ", ".join(sorted(c.value for c in link.config.peer_key_types))
        have = curve.value if curve is not None else type(certificate.public_key()).__name__
        link._note_refusal(
            TlsRefusal(
                TlsFailure.WRONG_CURVE,
                f"{peer} certificate key is {have}, ISO 15118-20 needs {allowed} ({where})",
            )
        )
        return False
    expected = link.config.peer_common_name
    if depth == 0 and expected is not None and _common_name(certificate) != expected:
        link._note_refusal(
            TlsRefusal(
                TlsFailure.BAD_CERTIFICATE,
                f"{peer} leaf CN is {_common_name(certificate)!r}, expected {expected!r}",
            )
        )
        return False
    return True


def _x509_error(errnum: int) -> str:
    names = {
        2: "unable to get issuer certificate",
        9: "certificate is not yet valid",
        10: "certificate has expired",
        18: "self-signed certificate",
        19: "self-signed certificate in chain",
        20: "unable to get local issuer certificate",
        21: "unable to verify the first certificate",
        7: "certificate signature failure",
        24: "invalid CA certificate",
        25: "path length constraint exceeded",
        26: "unsupported certificate purpose",
    }
    return names.get(errnum, "verification failed")


# OpenSSL error reasons (the third field of SSL.Error's entries) -> failure, and whether the
# peer told us (an alert) or OpenSSL found it locally.
_ALERTS: tuple[tuple[str, TlsFailure, str], ...] = (
    ("alert unknown ca", TlsFailure.UNKNOWN_CA, "the peer does not trust our certificate chain"),
    (
        "alert certificate expired",
        TlsFailure.CERTIFICATE_EXPIRED,
        "the peer says our certificate expired",
    ),
    (
        "alert certificate required",
        TlsFailure.NO_CLIENT_CERTIFICATE,
        "the peer requires a client certificate",
    ),
    (
        "alert protocol version",
        TlsFailure.PROTOCOL_VERSION,
        "the peer refuses the TLS version (we speak TLS 1.3 only)",
    ),
    ("alert bad certificate", TlsFailure.BAD_CERTIFICATE, "the peer refused our certificate"),
    (
        "alert unsupported certificate",
        TlsFailure.BAD_CERTIFICATE,
        "the peer refused our certificate type",
    ),
    (
        "alert handshake failure",
        TlsFailure.HANDSHAKE_FAILURE,
        "the peer refused the handshake (no suite, group or signature algorithm in common, or a certificate it rejects)",
    ),
    # OpenSSL sends internal_error when its application's verify callback refuses a certificate
    # that OpenSSL itself found valid (our key-type check does that, so may another -20 peer).
    (
        "alert internal error",
        TlsFailure.PEER_ALERT,
        "the peer aborted with internal_error (an OpenSSL peer does so when its application refuses our certificate, e.g. its key type)",
    ),
    (
        "alert insufficient security",
        TlsFailure.CIPHER_SUITE,
        "the peer finds our cipher suites insufficient",
    ),
)
_LOCAL: tuple[tuple[str, TlsFailure, str], ...] = (
    (
        "unsupported protocol",
        TlsFailure.PROTOCOL_VERSION,
        "the peer offered no TLS 1.3 (TLS 1.2 and lower are refused)",
    ),
    ("wrong version number", TlsFailure.PROTOCOL_VERSION, "the peer's records are not TLS 1.3"),
    (
        "no shared cipher",
        TlsFailure.CIPHER_SUITE,
        "the peer offered none of TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "wrong cipher returned",
        TlsFailure.CIPHER_SUITE,
        "the peer chose a cipher suite we did not offer",
    ),
    (
        "peer did not return a certificate",
        TlsFailure.NO_CLIENT_CERTIFICATE,
        "the EV presented no certificate (mutual authentication is mandatory in -20)",
    ),
)


def _classify(error: SSL.Error, pending: TlsRefusal | None) -> TlsRefusal:
    """The refusal an OpenSSL error stands for; `pending` is what our verify callback noted."""
    reasons = _error_reasons(error)
    text = "; ".join(reasons) or type(error).__name__
    lowered = text.lower()
    if pending is not None:
        return pending
    for needle, failure, meaning in _ALERTS:
        if needle in lowered:
            return TlsRefusal(failure, f"{meaning} ({text})", by_peer=True)
    for needle, failure, meaning in _LOCAL:
        if needle in lowered and meaning:
            return TlsRefusal(failure, f"{meaning} ({text})")
    if "alert" in lowered:
        return TlsRefusal(TlsFailure.PEER_ALERT, f"fatal alert from the peer ({text})", True)
    return TlsRefusal(TlsFailure.PROTOCOL_ERROR, f"malformed or unexpected TLS ({text})")


def _error_reasons(error: SSL.Error) -> list[str]:
    out: list[str] = []
    for arg in error.args:
        if isinstance(arg, list):
            for entry in arg:
                if isinstance(entry, tuple) and entry:
                    out.append(str(entry[-1]))
                else:
                    out.append(str(entry))
        elif isinstance(arg, tuple):
            out.append(" ".join(str(a) for a in arg))
        else:
            out.append(str(arg))
    return out


class TlsLink:
    """One TLS 1.3 connection over a lower ByteLink; itself a ByteLink.

    Before the handshake completes, send() queues plaintext (at most max_pending_bytes) and
    delivers it once the session is up; close() before then drops it. on_closed(reason) comes once, after the lower link has
    ended: with our own reason (close() or a refusal), or the lower link's."""

    def __init__(
        self,
        lower: ByteLink,
        context: TlsContext,
        *,
        on_handshake: Callable[[TlsSessionInfo], None] | None = None,
    ) -> None:
        self.config = context.config
        self.role = context.config.role
        self._lower = lower
        self._on_handshake = on_handshake
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._held: list[bytes | str] = []  # for the layer above, before set_receiver()
        self._held_bytes = 0
        self._pending = bytearray()  # plaintext sent before the handshake completed
        self._established = False
        self._closed = False  # no more sends; the lower link is ending or has ended
        self._reason: str | None = None  # our own reason for ending, when we end it
        self._reported = False
        self._verify_refusal: TlsRefusal | None = None
        self.failure: TlsRefusal | None = None
        self.session: TlsSessionInfo | None = None
        self.peer_sent_close_notify = False
        conn = SSL.Connection(context.openssl_context, None)
        conn.set_app_data(self)
        if self.role is TlsRole.EVCC:
            conn.set_connect_state()
        else:
            conn.set_accept_state()
        self._conn = conn
        lower.set_receiver(self._lower_data, self._lower_closed)
        if self.role is TlsRole.EVCC:
            self._handshake()

    # --- ByteLink ---

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data = on_data
        self._on_closed = on_closed
        held, self._held = self._held, []
        self._held_bytes = 0
        for item in held:
            if isinstance(item, bytes):
                on_data(item)
            else:
                self._report(item)

    def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed(f"{self.peer_name}: send after the TLS link ended")
        if not data:
            return
        if not self._established:
            if len(self._pending) + len(data) > self.config.max_pending_bytes:
                refusal = TlsRefusal(
                    TlsFailure.OVERFLOW,
                    f"more than {self.config.max_pending_bytes} bytes queued before the "
                    "TLS handshake completed",
                )
                self._fail(refusal)
                raise LinkClosed(refusal.reason)
            self._pending += data
            return
        self._conn.sendall(data)
        self._flush()

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        self._reason = reason
        if self._established:
            with contextlib.suppress(SSL.Error):
                self._conn.shutdown()  # close_notify
            self._flush()
        self._lower.close(reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        return f"tls:{self._lower.peer_name}"

    @property
    def established(self) -> bool:
        """True once the handshake has completed (for an EVCC: its own side of it; a SECC that
        refuses the EV's certificate says so afterwards, with an alert)."""
        return self._established

    # --- driven by the lower link ---

    def _lower_data(self, data: bytes) -> None:
        if self._closed:
            return
        self._conn.bio_write(data)
        if not self._established:
            self._handshake()
            if not self._established or self._closed:
                return
        self._read_records()

    def _lower_closed(self, reason: str) -> None:
        if self._reason is not None:
            self._report(self._reason)
            return
        self._closed = True
        if not self._established:
            self.failure = TlsRefusal(
                TlsFailure.LINK_CLOSED, f"the link ended during the TLS handshake ({reason})"
            )
            self._report(self.failure.reason)
        elif self.peer_sent_close_notify:
            self._report(reason)
        else:
            self._report(f"{reason} (without TLS close_notify)")

    # --- TLS ---

    def _handshake(self) -> None:
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            self._fail(_classify(exc, self._verify_refusal))
            return
        self._flush()
        self._established = True
        self.session = self._session_info()
        if self._on_handshake is not None:
            self._on_handshake(self.session)
        if self._pending and not self._closed:
            pending, self._pending = bytes(self._pending), bytearray()
            self.send(pending)

    def _session_info(self) -> TlsSessionInfo:
        conn = self._conn
        name = conn.get_cipher_name() or ""
        try:
            suite: CipherSuite | str = CipherSuite(name)
        except ValueError:
            suite = name
        return TlsSessionInfo(
            version=conn.get_protocol_version_name(),
            cipher_suite=suite,
            # Connection.get_group_name exists from pyOpenSSL 26.0 on; older ones report None
            group=group() if (group := getattr(conn, "get_group_name", None)) else None,
            peer_certificate=conn.get_peer_certificate(as_cryptography=True),
        )

    def _read_records(self) -> None:
        conn = self._conn
        chunks: list[bytes] = []
        end: TlsRefusal | None = None
        peer_closed = False
        size = _BIO_SIZE
        incoming = getattr(conn, "_into_ssl", None)
        while True:
            try:
                chunks.append(conn.recv(_CHUNK))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                peer_closed = True
                break
            except SSL.Error as exc:
                end = _classify(exc, self._verify_refusal)
                break
            if (
                size is not None
                and incoming is not None
                and not conn.pending()
                and not size(incoming)
            ):
                break  # every record read and no plaintext left: the next recv would only raise
        self._flush()
        if chunks:
            self._deliver(b"".join(chunks))
        if self._closed:
            return
        if end is not None:
            self._fail(end)
        elif peer_closed:
            self.peer_sent_close_notify = True
            self.close("peer closed the TLS session (close_notify)")

    def _flush(self) -> None:
        """Hand every record OpenSSL has written to the lower link."""
        conn = self._conn
        size = _BIO_SIZE
        outgoing = getattr(conn, "_from_ssl", None)
        while True:
            if size is not None and outgoing is not None and not size(outgoing):
                return
            try:
                out = conn.bio_read(_CHUNK)
            except SSL.WantReadError:
                return
            if self._lower.closed:
                return
            self._lower.send(out)

    def _note_refusal(self, refusal: TlsRefusal) -> None:
        if self._verify_refusal is None:
            self._verify_refusal = refusal

    def _fail(self, refusal: TlsRefusal) -> None:
        if self._closed:
            return
        self.failure = refusal
        self._closed = True
        self._reason = refusal.reason
        self._flush()  # the alert OpenSSL queued for the peer
        self._lower.close(refusal.reason)

    # --- to the layer above ---

    def _deliver(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        self._held_bytes += len(data)
        if self._held_bytes > self.config.max_pending_bytes:
            self._fail(
                TlsRefusal(
                    TlsFailure.OVERFLOW,
                    f"more than {self.config.max_pending_bytes} bytes received before the "
                    "layer above set its receiver",
                )
            )
            return
        self._held.append(data)

    def _report(self, reason: str) -> None:
        if self._reported:
            return
        if self._on_closed is None:
            if not any(isinstance(item, str) for item in self._held):
                self._held.append(reason)
            return
        self._reported = True
        self._on_closed(reason)
