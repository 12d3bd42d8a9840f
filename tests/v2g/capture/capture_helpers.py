"""Helpers of the capture tests: V2GTP framing, a scripted synthesized session, tshark.

The V2GTP and SDP bytes are built here (the stack's own v2gtp module is another engineer's): the
header is 01 FE, payload type u16, payload length u32 (DESIGN.md); an SDP request is 2 bytes
(security, transport), a response 20 (IPv6 address, port, security, transport) (FACTS.md).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import random
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rig.v2g.capture import CaptureWriter, TimestampResolution

TESTS = Path(__file__).resolve().parents[2]


def missing(reason: str) -> None:
    """tests/conftest.py's missing() (skip here, fail under RIG_REQUIRE_OPTIONAL=1). Loaded by
    path: pytest names every conftest.py outside a package "conftest", so the name is ambiguous."""
    name = "_rig_tests_root_conftest"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    module.missing(reason)


#: 2024-06-18 13:14:06.123456 UTC: the wall time of the scripted run's t = 0.
EPOCH_NS = 1_718_716_446_123_456_000
#: An EVCC with a modified EUI-64 link-local address (its MAC is 00:11:22:33:44:55) and a SECC
#: with a short one (its MAC is derived from a hash). Ports in the dynamic range, as real cars use.
EVCC = ("fe80::211:22ff:fe33:4455", 49153)
SECC = ("fe80::1", 64109)
SECC_SDP = ("fe80::1", 15118)

APP_PROTOCOL = 0x8001
COMMON = 0x8002
DC = 0x8004
SDP_REQUEST = 0x9000
SDP_RESPONSE = 0x9001


def v2gtp(payload_type: int, payload: bytes) -> bytes:
    return b"\x01\xfe" + struct.pack("!HI", payload_type, len(payload)) + payload


def sdp_request(security: int = 0x10, transport: int = 0x00) -> bytes:
    return v2gtp(SDP_REQUEST, bytes((security, transport)))


def sdp_response(address: str, port: int, security: int = 0x10, transport: int = 0x00) -> bytes:
    body = ipaddress.IPv6Address(address).packed + struct.pack("!HBB", port, security, transport)
    return v2gtp(SDP_RESPONSE, body)


@dataclass(frozen=True)
class Message:
    t: float
    from_client: bool
    frame: bytes  # the whole V2GTP frame


@dataclass(frozen=True)
class Script:
    """What a scripted session wrote."""

    sdp_request: tuple[float, bytes]
    sdp_response: tuple[float, bytes]
    open_t: float
    messages: tuple[Message, ...]
    close_t: float

    def stream(self, from_client: bool) -> bytes:
        return b"".join(m.frame for m in self.messages if m.from_client == from_client)


def session_script(loops: int = 6, seed: int = 15118) -> Script:
    """SDP, then an -20-shaped exchange: AppProtocol, a big response (a certificate chain's size,
    so it spans several MSS), then ChargeLoop pairs of ~80/~60 bytes with odd lengths (checksum
    padding), 250 ms apart, at times that are not whole microseconds."""
    rng = random.Random(seed)
    messages: list[Message] = []
    t = 0.2000004
    kinds = [(APP_PROTOCOL, 41, 13), (COMMON, 37, 5123), (COMMON, 29, 31)]
    kinds += [(DC, 80 + (i % 3), 60 + (i % 2)) for i in range(loops)]
    for payload_type, request_size, response_size in kinds:
        messages.append(Message(t, True, v2gtp(payload_type, rng.randbytes(request_size))))
        t += 0.0213337
        messages.append(Message(t, False, v2gtp(payload_type, rng.randbytes(response_size))))
        t += 0.25
    return Script(
        sdp_request=(0.0, sdp_request()),
        sdp_response=(0.0123455, sdp_response(SECC[0], SECC[1])),
        open_t=0.1,
        messages=tuple(messages),
        close_t=t + 0.5,
    )


def write_script(
    path: Path,
    script: Script,
    *,
    resolution: TimestampResolution = TimestampResolution.MICROSECONDS,
    ack_delay: float | None = 0.0,
    flush_every: int = 1,
) -> int:
    """Write the script as a synthesized capture; returns the number of packets written."""
    with CaptureWriter(
        path, epoch_ns=EPOCH_NS, resolution=resolution, flush_every=flush_every
    ) as writer:
        sdp = writer.sdp(EVCC, SECC_SDP)
        sdp.request(*script.sdp_request)
        sdp.response(*script.sdp_response)
        session = writer.tcp_session(EVCC, SECC, ack_delay=ack_delay)
        session.open(script.open_t)
        for i, message in enumerate(script.messages):
            session.data(message.t, message.from_client, message.frame, comment=f"message {i}")
        session.close(script.close_t, from_client=True)
    return writer.packets_written


def stamp(t: float, resolution: TimestampResolution = TimestampResolution.MICROSECONDS) -> int:
    """The nanosecond timestamp a reader must give for run time t at `resolution`."""
    unit = 10 ** (9 - int(resolution))
    return (EPOCH_NS // unit + round(t * 10 ** int(resolution))) * unit


# -- tshark ---------------------------------------------------------------------------------------

WARNING_SEVERITY = 0x00600000  # Wireshark's PI_WARN; PI_ERROR is 0x00800000


def tshark() -> str:
    """The tshark binary, or a skip (a failure under RIG_REQUIRE_OPTIONAL=1)."""
    path = shutil.which("tshark")
    if path is None:
        missing("tshark not installed (Debian: apt-get install -y tshark)")
        raise AssertionError("unreachable")
    return path


def run_tshark(path: Path, *args: str) -> str:
    result = subprocess.run(
        [
            tshark(),
            "-r",
            str(path),
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def tshark_expert(path: Path) -> list[tuple[int, int, str]]:
    """Every expert item tshark raises on the file: (frame, severity, message)."""
    out = run_tshark(
        path,
        "-Y",
        "_ws.expert",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.expert.message",
    )
    items = []
    for line in out.splitlines():
        number, severities, messages = line.split("\t")
        for severity, message in zip(severities.split("|"), messages.split("|"), strict=False):
            items.append((int(number), int(severity, 0), message))
    return items


def tshark_follow(path: Path, stream: int = 0) -> tuple[bytes, bytes]:
    """The two directions of TCP stream `stream` as tshark reassembles them (first speaker first)."""
    out = run_tshark(path, "-q", "-z", f"follow,tcp,raw,{stream}")
    first, second = bytearray(), bytearray()
    for line in out.splitlines():
        # Header lines ("Follow: tcp,raw", "Node 0: [fe80::2]:49153") and the ===== rulers.
        if not line.strip() or ":" in line or line.startswith("="):
            continue
        if line.startswith("\t"):
            second += bytes.fromhex(line.strip())
        else:
            first += bytes.fromhex(line.strip())
    return bytes(first), bytes(second)
