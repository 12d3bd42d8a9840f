"""The EV side of SLAC (ISO 15118-3 9.3-9.5), sans-IO: frames in, frames out, one deadline.

    ev = EvSlac(host_mac, SlacTiming(), rng=random.Random(1))
    out = ev.start(now)               # frames to send: CM_SLAC_PARM.REQ
    out = ev.receive(frame, now)      # a frame from the line (or the local modem)
    out = ev.timeout(now)             # when now >= ev.deadline
    ev.state, ev.match, ev.failure

The sequence: CM_SLAC_PARM.REQ (broadcast; TT_match_response, C_EV_match_retry retries) ->
CM_SLAC_PARM.CNF -> CM_START_ATTEN_CHAR.IND x3 and CM_MNBC_SOUND.IND x10, one every
TP_EV_batch_msg_interval, TT_EV_atten_results running from the first -> CM_ATTEN_CHAR.IND ->
CM_ATTEN_CHAR.RSP -> CM_SLAC_MATCH.REQ (to the EVSE; TT_match_response, retries) ->
CM_SLAC_MATCH.CNF -> CM_SET_KEY.REQ to the local modem -> CM_SET_KEY.CNF: matched. A failed
matching process starts again after TT_matching_rate, at most C_conn_max_match times within
TT_matching_repetition; then the side stays unmatched (FAILED).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from rig.v2g.slac import messages as m
from rig.v2g.slac.records import Recorder, RecordKind, SlacMatch, SlacRecord, discard
from rig.v2g.slac.timing import DEFAULT_TIMING, SlacTiming


class EvState(StrEnum):
    IDLE = "idle"
    PARM = "parm"  # CM_SLAC_PARM.REQ sent, waiting for the CNF
    SOUNDING = "sounding"  # START_ATTEN_CHAR and MNBC_SOUND going out, waiting for ATTEN_CHAR.IND
    MATCH = "match"  # CM_SLAC_MATCH.REQ sent
    JOIN = "join"  # CM_SET_KEY.REQ sent to the local modem
    PAUSE = "pause"  # TT_matching_rate before the next matching process
    MATCHED = "matched"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EvConfig:
    """What the EV sends and accepts."""

    #: The local modem's address for CM_SET_KEY.REQ (a QCA modem answers on 00:B0:52:00:00:01).
    modem_mac: bytes = m.QCA_LOCAL_MAC
    pev_id: bytes = bytes(m.ID_LENGTH)
    #: Refuse an EVSE whose mean attenuation is above this (dB); None accepts any (rig's own:
    #: -3 leaves the decision to the EV).
    max_attenuation_db: float | None = None
    #: The result CM_SET_KEY.CNF must carry; None accepts any (Qualcomm firmware answers 1 on
    #: success, the HomePlug text says 0: see messages.SetKeyCnf).
    set_key_result: int | None = None


class EvSlac:
    """One EV's matching process; see the module docstring."""

    side = "ev"

    def __init__(
        self,
        host_mac: bytes,
        timing: SlacTiming = DEFAULT_TIMING,
        config: EvConfig = EvConfig(),
        *,
        rng: random.Random | None = None,
        recorder: Recorder = discard,
    ) -> None:
        self.host_mac = m.parse_mac(host_mac)
        self.timing = timing
        self.config = config
        self.rng = rng or random.Random()
        self.recorder = recorder
        self.state = EvState.IDLE
        self.deadline: float | None = None
        self.match: SlacMatch | None = None
        self.failure: str | None = None
        self.processes = 0  # matching processes started
        self._first_start: float = 0.0
        self._process_start = 0.0
        self._run_id = bytes(m.RUN_ID_LENGTH)
        self._evse_mac = bytes(6)
        self._tries = 0
        self._batch_sent = 0  # START_ATTEN_CHAR and MNBC_SOUND messages sent
        self._results_deadline = 0.0
        self._profile: m.AttenCharInd | None = None
        self._cnf: m.SlacMatchCnf | None = None

    # -- inputs --------------------------------------------------------------------------------
    def start(self, now: float) -> list[bytes]:
        """Begin matching (the EV has seen 5 % PWM in state B)."""
        if self.state not in (EvState.IDLE, EvState.FAILED):
            raise RuntimeError(f"SLAC already running ({self.state})")
        self.processes = 0
        self.match = None
        self.failure = None
        self._first_start = now
        return self._new_process(now)

    def receive(self, frame: bytes, now: float) -> list[bytes]:
        """A frame from the interface. Frames for other stations, other runs or other states are
        set aside (recorded as ignored); undecodable ones are recorded, never raised."""
        if len(frame) < 14 or (frame[0:6] != self.host_mac and frame[0:6] != m.BROADCAST):
            return []
        try:
            mme = m.decode(frame)
        except m.SlacDecodeError as exc:
            self._record(now, RecordKind.UNDECODABLE, exc.fault.name, {"detail": exc.detail})
            return []
        if mme.src == self.host_mac:
            return []  # our own broadcast, looped back by an interface
        msg = mme.message
        out: list[bytes] | None = None
        match self.state, msg:
            case EvState.PARM, m.SlacParmCnf() if msg.run_id == self._run_id:
                out = self._on_parm_cnf(mme, msg, now)
            case EvState.SOUNDING, m.AttenCharInd() if msg.run_id == self._run_id:
                out = self._on_atten_char(mme, msg, now)
            case EvState.MATCH, m.AttenCharInd() if msg.run_id == self._run_id:
                out = [self._send(now, mme.src, self._atten_rsp(msg))]  # the RSP was lost: again
            case EvState.MATCH, m.SlacMatchCnf() if msg.run_id == self._run_id:
                out = self._on_match_cnf(mme, msg, now)
            case EvState.JOIN, m.SetKeyCnf():
                out = self._on_set_key_cnf(mme, msg, now)
        if out is None:
            self._record(now, RecordKind.IGNORED, mme.name, {"src": m.mac_text(mme.src)})
            return []
        return out

    def timeout(self, now: float) -> list[bytes]:
        """The deadline passed (call when now >= deadline)."""
        if self.deadline is None or now < self.deadline:
            return []
        t = self.timing
        match self.state:
            case EvState.PARM:
                if self._tries <= t.ev_match_retry:
                    return [self._send_parm_req(now)]
                return self._process_failed(now, "no CM_SLAC_PARM.CNF")
            case EvState.SOUNDING:
                if now >= self._results_deadline:
                    # [V2G3-A09-30] (?): TT_EV_atten_results from the first START_ATTEN_CHAR
                    return self._process_failed(
                        now, "no CM_ATTEN_CHAR.IND within TT_EV_atten_results"
                    )
                return self._next_batch(now)
            case EvState.MATCH:
                if self._tries <= t.ev_match_retry:
                    return [self._send_match_req(now)]
                return self._process_failed(now, "no CM_SLAC_MATCH.CNF")
            case EvState.JOIN:
                return self._process_failed(now, "no CM_SET_KEY.CNF from the local modem")
            case EvState.PAUSE:
                return self._new_process(now)
        return []

    # -- steps ---------------------------------------------------------------------------------
    def _new_process(self, now: float) -> list[bytes]:
        self.processes += 1
        self._process_start = now
        self._run_id = self.rng.randbytes(m.RUN_ID_LENGTH)
        self._tries = 0
        self._profile = None
        self._cnf = None
        self._set_state(
            now, EvState.PARM, {"run_id": self._run_id.hex(), "process": self.processes}
        )
        return [self._send_parm_req(now)]

    def _send_parm_req(self, now: float) -> bytes:
        self._tries += 1
        self.deadline = now + self.timing.match_response
        return self._send(now, m.BROADCAST, m.SlacParmReq(run_id=self._run_id))

    def _on_parm_cnf(self, mme: m.Mme, msg: m.SlacParmCnf, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._evse_mac = mme.src
        self._batch_sent = 0
        self._results_deadline = now + self.timing.ev_atten_results
        self._set_state(now, EvState.SOUNDING, {"evse_mac": m.mac_text(mme.src)})
        return self._next_batch(now)

    def _next_batch(self, now: float) -> list[bytes]:
        t = self.timing
        starts, sounds = t.ev_start_atten_char_inds, t.ev_match_mnbc
        out: list[bytes] = []
        if self._batch_sent < starts:
            out.append(
                self._send(
                    now,
                    m.BROADCAST,
                    m.StartAttenCharInd(
                        num_sounds=sounds,
                        time_out=t.time_out_units,
                        resp_type=1,
                        forwarding_sta=self.host_mac,
                        run_id=self._run_id,
                    ),
                )
            )
        elif self._batch_sent < starts + sounds:
            remaining = starts + sounds - self._batch_sent - 1
            out.append(
                self._send(
                    now,
                    m.BROADCAST,
                    m.MnbcSoundInd(
                        count=remaining, run_id=self._run_id, random=self.rng.randbytes(16)
                    ),
                )
            )
        self._batch_sent += 1
        if self._batch_sent < starts + sounds:
            self.deadline = min(now + t.batch_msg_interval, self._results_deadline)
        else:
            self.deadline = self._results_deadline
        return out

    def _atten_rsp(self, msg: m.AttenCharInd) -> m.AttenCharRsp:
        return m.AttenCharRsp(source_address=self.host_mac, run_id=self._run_id, result=0)

    def _on_atten_char(self, mme: m.Mme, msg: m.AttenCharInd, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._evse_mac = mme.src
        self._profile = msg
        out = [self._send(now, mme.src, self._atten_rsp(msg))]
        limit = self.config.max_attenuation_db
        mean = msg.mean_attenuation
        if limit is not None and (mean is None or mean > limit):
            return out + self._process_failed(
                now, f"attenuation {mean} dB above the EV's limit {limit} dB"
            )
        self._tries = 0
        self._set_state(now, EvState.MATCH, {"attenuation_db": mean})
        return [*out, self._send_match_req(now)]

    def _send_match_req(self, now: float) -> bytes:
        self._tries += 1
        self.deadline = now + self.timing.match_response
        return self._send(
            now,
            self._evse_mac,
            m.SlacMatchReq(
                pev_id=self.config.pev_id,
                pev_mac=self.host_mac,
                evse_mac=self._evse_mac,
                run_id=self._run_id,
            ),
        )

    def _on_match_cnf(self, mme: m.Mme, msg: m.SlacMatchCnf, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        self._cnf = msg
        self._set_state(now, EvState.JOIN, {"nid": msg.nid.hex()})
        self.deadline = now + self.timing.set_key
        return [self._send(now, self.config.modem_mac, m.SetKeyReq(nid=msg.nid, new_key=msg.nmk))]

    def _on_set_key_cnf(self, mme: m.Mme, msg: m.SetKeyCnf, now: float) -> list[bytes]:
        self._record_rx(now, mme)
        wanted = self.config.set_key_result
        if wanted is not None and msg.result != wanted:
            return self._process_failed(now, f"CM_SET_KEY.CNF result {msg.result}")
        assert self._cnf is not None
        profile = self._profile
        self.match = SlacMatch(
            run_id=self._run_id,
            ev_mac=self.host_mac,
            evse_mac=self._evse_mac,
            nid=self._cnf.nid,
            nmk=self._cnf.nmk,
            attenuation_db=None if profile is None else profile.mean_attenuation,
            started_at=self._first_start,
            matched_at=now,
        )
        self.deadline = None
        self._set_state(now, EvState.MATCHED)
        self._record(
            now,
            RecordKind.MATCHED,
            "matched",
            {
                "nmk": self.match.nmk.hex(),
                "nid": self.match.nid.hex(),
                "evse_mac": m.mac_text(self._evse_mac),
                "duration_s": round(self.match.duration, 6),
            },
        )
        return []

    def _process_failed(self, now: float, why: str) -> list[bytes]:
        t = self.timing
        self._record(now, RecordKind.TIMEOUT, why, {"state": str(self.state)})
        # [V2G3-A09-124]/[V2G3-A09-125] (?): again after TT_matching_rate, while within
        # TT_matching_repetition and C_conn_max_match
        retry_at = now + t.matching_rate
        if (
            self.processes < t.conn_max_match
            and retry_at - self._first_start <= t.matching_repetition
        ):
            self._set_state(now, EvState.PAUSE)
            self.deadline = retry_at
            return []
        self.failure = why
        self.deadline = None
        self._set_state(now, EvState.FAILED)
        self._record(now, RecordKind.FAILED, why, {"processes": self.processes})
        return []

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

    def _set_state(self, now: float, state: EvState, data: dict[str, object] | None = None) -> None:
        self.state = state
        self._record(now, RecordKind.STATE, str(state), data or {})

    def _record(self, now: float, kind: RecordKind, name: str, data: dict[str, object]) -> None:
        self.recorder(SlacRecord(now, self.side, kind, name, data))
