"""SDP codec, the SECC's answer and the EV's discovery logic: no sockets, no clock."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.v2g.sdp import (
    DiscoveryState,
    SdpDiscovery,
    SdpError,
    SdpFailed,
    SdpFault,
    SdpOffer,
    SdpRecord,
    SdpRequest,
    SdpResponse,
    SdpResult,
    SdpTry,
    SeccEndpoint,
    Security,
    TransportProtocol,
    answer_request,
    decode_request,
    decode_response,
)

SECC = IPv6Address("fe80::1")


def response_frame(payload: bytes, payload_type: int = 0x9001, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return struct.pack(">BBHI", 1, 0xFE, payload_type, n) + payload


def good_response_payload(port: int = 50000, security: int = 0x10, transport: int = 0) -> bytes:
    return SECC.packed + struct.pack(">HBB", port, security, transport)


# --- codec: exact bytes and round trips ---


def test_request_bytes_are_the_v2gtp_header_and_two_bytes() -> None:
    assert SdpRequest(Security.NO_TLS).encode().hex() == "01fe9000000000021000"
    assert SdpRequest(Security.TLS).encode().hex() == "01fe9000000000020000"


def test_response_bytes_carry_address_port_security_transport() -> None:
    frame = SdpResponse(SECC, 0xC350, Security.NO_TLS).encode()
    assert (
        frame.hex()
        == "01fe900100000014" + "fe800000000000000000000000000001" + "c350" + "10" + "00"
    )
    assert len(frame) == 28


@pytest.mark.parametrize("security", list(Security))
def test_request_round_trip(security: Security) -> None:
    request = SdpRequest(security)
    assert decode_request(request.encode()) == request


@pytest.mark.parametrize("security", list(Security))
@pytest.mark.parametrize("port", [1, 49152, 65535])
def test_response_round_trip(security: Security, port: int) -> None:
    response = SdpResponse(IPv6Address("fe80::1234:5678"), port, security)
    assert decode_response(response.encode()) == response


@given(
    st.binary(min_size=16, max_size=16),
    st.integers(1, 65535),
    st.sampled_from(list(Security)),
    st.sampled_from(list(TransportProtocol)),
)
def test_every_valid_response_round_trips(
    packed: bytes, port: int, security: Security, transport: TransportProtocol
) -> None:
    address = IPv6Address(packed)
    if address.is_unspecified or address.is_multicast:
        with pytest.raises(SdpError) as info:
            SdpResponse(address, port, security, transport)
        assert info.value.fault is SdpFault.BAD_ADDRESS
        return
    response = SdpResponse(address, port, security, transport)
    assert decode_response(response.encode()) == response


@given(st.binary(max_size=40))
def test_any_bytes_either_decode_or_raise_sdp_error(data: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decoded = decode(data)
        except SdpError as exc:
            assert isinstance(exc.fault, SdpFault)
        else:
            assert decoded.encode() == data  # only the canonical form is accepted


# --- codec: every malformed case, each with its fault ---

REQUEST = bytes.fromhex("01fe9000000000021000")
RESPONSE = response_frame(good_response_payload())

MALFORMED_REQUESTS = [
    ("empty", b"", SdpFault.TOO_SHORT),
    ("seven bytes", REQUEST[:7], SdpFault.TOO_SHORT),
    ("version 2", b"\x02\xfd" + REQUEST[2:], SdpFault.BAD_VERSION),
    ("inverse not FE", b"\x01\xff" + REQUEST[2:], SdpFault.BAD_INVERSE_VERSION),
    ("a response", RESPONSE, SdpFault.WRONG_PAYLOAD_TYPE),
    ("an EXI frame", bytes.fromhex("01fe8001000000021000"), SdpFault.WRONG_PAYLOAD_TYPE),
    ("length field 3", bytes.fromhex("01fe900000000003100000"), SdpFault.WRONG_PAYLOAD_LENGTH),
    ("length field 1", bytes.fromhex("01fe90000000000110"), SdpFault.WRONG_PAYLOAD_LENGTH),
    ("payload cut", REQUEST[:9], SdpFault.LENGTH_MISMATCH),
    ("trailing byte", REQUEST + b"\x00", SdpFault.LENGTH_MISMATCH),
    ("security 0x01", bytes.fromhex("01fe9000000000020100"), SdpFault.BAD_SECURITY),
    ("security 0xff", bytes.fromhex("01fe900000000002ff00"), SdpFault.BAD_SECURITY),
    ("transport 0x01", bytes.fromhex("01fe9000000000021001"), SdpFault.BAD_TRANSPORT),
    ("transport 0xff", bytes.fromhex("01fe90000000000210ff"), SdpFault.BAD_TRANSPORT),
]

MALFORMED_RESPONSES = [
    ("empty", b"", SdpFault.TOO_SHORT),
    ("header only cut", RESPONSE[:5], SdpFault.TOO_SHORT),
    ("version 0", b"\x00\xff" + RESPONSE[2:], SdpFault.BAD_VERSION),
    ("inverse 00", b"\x01\x00" + RESPONSE[2:], SdpFault.BAD_INVERSE_VERSION),
    ("a request", REQUEST, SdpFault.WRONG_PAYLOAD_TYPE),
    ("wireless type", response_frame(good_response_payload(), 0x9003), SdpFault.WRONG_PAYLOAD_TYPE),
    (
        "length field 19",
        response_frame(good_response_payload()[:19]),
        SdpFault.WRONG_PAYLOAD_LENGTH,
    ),
    (
        "length field 21",
        response_frame(good_response_payload() + b"\0"),
        SdpFault.WRONG_PAYLOAD_LENGTH,
    ),
    ("payload cut", RESPONSE[:-1], SdpFault.LENGTH_MISMATCH),
    ("trailing byte", RESPONSE + b"\x00", SdpFault.LENGTH_MISMATCH),
    ("port 0", response_frame(good_response_payload(port=0)), SdpFault.BAD_PORT),
    ("security 0x20", response_frame(good_response_payload(security=0x20)), SdpFault.BAD_SECURITY),
    ("transport 0x02", response_frame(good_response_payload(transport=2)), SdpFault.BAD_TRANSPORT),
    (
        "unspecified address",
        response_frame(bytes(16) + struct.pack(">HBB", 50000, 0x10, 0)),
        SdpFault.BAD_ADDRESS,
    ),
    (
        "multicast address",
        response_frame(IPv6Address("ff02::1").packed + struct.pack(">HBB", 50000, 0x10, 0)),
        SdpFault.BAD_ADDRESS,
    ),
]


@pytest.mark.parametrize(
    ("data", "fault"),
    [(d, f) for _, d, f in MALFORMED_REQUESTS],
    ids=[n for n, _, _ in MALFORMED_REQUESTS],
)
def test_malformed_request_is_refused_with_its_fault(data: bytes, fault: SdpFault) -> None:
    with pytest.raises(SdpError) as info:
        decode_request(data)
    assert info.value.fault is fault
    assert fault.value in str(info.value)


@pytest.mark.parametrize(
    ("data", "fault"),
    [(d, f) for _, d, f in MALFORMED_RESPONSES],
    ids=[n for n, _, _ in MALFORMED_RESPONSES],
)
def test_malformed_response_is_refused_with_its_fault(data: bytes, fault: SdpFault) -> None:
    with pytest.raises(SdpError) as info:
        decode_response(data)
    assert info.value.fault is fault


def test_every_fault_has_a_malformed_case() -> None:
    covered = {f for _, _, f in MALFORMED_REQUESTS} | {f for _, _, f in MALFORMED_RESPONSES}
    assert covered == set(SdpFault)


def test_error_text_names_the_offending_value() -> None:
    with pytest.raises(SdpError, match="0x9001, expected 0x9000"):
        decode_request(RESPONSE)
    with pytest.raises(SdpError, match="0x01"):
        decode_request(bytes.fromhex("01fe9000000000020100"))


# --- the SECC's answer ---

OFFER_BOTH = SdpOffer(SECC, {Security.TLS: 50001, Security.NO_TLS: 50000})


@pytest.mark.parametrize(("asked", "port"), [(Security.TLS, 50001), (Security.NO_TLS, 50000)])
def test_secc_answers_with_the_port_of_the_security_asked_for(asked: Security, port: int) -> None:
    answer = answer_request(SdpRequest(asked).encode(), OFFER_BOTH)
    assert answer.response == SdpResponse(SECC, port, asked)
    assert answer.note == "answered"


def test_secc_offers_what_it_has_when_the_ev_asks_for_something_else() -> None:
    tls_only = SdpOffer(SECC, {Security.TLS: 50001})
    answer = answer_request(SdpRequest(Security.NO_TLS).encode(), tls_only)
    assert answer.response == SdpResponse(SECC, 50001, Security.TLS)


def test_secc_ignores_malformed_and_udp_requests() -> None:
    bad = answer_request(b"\x01\xfe\x90\x00", OFFER_BOTH)
    assert bad.response is None and bad.request is None and "shorter" in bad.note
    udp = answer_request(SdpRequest(Security.NO_TLS, TransportProtocol.UDP).encode(), OFFER_BOTH)
    assert udp.response is None and udp.note == "ignored: only TCP is offered"


def test_offer_needs_a_port() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SdpOffer(SECC, {})


# --- the EV's discovery ---


def test_discovery_retries_every_interval_and_gives_up_after_max_requests() -> None:
    records: list[SdpRecord] = []
    d = SdpDiscovery(SdpRequest(), max_requests=4, interval=0.25, recorder=records.append)
    frames = [d.begin(10.0)]
    while (frame := d.timeout(d.deadline)) is not None:
        frames.append(frame)
    assert d.state is DiscoveryState.FAILED
    assert frames == [SdpRequest().encode()] * 4
    assert [t.sent_at for t in d.tries] == [10.0, 10.25, 10.5, 10.75]
    assert records == d.tries
    with pytest.raises(SdpFailed, match="after 4 requests") as info:
        d.result()
    assert [t.number for t in info.value.tries] == [1, 2, 3, 4]


def test_discovery_takes_the_first_valid_response_and_records_malformed_ones() -> None:
    d = SdpDiscovery(SdpRequest(), interface="veth0")
    d.begin(0.0)
    d.timeout(0.25)
    assert d.datagram(b"garbage", "[fe80::9%veth0]:15118", 0.3) is None
    good = SdpResponse(SECC, 50000, Security.NO_TLS)
    assert d.datagram(good.encode(), "[fe80::1%veth0]:15118", 0.31) == good
    other = SdpResponse(IPv6Address("fe80::7"), 50007, Security.NO_TLS)
    assert d.datagram(other.encode(), "[fe80::7%veth0]:15118", 0.32) is None  # after the outcome
    assert d.timeout(0.5) is None and d.state is DiscoveryState.FOUND
    result = d.result()
    assert result.endpoint == SeccEndpoint(SECC, 50000, Security.NO_TLS, "veth0")
    assert [(r.after_try, r.response is None) for r in result.replies] == [(2, True), (2, False)]
    assert result.replies[0].error is not None and "shorter" in result.replies[0].error
    assert result.tries == (SdpTry(1, 0.0), SdpTry(2, 0.25))


def test_discovery_cannot_begin_twice_and_checks_its_settings() -> None:
    d = SdpDiscovery(SdpRequest())
    d.begin(0.0)
    with pytest.raises(RuntimeError):
        d.begin(1.0)
    with pytest.raises(ValueError):
        SdpDiscovery(SdpRequest(), max_requests=0)
    with pytest.raises(ValueError):
        SdpDiscovery(SdpRequest(), interval=0)


def test_direct_mode_records_no_sdp() -> None:
    endpoint = SeccEndpoint.parse("fe80::1%veth0", 50000)
    assert endpoint.interface == "veth0" and endpoint.address == SECC
    result = SdpResult.direct(endpoint)
    assert result.response is None and result.tries == () and result.endpoint is endpoint
