"""The EVSE side of SLAC (ISO 15118-3 9.3-9.5), sans-IO: frames in, frames out, one deadline.

    evse = EvseSlac(host_mac, SlacTiming(), rng=random.Random(2))
    out = evse.start(now)             # CM_SET_KEY.REQ with a fresh NMK to the local modem
    out = evse.receive(frame, now)
    out = evse.timeout(now)           # when now >= evse.deadline

The sequence: the local modem gets the network's NMK and NID (CM_SET_KEY) -> wait for
CM_SLAC_PARM.REQ (TT_EVSE_SLAC_init) -> CM_SLAC_PARM.CNF -> CM_START_ATTEN_CHAR.IND within
TT_match_sequence -> collect CM_ATTEN_PROFILE.IND (the modem's report of each sound) for the
Time_Out the EV asked (at most TT_EVSE_match_MNBC), ending early once every sound is in ->
CM_ATTEN_CHAR.IND with the profile averaged over the sounds received -> CM_ATTEN_CHAR.RSP ->
CM_SLAC_MATCH.REQ within TT_EVSE_match_session -> CM_SLAC_MATCH.CNF with NID and NMK: matched.
A matching process that fails leaves the EVSE waiting for a new CM_SLAC_PARM.REQ; when
TT_EVSE_SLAC_init passes without one the side says so (`slac_init_expired`): the pilot's owner
then signals E/F for T_step_EF ([V2G3-M06-07] (?)).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from rig.v2g.slac import messages as m
from rig.v2g.slac.records import Recorder, RecordKind, SlacMatch, SlacRecord, discard
from rig.v2g.slac.timing import DEFAULT_TIMING, SlacTiming


class EvseState(StrEnum):
    IDLE = "idle"
    SET_KEY = "set_key"  # the network key goes to the local modem
    WAIT_PARM = "wait_parm"
    WAIT_START = "wait_start"  # CM_SLAC_PARM.CNF sent
    SOUNDING = "sounding"
    WAIT_RSP = "wait_rsp"  # CM_ATTEN_CHAR.IND sent
    WAIT_MATCH = "wait_match"
    MATCHED = "matched"


@dataclass(frozen=True, slots=True)
class EvseConfig:
    modem_mac: bytes = m.QCA_LOCAL_MAC
    evse_id: bytes = bytes(m.ID_LENGTH)
    #: The network key; None: a fresh random one per EvseSlac (pyslac makes one per session).
    nmk: bytes | None = None
    #: Skip CM_SET_KEY at start (a modem already holding the key).
    set_key_on_start: bool = True


def average_profile(sums: list[int], count: int) -> tuple[int, ...]:
    """The attenuation profile averaged over `count` sounds, rounded half up (pyslac rounds so;
    [V2G3-A09-19] (?) asks for the average)."""
    return tuple(min(255, (2 * s + count) // (2 * count)) for s in sums)


class EvseSlac:
    """The EVSE's side of matching for one charge point; see the module docstring."""

    side = "evse"

    def __init__(
        self,
        host_mac: bytes,
        timing: SlacTiming = DEFAULT_TIMING,
        config: EvseConfig = EvseConfig(),
        *,
        rng: random.Random | None = None,
        recorder: Recorder = discard,
    ) -> None:
        self.host_mac = m.parse_mac(host_mac)
        self.timing = timing
        self.config = config
        self.rng = rng or random.Random()
        self.recorder = recorder
        self.nmk = config.nmk if config.nmk is not None else self.rng.randbytes(m.NMK_LENGTH)
        self.nid = m.nid_from_nmk(self.nmk)
        self.state = EvseState.IDLE
        self.deadline: float | None = None
        self.match: SlacMatch | None = None
        self.slac_init_expired = False
        self.failures: list[str] = []
        self._init_deadline = 0.0
        self._started = 0.0
        self._ev_mac = bytes(6)
        self._run_id = bytes(m.RUN_ID_LENGTH)
        self._expected = 0
        self._sums = [0] * m.AAG_GROUPS
        self._groups = 0
        self._profiles = 0
        self._sounds = 0
        self._tries = 0
        self._char: m.AttenCharInd | None = None
        self._cnf: m.SlacMatchCnf | None = None

    # -- inputs --------------------------------------------------------------------------------
    def start(self, now: float) -> list[bytes]:
        """The EV is in state B and the EVSE applies 5 % PWM: be ready for its SLAC."""
        self._started = now
        self.slac_init_expired = False
        if self.config.set_key_on_start and self.state is EvseState.IDLE:
            self._set_state(now, EvseState.SET_KEY, {"nid": self.nid.hex()})
            self.deadline = now + self.timing.set_key
            return [
                self._send(now, self.config.modem_mac, m.SetKeyReq(nid=self.nid, new_key=self.nmk))
            ]
        self._wait_parm(now)
        return []

    def receive(self, frame: bytes, now: float) -> list[bytes]:
        if len(frame) < 14 or (frame[0:6] != self.host_mac and frame[0:6] != m.BROADCAST):
            return []
        try:
            mme = m.decode(frame)
        except m.SlacDecodeError as exc:
            self._record(now, RecordKind.UNDECODABLE, exc.fault.name, {"detail": exc.detail})
            return []
        if mme.src == self.host_mac:
            return []
        msg = mme.message
        out: list[bytes] | None = None
        match self.state, msg:
            case EvseState.SET_KEY, m.SetKeyCnf():
                self._record_rx(now, mme)
                self._wait_parm(now)
                out = []
            case EvseState.WAIT_PARM, m.SlacParmReq():
                out = self._on_parm_req(mme, msg, now)
            case EvseState.WAIT_START, m.SlacParmReq() if msg.run_id == self._run_id:
                out = [self._send_parm_cnf(now)]  # the CNF was lost: again
            case EvseState.WAIT_START, m.StartAttenCharInd() if self._ours(mme, msg.run_id):
                out = self._on_start_atten(mme, msg, now)
            case EvseState.SOUNDING, m.StartAttenCharInd() if self._ours(mme, msg.run_id):
                out = []  # the second and third of the three
            case EvseState.SOUNDING, m.MnbcSoundInd() if self._ours(mme, msg.run_id):
                self._sounds += 1
                out = []
            case EvseState.SOUNDING, m.AttenProfileInd() if msg.pev_mac == self._ev_mac:
                out = self._on_profile(mme, msg, now)
            case EvseState.WAIT_RSP, m.AttenCharRsp() if self._ours(mme, msg.run_id):
                self._record_rx(now, mme)
                self._set_state(now, EvseState.WAIT_MATCH)
                self.deadline = now + self.timing.evse_match_session
                out = []
            case EvseState.WAIT_MATCH, m.SlacMatchReq() if self._ours(mme, msg.run_id):
                out = self._on_match_req(mme, msg, now)
            case EvseState.MATCHED, m.SlacMatchReq() if self._cnf is not None and self._ours(
                mme, msg.run_id
            ):
                out = [self._send(now, self._ev_mac, self._cnf)]  # the EV missed the CNF
        if out is None:
            self._record(now, RecordKind.IGNORED, mme.name, {"src": m.mac_text(mme.src)})
            return []
        return out

    def timeout(self, now: float) -> list[bytes]:
        if self.deadline is None or now < self.deadline:
            return []
        match self.state:
            case EvseState.SET_KEY:
                # The modem did not confirm; go on with the key as sent (pyslac keeps the old
                # one, a stand-in modem may not answer at all): recorded, not fatal.
                self._record(now, RecordKind.TIMEOUT, "no CM_SET_KEY.CNF from the local modem", {})
                self._wait_parm(now)
            case EvseState.WAIT_PARM:
                self.slac_init_expired = True
                self.deadline = None
                self._record(
                    now, RecordKind.TIMEOUT, "no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init", {}
                )
            case EvseState.WAIT_START:
                self._process_failed(now, "no CM_START_ATTEN_CHAR.IND within TT_match_sequence")
            case EvseState.SOUNDING:
                return self._finish_sounding(now)
            case EvseState.WAIT_RSP:
                if self._tries <= self.timing.evse_atten_char_retry and self._char is not None:
                    self._tries += 1
                    self.deadline = now + self.timing.match_response
                    return [self._send(now, self._ev_mac, self._char)]
                self._process_failed(now, "no CM_ATTEN_CHAR.RSP")
            case EvseState.WAIT_MATCH:
                self._process_failed(now, "no CM_SLAC_MATCH.REQ within TT_EVSE_match_session")
        return []

    def reset(self, now: float) -> None:
        """The EV left (state A): forget the run; a new plug-in starts again with start()."""
        self.deadline = None
        self.match = None
        self._cnf = None
        self._set_state(now, EvseState.IDLE)

    # -- steps ---------------------------------------------------------------------------------
    def _ours(self, mme: m.Mme, run_id: bytes) -> bool:
        return mme.src == self._ev_mac and run_id == self._run_id

    def _wait_parm(self, now: float) -> None:
        self._init_deadline = now + self.timing.evse_slac_init
        self.deadline = self._init_deadline
        self._set_state(now, EvseState.WAIT_PARM)

    def _on_parm_req(self, mme: m.Mme, msg: m.SlacParmReq, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._ev_mac = mme.src
        self._run_id = msg.run_id
        self._set_state(
            now, EvseState.WAIT_START, {"ev_mac": m.mac_text(mme.src), "run_id": msg.run_id.hex()}
        )
        self.deadline = now + self.timing.match_sequence
        return [self._send_parm_cnf(now)]

    def _send_parm_cnf(self, now: float) -> bytes:
        t = self.timing
        return self._send(
            now,
            self._ev_mac,
            m.SlacParmCnf(
                msound_target=m.BROADCAST,
                num_sounds=t.ev_match_mnbc,
                time_out=t.time_out_units,
                resp_type=1,
                forwarding_sta=self._ev_mac,
                run_id=self._run_id,
            ),
        )

    def _on_start_atten(self, mme: m.Mme, msg: m.StartAttenCharInd, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._expected = msg.num_sounds
        self._sums = [0] * m.AAG_GROUPS
        self._groups = 0
        self._profiles = 0
        self._sounds = 0
        # The EV's Time_Out, never longer than TT_EVSE_match_MNBC.
        window = min(msg.time_out * 0.1 if msg.time_out else 1e9, self.timing.evse_match_mnbc)
        self.deadline = now + window
        self._set_state(
            now, EvseState.SOUNDING, {"expected_sounds": msg.num_sounds, "window_s": window}
        )
        return []

    def _on_profile(self, mme: m.Mme, msg: m.AttenProfileInd, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        groups = min(len(msg.aag), m.AAG_GROUPS)
        for i in range(groups):
            self._sums[i] += msg.aag[i]
        self._groups = max(self._groups, groups)
        self._profiles += 1
        if self._expected and self._profiles >= self._expected:
            return self._finish_sounding(now)  # every sound is in: no need to wait out the window
        return []

    def _finish_sounding(self, now: float) -> list[bytes]:
        if self._profiles == 0:
            self._process_failed(now, "no CM_ATTEN_PROFILE.IND during the sounding window")
            return []
        aag = average_profile(self._sums[: self._groups], self._profiles)
        self._char = m.AttenCharInd(
            source_address=self._ev_mac,
            run_id=self._run_id,
            num_sounds=self._profiles,
            aag=aag,
        )
        self._tries = 1
        self._set_state(
            now,
            EvseState.WAIT_RSP,
            {
                "profiles": self._profiles,
                "sounds_heard": self._sounds,
                "attenuation_db": self._char.mean_attenuation,
            },
        )
        self.deadline = now + self.timing.match_response
        return [self._send(now, self._ev_mac, self._char)]

    def _on_match_req(self, mme: m.Mme, msg: m.SlacMatchReq, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._cnf = m.SlacMatchCnf(
            pev_id=msg.pev_id,
            pev_mac=msg.pev_mac,
            evse_id=self.config.evse_id,
            evse_mac=self.host_mac,
            run_id=self._run_id,
            nid=self.nid,
            nmk=self.nmk,
        )
        frame = self._send(now, self._ev_mac, self._cnf)
        char = self._char
        self.match = SlacMatch(
            run_id=self._run_id,
            ev_mac=self._ev_mac,
            evse_mac=self.host_mac,
            nid=self.nid,
            nmk=self.nmk,
            attenuation_db=None if char is None else char.mean_attenuation,
            started_at=self._started,
            matched_at=now,
        )
        self.deadline = None
        self._set_state(now, EvseState.MATCHED)
        self._record(
            now,
            RecordKind.MATCHED,
            "matched",
            {"nmk": self.nmk.hex(), "nid": self.nid.hex(), "ev_mac": m.mac_text(self._ev_mac)},
        )
        return [frame]

    def _process_failed(self, now: float, why: str) -> None:
        self.failures.append(why)
        self._record(now, RecordKind.TIMEOUT, why, {"state": str(self.state)})
        # Unmatched again: ready for the EV's next CM_SLAC_PARM.REQ, within what is left of
        # TT_EVSE_SLAC_init counted from the last start (a retrying EV comes back at once).
        self._set_state(now, EvseState.WAIT_PARM)
        self.deadline = max(self._init_deadline, now + self.timing.match_sequence)

    # -- recording -----------------------------------------------------------------------------
    def _send(self, now: float, dst: bytes, msg: m.Message) -> bytes:
        frame = m.encode(dst, self.host_mac, msg)
        self._record(
            now,
            RecordKind.SENT,
            m.message_name(msg.MMTYPE),
            {"dst": m.mac_text(dst), "fields": m.fields_json(msg)},
        )
        return frame

    def _record_rx(self, now: float, mme: m.Mme) -> None:
        self._record(
            now,
            RecordKind.RECEIVED,
            mme.name,
            {"src": m.mac_text(mme.src), "fields": m.fields_json(mme.message)},
        )

    def _set_state(
        self, now: float, state: EvseState, data: dict[str, object] | None = None
    ) -> None:
        self.state = state
        self._record(now, RecordKind.STATE, str(state), data or {})

    def _record(self, now: float, kind: RecordKind, name: str, data: dict[str, object]) -> None:
        self.recorder(SlacRecord(now, self.side, kind, name, data))
