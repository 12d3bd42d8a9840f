"""DIN 70121 and ISO 15118-2 against real cars: every V2GTP payload of the captures in
../shared/pcaps decodes with the namespace set its connection negotiated and re-encodes byte
for byte; decoded values of a few messages are pinned; the grammar facts the captures confirm
(root and Body event codes) are pinned too, as are EVerest's DIN 70121 test vectors."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from captures import Message, messages
from exi_strategies import grammar_of

from rig.v2g import exi
from rig.v2g.exi import app, din, iso2

POLESTAR = "pyPLC__2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng"
AUDI = "tux-evse__audi-dc-iso2.pcap"
VW = "tux-evse__vw-ac-iso2.pcap"

# V2GTP messages per namespace set; every one is payload type 0x8001. The counts equal the
# TCP segments with data in each capture (one message per segment in all three).
COUNTS = {
    POLESTAR: {"app": 2, "din": 184},
    AUDI: {"app": 2, "iso2": 1490},
    VW: {"app": 2, "iso2": 16},
}


@pytest.fixture(scope="module")
def pcaps(shared: Path) -> Path:
    return shared / "pcaps"


_CACHE: dict[str, list[Message]] = {}


def session(pcaps: Path, name: str) -> list[Message]:
    if name not in _CACHE:
        _CACHE[name] = messages(pcaps / name, exi)
    return _CACHE[name]


def bodies(pcaps: Path, name: str) -> Iterator[tuple[Message, Any]]:
    """(message, Body member) of every DIN / -2 document of a capture, in capture order."""
    for m in session(pcaps, name):
        if m.ns in ("din", "iso2"):
            doc = exi.decode(m.ns, m.payload)
            assert isinstance(doc, (din.V2G_Message, iso2.V2G_Message))
            yield m, doc.Body.BodyElement


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_payload_decodes_and_reencodes_byte_for_byte(pcaps: Path, name: str) -> None:
    found = session(pcaps, name)
    assert Counter(m.ns for m in found) == COUNTS[name]
    assert {m.payload_type for m in found} == {0x8001}
    for m in found:
        message = exi.decode(m.ns, m.payload)
        assert exi.encode(message, m.ns) == m.payload, f"frame {m.frame}"
        as_json = json.loads(json.dumps(exi.to_json(message)))
        assert exi.from_json(m.ns, as_json) == message, f"frame {m.frame}"


def test_connections_negotiate_din_and_iso2(pcaps: Path) -> None:
    """The EV offers DIN and -2 (and the SECC picks one); the app documents say which."""
    picked = {}
    for name in COUNTS:
        req, res = (exi.decode("app", m.payload) for m in session(pcaps, name)[:2])
        assert isinstance(req, app.supportedAppProtocolReq)
        assert isinstance(res, app.supportedAppProtocolRes)
        offered = {p.ProtocolNamespace for p in req.AppProtocol}
        assert {"urn:din:70121:2012:MsgDef", "urn:iso:15118:2:2013:MsgDef"} <= offered
        picked[name] = next(
            p.ProtocolNamespace for p in req.AppProtocol if p.SchemaID == res.SchemaID
        )
    assert picked == {
        POLESTAR: "urn:din:70121:2012:MsgDef",
        AUDI: "urn:iso:15118:2:2013:MsgDef",
        VW: "urn:iso:15118:2:2013:MsgDef",
    }


def test_documents_begin_with_the_v2g_message_root_code(pcaps: Path) -> None:
    """Header 0x80, then SE(V2G_Message) as 7 bits: 77 of 81 globals (DIN), 76 of 80 (-2),
    then the 1-bit SE(Header): 0x9A and 0x98."""
    for name in COUNTS:
        for m in session(pcaps, name):
            if m.ns != "app":
                assert m.payload[:2] == {"din": b"\x80\x9a", "iso2": b"\x80\x98"}[m.ns]
    for ns, code, count in (("din", 77, 81), ("iso2", 76, 80)):
        g = exi.types(ns)
        names = [n for n, _uri in g.ROOTS]
        assert (len(names), names.index("V2G_Message"), g.DOCUMENT_WIDTH) == (count, code, 7)


def test_body_lists_the_abstract_head_among_its_members(shared: Path) -> None:
    """The Body's first state: BodyElement and the messages sorted by name, then EE; 6 bits.
    -2's abstract BodyElement keeps code 2, which puts SessionSetupReq at 29 as the cars send it;
    DIN's BodyElement (not abstract) is code 0."""
    for ns, head in (("din", 0), ("iso2", 2)):
        state = grammar_of(str(shared / "schemas"), ns, "BodyType").states[0]
        codes = {p.terminal.local or "EE": p.code for p in state.productions}
        assert (state.width, len(codes)) == (6, 36)
        assert (codes["BodyElement"], codes["SessionSetupReq"], codes["EE"]) == (head, 29, 35)


