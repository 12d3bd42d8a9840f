"""SLAC timers and counters (ISO 15118-3 Annex A, Table A.1 as open implementations give them).

No value here is confirmed against the text of ISO 15118-3 itself: each is the value pyslac
(slac/enums.py) and EVerest's libslac (slac/iso15118_consts.hpp) agree on, with the requirement
IDs they quote, hence the (?) on every one. All are configurable (`overridden`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class SlacTiming:
    """Seconds and counts; the names are -3's without their prefixes."""

    #: TT_match_response: the wait for a response to a request (PARM.CNF, MATCH.CNF, ATTEN_CHAR.RSP)
    match_response: float = 0.2  # (?) pyslac, libslac
    #: TT_match_sequence: the EVSE's wait for the next message of the sequence (START_ATTEN_CHAR)
    match_sequence: float = 0.4  # (?) pyslac, libslac
    #: TT_EV_atten_results: from the EV's first CM_START_ATTEN_CHAR.IND to CM_ATTEN_CHAR.IND
    #: [V2G3-A09-30] (?)
    ev_atten_results: float = 1.2  # (?) max 1200 ms; pyslac, libslac
    #: TT_EVSE_match_MNBC: how long the EVSE collects sounds (sent as Time_Out in 100 ms units)
    evse_match_mnbc: float = 0.6  # (?) pyslac, libslac
    #: TT_EVSE_match_session: the EVSE's wait for CM_SLAC_MATCH.REQ after CM_ATTEN_CHAR.RSP
    evse_match_session: float = 10.0  # (?) pyslac, libslac
    #: TT_EVSE_SLAC_init: from state B (with 5 % PWM) to the first CM_SLAC_PARM.REQ (20 s - 50 s)
    #: [V2G3-M06-07] (?)
    evse_slac_init: float = 40.0  # (?) libslac 40 s, pyslac 50 s
    #: TT_match_join: from CM_SLAC_MATCH.CNF until the EV's modem has joined (max 12 s)
    match_join: float = 12.0  # (?) libslac
    #: TP_EV_batch_msg_interval: the EV's pause between START_ATTEN_CHAR and MNBC_SOUND messages
    batch_msg_interval: float = 0.02  # (?) 20 ms - 50 ms; pyslac 20 ms, libslac 40 ms
    #: TT_matching_rate: the pause before a failed matching process starts again [V2G3-A09-124]
    matching_rate: float = 0.4  # (?) pyslac
    #: TT_matching_repetition: retries of the matching process only within this [V2G3-A09-125]
    matching_repetition: float = 10.0  # (?) pyslac
    #: T_step_EF: the shortest state E/F the EVSE signals to restart the EV [V2G3-M06-09]
    step_ef: float = 4.0  # (?) min 4 s; pyslac, libslac
    #: The wait for the local modem's CM_SET_KEY.CNF (rig's own choice: a local exchange)
    set_key: float = 1.0
    #: C_EV_match_retry: retries of CM_SLAC_PARM.REQ and CM_SLAC_MATCH.REQ (libslac retries a
    #: PARM.REQ up to 100 times in the field; keep the norm's 2 unless a DUT needs more)
    ev_match_retry: int = 2  # (?)
    #: C_EV_match_MNBC: the EV's number of sounds
    ev_match_mnbc: int = 10  # (?)
    #: C_EV_start_atten_char_inds: how often the EV sends CM_START_ATTEN_CHAR.IND
    ev_start_atten_char_inds: int = 3  # (?)
    #: C_conn_max_match: matching processes the EV starts before it stays unmatched
    conn_max_match: int = 3  # (?) "min 3" (pyslac)
    #: The EVSE's CM_ATTEN_CHAR.IND sends while no RSP comes (rig's own: as the EV's retries)
    evse_atten_char_retry: int = 2

    def overridden(self, overrides: Mapping[str, float]) -> Self:
        """A copy with some values replaced; ValueError names an unknown or negative one."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"SlacTiming: unknown timing(s) {unknown}")
        for name, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"SlacTiming.{name} must be a number >= 0")
        return dataclasses.replace(self, **overrides)  # type: ignore[arg-type]

    @property
    def time_out_units(self) -> int:
        """TT_EVSE_match_MNBC as the Time_Out field sends it: multiples of 100 ms, rounded up."""
        return max(1, min(255, -(-round(self.evse_match_mnbc * 1000) // 100)))


DEFAULT_TIMING = SlacTiming()
