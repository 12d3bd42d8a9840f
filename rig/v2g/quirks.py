"""Seeded protocol defects of an emulated device under test, as knobs the engines take.

Off by default. Each knob makes an engine misbehave in one named way so that a check of the rig
can be shown to fail against it (DESIGN.md "Every check must be able to fail"). Physical defects
(exceeding the discharge limit, slow ramps) live in the emulator's physics, not here.

SECC knobs: `response_delay` (answer late: a StartTimer, then the Send), `accept_out_of_sequence`
(handle a request its state does not allow instead of FAILED_SequenceError), `wrong_response_codes`
(send a named response with another code, otherwise acting as if it were OK), `ignore_pause`
(keep the power on after the EV's PowerDelivery Stop or Standby: the controller is not asked to
stop, and an Event says so).
EVCC knob: `ignore_pause` (keep charging after the EVSE's Pause notification).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rig.v2g.messages import Request, response_code_of

# -20 responses only: the handshake's response codes are another enumeration
_RESPONSE_NAMES = frozenset(r.response for r in Request if r is not Request.SUPPORTED_APP_PROTOCOL)


@dataclass(frozen=True, slots=True)
class Quirks:
    """Protocol defects to seed into an engine (all off by default)."""

    #: Seconds the SECC waits before sending a response (0: answer at once).
    response_delay: float = 0.0
    #: Responses delayed by `response_delay`, by element name; empty means every response.
    delayed_responses: frozenset[str] = frozenset()
    #: SECC: process a request its state does not allow, instead of FAILED_SequenceError.
    accept_out_of_sequence: bool = False
    #: SECC: response element name -> response code name to send instead of the real one.
    wrong_response_codes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: SECC: keep the power on after PowerDelivery Stop/Standby; EVCC: ignore a Pause notice.
    ignore_pause: bool = False

    def __post_init__(self) -> None:
        if self.response_delay < 0:
            raise ValueError("Quirks.response_delay must be >= 0")
        for name in set(self.delayed_responses) | set(self.wrong_response_codes):
            if name not in _RESPONSE_NAMES:
                raise ValueError(f"Quirks: {name!r} is not a -20 response the rig sends")
        for code in self.wrong_response_codes.values():
            response_code_of(code)  # ValueError for a name that is not a response code
        # a frozen value should not share a mutable mapping with its caller
        object.__setattr__(
            self, "wrong_response_codes", MappingProxyType(dict(self.wrong_response_codes))
        )

    @property
    def any(self) -> bool:
        """Whether any knob is on (the engines skip the quirk checks when none is)."""
        return bool(
            self.response_delay
            or self.accept_out_of_sequence
            or self.wrong_response_codes
            or self.ignore_pause
        )

    def delays(self, response_name: str) -> float:
        """The delay before sending `response_name` (0 when not delayed)."""
        if self.response_delay and (
            not self.delayed_responses or response_name in self.delayed_responses
        ):
            return self.response_delay
        return 0.0


NO_QUIRKS = Quirks()
