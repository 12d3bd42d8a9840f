"""Seeded protocol defects of the emulated DUT: named ways its ISO 15118-20 engine can be wrong.

Physical defects (rig.sim.defects) change the EVSE's power stage and protection; these change
its SECC through rig.v2g.quirks. Each breaks at least one named check, so that every check of the
rig can be shown to fail (DESIGN.md "Every check must be able to fail"). `rig defects` lists both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rig.v2g.quirks import NO_QUIRKS, Quirks


@dataclass(frozen=True)
class ProtocolDefect:
    name: str
    summary: str
    breaks: tuple[str, ...]
    quirks: Quirks


_ALL = (
    ProtocolDefect(
        "late_response",
        "answers every ChargeLoopReq 0.6 s late, beyond the EV's 0.5 s ChargeLoop timeout",
        ("protocol_timing",),
        Quirks(
            response_delay=0.6,
            delayed_responses=frozenset({"DC_ChargeLoopRes", "AC_ChargeLoopRes"}),
        ),
    ),
    ProtocolDefect(
        "accepts_out_of_sequence",
        "processes a request its state does not allow instead of answering FAILED_SequenceError",
        ("sequence",),
        Quirks(accept_out_of_sequence=True),
    ),
    ProtocolDefect(
        "wrong_response_code",
        "answers a new session's SessionSetupReq with OK instead of OK_NewSessionEstablished",
        ("sequence",),
        Quirks(wrong_response_codes={"SessionSetupRes": "OK"}),
    ),
    ProtocolDefect(
        "ignores_pause",
        "keeps the power on after the EV's PowerDelivery Standby or Stop",
        ("sequence",),
        Quirks(ignore_pause=True),
    ),
)

PROTOCOL_DEFECTS: Mapping[str, ProtocolDefect] = MappingProxyType({d.name: d for d in _ALL})


@dataclass(frozen=True)
class TlsDefect:
    """The emulated EVSE presents a certificate the rig's EV must refuse (the handshake fails)."""

    name: str
    summary: str
    breaks: tuple[str, ...]
    #: The rig.v2g.pki Entity (by name) whose chain the emulated SECC presents instead of its own.
    presents: str


TLS_DEFECTS: Mapping[str, TlsDefect] = MappingProxyType(
    {
        d.name: d
        for d in (
            TlsDefect(
                "tls_expired_certificate",
                "the SECC presents a leaf certificate that expired",
                ("tls_session",),
                "SECC_LEAF_EXPIRED",
            ),
            TlsDefect(
                "tls_not_yet_valid_certificate",
                "the SECC presents a leaf certificate that is not valid yet",
                ("tls_session",),
                "SECC_LEAF_NOT_YET_VALID",
            ),
            TlsDefect(
                "tls_wrong_root",
                "the SECC presents a chain under a root the EV does not trust",
                ("tls_session",),
                "SECC_LEAF_WRONG_ROOT",
            ),
            TlsDefect(
                "tls_wrong_curve",
                "the SECC presents a leaf on secp256r1 instead of -20's secp521r1",
                ("tls_session",),
                "SECC_LEAF_WRONG_CURVE",
            ),
        )
    }
)


def quirks_for(names: Iterable[str]) -> Quirks:
    """The SECC quirks of the named protocol defects (names that are not protocol defects are
    ignored here: they are physical ones)."""
    chosen = [PROTOCOL_DEFECTS[n] for n in names if n in PROTOCOL_DEFECTS]
    if not chosen:
        return NO_QUIRKS
    delay = max(d.quirks.response_delay for d in chosen)
    delayed: frozenset[str] = frozenset().union(*(d.quirks.delayed_responses for d in chosen))
    codes: dict[str, str] = {}
    for d in chosen:
        codes.update(d.quirks.wrong_response_codes)
    return Quirks(
        response_delay=delay,
        delayed_responses=delayed,
        accept_out_of_sequence=any(d.quirks.accept_out_of_sequence for d in chosen),
        wrong_response_codes=codes,
        ignore_pause=any(d.quirks.ignore_pause for d in chosen),
    )