def test_abstract_heads_widen_choices_as_the_chargers_send_them(pcaps: Path, shared: Path) -> None:
    """-2's abstract SASchedules and EVSEChargeParameter keep their codes inside messages too:
    after EVSEProcessing, ChargeParameterDiscoveryRes has 5 productions (3 bits, not 2), and
    both chargers' responses, which take that branch with SAScheduleList, re-encode exactly."""
    g = grammar_of(str(shared / "schemas"), "iso2", "ChargeParameterDiscoveryResType")
    state = g.states[g.states[g.states[0].productions[0].target].productions[0].target]  # type: ignore[index]
    assert [p.terminal.local for p in state.productions] == [
        "SAScheduleList",
        "SASchedules",
        "AC_EVSEChargeParameter",
        "DC_EVSEChargeParameter",
        "EVSEChargeParameter",
    ]
    assert state.width == 3
    for name in (AUDI, VW):
        (m, res), *_ = [
            (m, b)
            for m, b in bodies(pcaps, name)
            if isinstance(b, iso2.ChargeParameterDiscoveryRes)
        ]
        assert isinstance(res.SASchedules, iso2.SAScheduleList)
        assert exi.encode(exi.decode("iso2", m.payload)) == m.payload


def test_polestar_din_charge_parameter_discovery_and_last_current_demand(pcaps: Path) -> None:
    found = [(m, b) for m, b in bodies(pcaps, POLESTAR)]
    frame, first = next(
        (m.frame, b) for m, b in found if isinstance(b, din.ChargeParameterDiscoveryReq)
    )
    assert frame == 172
    assert first.EVRequestedEnergyTransferType is din.EVRequestedEnergyTransferType.DC_extended
    dc = first.EVChargeParameter
    assert isinstance(dc, din.DC_EVChargeParameter)
    assert (dc.DC_EVStatus.EVReady, dc.DC_EVStatus.EVRESSSOC) == (False, 75)
    assert dc.DC_EVStatus.EVErrorCode is din.DC_EVErrorCodeType.NO_ERROR
    limit = dc.EVMaximumCurrentLimit
    assert (limit.Multiplier, limit.Unit, limit.Value) == (-1, din.unitSymbolType.A, 3750)  # 375 A
    assert (dc.EVMaximumVoltageLimit.Value, dc.EVMaximumVoltageLimit.Unit) == (
        470,
        din.unitSymbolType.V,
    )
    assert dc.EVEnergyCapacity is not None and dc.EVEnergyRequest is not None
    assert (dc.EVEnergyCapacity.Multiplier, dc.EVEnergyCapacity.Value) == (1, 7850)  # 78.5 kWh
    assert (dc.EVEnergyRequest.Multiplier, dc.EVEnergyRequest.Value) == (1, 2360)
    assert (dc.FullSOC, dc.BulkSOC) == (100, 80)

    frame, last = [(m.frame, b) for m, b in found if isinstance(b, din.CurrentDemandReq)][-1]
    assert frame == 1137
    assert sum(isinstance(b, din.CurrentDemandReq) for _, b in found) == 66
    assert (last.EVTargetCurrent.Multiplier, last.EVTargetCurrent.Value) == (-1, 221)  # 22.1 A
    assert (last.EVTargetVoltage.Multiplier, last.EVTargetVoltage.Value) == (0, 450)
    assert last.DC_EVStatus.EVReady and last.DC_EVStatus.EVRESSSOC == 75
    assert (last.ChargingComplete, last.BulkChargingComplete) == (False, False)
    assert last.RemainingTimeToFullSoC is not None
    assert last.RemainingTimeToFullSoC.Value == 10800  # 3 h


def test_audi_iso2_charge_parameter_discovery_and_last_current_demand(pcaps: Path) -> None:
    found = [(m, b) for m, b in bodies(pcaps, AUDI)]
    frame, first = next(
        (m.frame, b) for m, b in found if isinstance(b, iso2.ChargeParameterDiscoveryReq)
    )
    assert frame == 78
    assert first.MaxEntriesSAScheduleTuple == 192
    assert first.RequestedEnergyTransferMode is iso2.EnergyTransferModeType.DC_extended
    dc = first.EVChargeParameter
    assert isinstance(dc, iso2.DC_EVChargeParameter)
    assert (dc.DC_EVStatus.EVReady, dc.DC_EVStatus.EVRESSSOC) == (False, 55)
    assert (dc.EVMaximumCurrentLimit.Multiplier, dc.EVMaximumCurrentLimit.Value) == (-1, 5000)
    assert (dc.EVMaximumVoltageLimit.Multiplier, dc.EVMaximumVoltageLimit.Value) == (-1, 4080)
    assert dc.EVEnergyRequest is not None and dc.EVEnergyRequest.Value == 5300  # Wh
    assert dc.EVEnergyRequest.Unit is iso2.unitSymbolType.Wh

    frame, last = [(m.frame, b) for m, b in found if isinstance(b, iso2.CurrentDemandReq)][-1]
    assert frame == 4149
    assert sum(isinstance(b, iso2.CurrentDemandReq) for _, b in found) == 692
    assert (last.EVTargetCurrent.Value, last.EVTargetVoltage.Value) == (0, 4080)  # 0 A, 408 V
    assert last.EVTargetVoltage.Unit is iso2.unitSymbolType.V
    assert last.DC_EVStatus.EVRESSSOC == 55 and last.ChargingComplete is False


