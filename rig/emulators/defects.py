"""Seeded protocol defects of the emulated DUT: named ways its ISO 15118-20 engine can be wrong.

Physical defects (rig.sim.defects) change the EVSE's power stage and protection; these change
its SECC through rig.v2g.quirks. Each breaks at least one named check, so that every check of the
rig can be shown to fail (DESIGN.md "Every check must be able to fail"). `rig defects` lists both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rig.v2g.engine import Close, Engine, Event, Output
from rig.v2g.quirks import NO_QUIRKS, Quirks


@dataclass(frozen=True)
class ProtocolDefect:
    name: str
    summary: str
    breaks: tuple[str, ...]
    quirks: Quirks = NO_QUIRKS
    #: SECC timing overrides (rig.v2g.timing.SeccTiming field -> seconds).
    secc_timing: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: The emulated EVSE keeps its power on when its session is lost (no safe state).
    keeps_power_after_loss: bool = False
    #: The emulated SECC closes the session when a request arrives twice in a row.
    aborts_on_repeat: bool = False


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
        "keeps_power_after_session_loss",
        "keeps its power stage running when its -20 session is lost (a dropped, corrupted or "
        "closed connection, a timeout): no safe state",
        ("fault_reaction",),
        keeps_power_after_loss=True,
    ),
    ProtocolDefect(
        "no_sequence_timeout",
        "never times out waiting for the EV's next request (SECC sequence timeout off), so a "
        "silent EV keeps the session and the power",
        ("fault_reaction",),
        secc_timing=MappingProxyType({"sequence": 1e9}),
        keeps_power_after_loss=True,
    ),
    ProtocolDefect(
        "aborts_on_repeated_request",
        "closes the session when a request arrives twice in a row (a repeat is allowed)",
        ("fault_reaction",),
        aborts_on_repeat=True,
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


def secc_behaviour(names: Iterable[str]) -> tuple[dict[str, float], bool, bool]:
    """(SECC timing overrides, keeps power after a lost session, aborts on a repeat) of the
    named protocol defects."""
    timing: dict[str, float] = {}
    keeps = aborts = False
    for name in names:
        d = PROTOCOL_DEFECTS.get(name)
        if d is None:
            continue
        timing.update(d.secc_timing)
        keeps = keeps or d.keeps_power_after_loss
        aborts = aborts or d.aborts_on_repeat
    return timing, keeps, aborts


class AbortOnRepeat:
    """A defective SECC: wraps the emulated EVSE's engine and closes the session when the same
    request arrives twice at once in the charge loop (the in-memory link delivers each send
    whole)."""

    #: Two identical frames this close are one request sent twice (the charge loop paces its
    #: requests 250 ms apart; a steady loop may repeat a frame byte for byte at that pace).
    REPEAT_WITHIN_S = 0.01

    def __init__(self, engine: Engine) -> None:
        self.inner = engine
        self._last: bytes | None = None
        self._last_t = float("-inf")

    @property
    def finished(self) -> bool:
        return bool(self.inner.finished)

    @property
    def phase(self) -> object:
        return getattr(self.inner, "phase", None)

    def start(self, now: float) -> Sequence[Output]:
        return self.inner.start(now)

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        # Only in the charge loop: Ongoing loops repeat a request by design.
        in_loop = str(getattr(self.inner, "phase", "")) == "charge_loop"
        if in_loop and data == self._last and now - self._last_t < self.REPEAT_WITHIN_S:
            return [
                Event("quirk", {"defect": "aborts_on_repeated_request"}),
                Close("a repeated request (defect aborts_on_repeated_request)"),
            ]
        self._last, self._last_t = data, now
        return self.inner.receive_data(data, now)

    def timer_expired(self, name: str, now: float) -> Sequence[Output]:
        return self.inner.timer_expired(name, now)

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]:
        return self.inner.connection_lost(reason, now)
