"""A small SDP + TCP exchange over a veth pair between two network namespaces, captured live.

Run by test_capture_live.py as `unshare -n python live_exchange.py secc OUTDIR MODE` (root; MODE
"bpf" or "python", the LiveCapture's filter): this
process is the SECC in a fresh namespace; it starts `unshare -n python live_exchange.py evcc` as
the EVCC in a second one, moves the veth's other end there, captures its own end with
rig.v2g.capture.LiveCapture and answers SDP and the EVCC's requests over link-local IPv6. It
prints one JSON object: what each side sent and received, the capture's filter mode and counts.
Both namespaces vanish with their processes (and the veth pair with them).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

SECC_IF, EVCC_IF = "v2gcap-se", "v2gcap-ev"
SECC_ADDRESS, EVCC_ADDRESS = "fe80::1", "fe80::2"
TCP_PORT = 64109
EVCC_SDP_PORT, EVCC_TCP_PORT = 49200, 49201
SDP_PORT = 15118
REQUESTS = [
    bytes([0x01, 0xFE, 0x80, 0x02]) + struct.pack("!I", n) + bytes([n % 256]) * n
    for n in (40, 81, 3000)
]
TIMEOUT = 10.0


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def v2gtp_response(request: bytes) -> bytes:
    body = b"res:" + request[8:24]
    return request[:4] + struct.pack("!I", len(body)) + body


def read_frame(conn: socket.socket) -> bytes | None:
    """One V2GTP frame, or None at the end of the stream."""
    header = b""
    while len(header) < 8:
        chunk = conn.recv(8 - len(header))
        if not chunk:
            return None
        header += chunk
    length = struct.unpack("!I", header[4:8])[0]
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return header + body


def evcc() -> None:
    """The EVCC side, in its own namespace; waits for "go" once its veth end has arrived."""
    assert sys.stdin.readline().strip() == "go"
    ip("link", "set", "lo", "up")
    ip("link", "set", EVCC_IF, "up")
    ip("-6", "addr", "add", f"{EVCC_ADDRESS}/64", "dev", EVCC_IF, "nodad")
    index = socket.if_nametoindex(EVCC_IF)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.settimeout(TIMEOUT)
    udp.bind(("::", EVCC_SDP_PORT, 0, index))
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    sdp_request = bytes.fromhex("01fe9000000000021000")
    udp.sendto(sdp_request, ("ff02::1", SDP_PORT, 0, index))
    sdp_response, _ = udp.recvfrom(100)
    udp.close()
    conn = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    conn.settimeout(TIMEOUT)
    conn.bind(("::", EVCC_TCP_PORT, 0, index))
    conn.connect((SECC_ADDRESS, TCP_PORT, 0, index))
    received = b""
    for request in REQUESTS:
        conn.sendall(request)
        frame = read_frame(conn)
        assert frame is not None
        received += frame
    conn.shutdown(socket.SHUT_WR)
    assert conn.recv(1) == b""  # the SECC's FIN
    conn.close()
    print(
        json.dumps(
            {
                "sdp_request": sdp_request.hex(),
                "sdp_response": sdp_response.hex(),
                "sent": b"".join(REQUESTS).hex(),
                "received": received.hex(),
            }
        ),
        flush=True,
    )
    # Stay (and keep the veth pair alive) until the SECC has stopped its capture.
    sys.stdin.readline()


def secc(out: Path, bpf: bool) -> None:
    from rig.v2g.capture import CaptureWriter, LiveCapture, live_filter, live_interface
    from rig.v2g.pcapread import read_frames

    ip("link", "set", "lo", "up")
    child = subprocess.Popen(
        ["unshare", "-n", sys.executable, __file__, "evcc"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ip("link", "add", SECC_IF, "type", "veth", "peer", "name", EVCC_IF)
        ip("link", "set", EVCC_IF, "netns", str(child.pid))
        ip("link", "set", SECC_IF, "up")
        ip("-6", "addr", "add", f"{SECC_ADDRESS}/64", "dev", SECC_IF, "nodad")
        index = socket.if_nametoindex(SECC_IF)
        selection = live_filter([TCP_PORT])
        started_ns = time.time_ns()
        writer = CaptureWriter(
            out / "v2g.pcapng", epoch_ns=started_ns, interface=live_interface(SECC_IF, selection)
        )
        live = LiveCapture(writer, SECC_IF, tcp_ports=[TCP_PORT], bpf=bpf)
        live.start()
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        udp.settimeout(TIMEOUT)
        udp.bind(("::", SDP_PORT))
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.settimeout(TIMEOUT)
        server.bind((SECC_ADDRESS, TCP_PORT, 0, index))
        server.listen(1)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        request, peer = udp.recvfrom(100)
        sdp_response = bytes.fromhex(
            "01fe90010000001400000000000000000000000000000001"
        ) + struct.pack("!HBB", TCP_PORT, 0x10, 0x00)
        sdp_response = sdp_response[:8] + bytes.fromhex("fe80000000000000") + sdp_response[16:]
        udp.sendto(sdp_response, peer)
        conn, _ = server.accept()
        conn.settimeout(TIMEOUT)
        got, sent = b"", b""
        while (frame := read_frame(conn)) is not None:
            got += frame
            answer = v2gtp_response(frame)
            conn.sendall(answer)
            sent += answer
        conn.close()
        assert child.stdout is not None
        report = child.stdout.readline()
        # Let the last segments reach the sniffer: stop once nothing new came for 0.3 s.
        deadline = time.monotonic() + 5.0
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if live.frames != seen:
                seen, quiet_since = live.frames, time.monotonic()
            elif time.monotonic() - quiet_since > 0.3:
                break
            time.sleep(0.02)
        live.stop()
        writer.close()
        ended_ns = time.time_ns()
        child.stdin.write("exit\n")
        child.stdin.flush()
        child.wait(timeout=TIMEOUT)
        evcc_view = json.loads(report)
        print(
            json.dumps(
                {
                    **evcc_view,
                    "secc_got": got.hex(),
                    "secc_sent": sent.hex(),
                    "secc_sdp_got": request.hex(),
                    "secc_sdp_sent": sdp_response.hex(),
                    "filter_mode": live.filter_mode,
                    "requested": "bpf" if bpf else "python",
                    "filter": selection,
                    "frames": live.frames,
                    "errors": live.errors,
                    "frames_in_file": len(read_frames(out / "v2g.pcapng")[0]),
                    "started_ns": started_ns,
                    "ended_ns": ended_ns,
                    "tcp_port": TCP_PORT,
                    "evcc_tcp_port": EVCC_TCP_PORT,
                    "evcc_sdp_port": EVCC_SDP_PORT,
                }
            ),
            flush=True,
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=5)


if __name__ == "__main__":
    if sys.argv[1] == "evcc":
        evcc()
    else:
        secc(Path(sys.argv[2]), bpf=sys.argv[3] == "bpf")
        os._exit(0)  # the sniffer's thread is joined already; do not wait on scapy's atexit