def test_vw_iso2_ac_session_in_order(pcaps: Path) -> None:
    order = [(m.from_ev, type(b).__name__) for m, b in bodies(pcaps, VW)]
    ev = ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"]
    ev += ["AuthorizationReq", "AuthorizationReq", "ChargeParameterDiscoveryReq"]
    ev += ["PowerDeliveryReq", "SessionStopReq"]
    assert [n for from_ev, n in order if from_ev] == ev
    assert [n for from_ev, n in order if not from_ev] == [n.replace("Req", "Res") for n in ev]
    req = next(b for _, b in bodies(pcaps, VW) if isinstance(b, iso2.ChargeParameterDiscoveryReq))
    ac = req.EVChargeParameter
    assert isinstance(ac, iso2.AC_EVChargeParameter)
    assert req.RequestedEnergyTransferMode is iso2.EnergyTransferModeType.AC_three_phase_core
    assert (ac.EAmount.Value, ac.EVMaxVoltage.Value, ac.EVMaxCurrent.Value) == (500, 4130, 3500)
    assert (ac.EVMaxCurrent.Multiplier, ac.EVMaxVoltage.Multiplier) == (-1, -1)  # 350 A, 413 V
    stop = [b for _, b in bodies(pcaps, VW)][-1]
    assert isinstance(stop, iso2.SessionStopRes)
    assert stop.ResponseCode is iso2.responseCodeType.FAILED_SequenceError


def test_mutated_capture_payloads_give_a_message_or_a_decode_error(pcaps: Path) -> None:
    """Seeded bit flips, truncations and byte edits of distinct capture payloads: never
    another exception (a malformed message from a peer must not crash the decoder)."""
    rng = random.Random(70121)
    distinct = sorted({(m.ns, m.payload) for name in COUNTS for m in session(pcaps, name)})
    outcomes: Counter[str] = Counter()
    for ns, payload in rng.sample(distinct, 120):
        for _ in range(12):
            data = bytearray(payload)
            how = rng.randrange(3)
            if how == 0:
                bit = rng.randrange(8, len(data) * 8)
                data[bit // 8] ^= 0x80 >> (bit % 8)
            elif how == 1:
                del data[rng.randrange(2, len(data)) :]
            else:
                data[rng.randrange(1, len(data))] = rng.randrange(256)
            try:
                exi.decode(ns, bytes(data))
                outcomes["message"] += 1
            except exi.EXIDecodeError:
                outcomes["decode error"] += 1
    assert outcomes["message"] > 0 and outcomes["decode error"] > 0


# --- EVerest's DIN 70121 test vectors (libcbv2g tests), with what those tests assert ---------


def _din_vectors(shared: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted((shared / "vectors" / "everest").glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("namespace") == "DIN70121" and record.get("kind") == "exi":
            out[record["name"].rsplit(" - ", 1)[-1]] = bytes.fromhex(record["hex"])
    return out


def test_everest_din_vectors(shared: Path) -> None:
    vectors = _din_vectors(shared)
    assert len(vectors) == 8 and len(set(vectors.values())) == 4
    for data in vectors.values():
        assert exi.encode(exi.decode("din", data)) == data

    def body(key: str) -> Any:
        doc = exi.decode("din", vectors[key])
        assert isinstance(doc, din.V2G_Message)
        return doc.Header, doc.Body.BodyElement

    header, req = body("Decode an SessionSetupReq document")
    assert header.SessionID == bytes(8) and header.Notification is None and header.Signature is None
    assert isinstance(req, din.SessionSetupReq) and bytes.fromhex("84877260F358") == req.EVCCID
    header, res = body("Decode an SessionSetupRes document")
    assert isinstance(res, din.SessionSetupRes)
    assert res.ResponseCode is din.responseCodeType.OK_NewSessionEstablished
    assert bytes.fromhex("49A89A6360") == res.EVSEID and res.DateTimeNow == 1667918014
    _, sd = body("Decode a ServiceDiscoveryReq document")
    assert isinstance(sd, din.ServiceDiscoveryReq)
    assert sd.ServiceScope is None and sd.ServiceCategory is din.serviceCategoryType.EVCharging
    header, sdr = body("Decode an ServiceDiscoveryRes document")
    assert header.SessionID == bytes.fromhex("4758FDD348A5EB24")
    assert isinstance(sdr, din.ServiceDiscoveryRes)
    assert sdr.ResponseCode is din.responseCodeType.OK
    assert sdr.PaymentOptions.PaymentOption == [din.paymentOptionType.ExternalPayment]
    tag = sdr.ChargeService.ServiceTag
    assert (tag.ServiceID, tag.ServiceName, tag.ServiceScope) == (1, None, None)
    assert tag.ServiceCategory is din.serviceCategoryType.EVCharging
    assert sdr.ChargeService.FreeService is False
    assert sdr.ChargeService.EnergyTransferType is din.EVSESupportedEnergyTransferType.DC_extended
