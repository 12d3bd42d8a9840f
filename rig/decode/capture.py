"""A capture decoded frame by frame: SLAC and the modems' messages, SDP, V2GTP and each EXI payload.

    decoded = decode_capture("car.pcapng", key_log=None)
    decoded.events        # one DecodedEvent per frame or message, in capture order
    decoded.summary()     # the counts of decode.json

The file is read with rig.v2g.pcapread (bounded, never raising on the file's content), the
HomePlug frames with rig.v2g.slac.messages, SDP with rig.v2g.sdp, the TCP streams are cut into
V2GTP frames, and every EXI payload is decoded with the codec its connection negotiated: the
supportedAppProtocol exchange names DIN 70121 ("din"), ISO 15118-2 ("iso2") or -20 (whose
payload type then says common, AC or DC). A TLS connection is decrypted with the key log given
or the capture's own Decryption Secrets Blocks. Whatever cannot be read is an Undecodable with
its frame number; nothing in a file makes this module raise.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rig.v2g import pcapread as pr
from rig.v2g.slac import messages as slac

#: AppProtocol namespaces -> the codec's namespace set for the messages after the handshake.
NAMESPACE_SETS: Mapping[str, str] = {
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
    "urn:iso:15118:2:2010:MsgDef": "iso2",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:std:iso:15118:-20:WPT": "wpt",
    "urn:iso:std:iso:15118:-20:ACDP": "acdp",
}
#: -20 payload types -> namespace set (rig.v2g.v2gtp.PayloadType).
_V20_PAYLOAD_SETS = {0x8002: "common", 0x8003: "ac", 0x8004: "dc", 0x8005: "acdp", 0x8006: "wpt"}
_V20_SETS = {"common", "ac", "dc", "acdp", "wpt"}
_TLS_RECORD_TYPES = {0x14, 0x15, 0x16, 0x17}
_LIMITS = pr.ReaderLimits()


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One line of trace.jsonl: seconds since the first frame, source, name, fields."""

    t: float
    src: str  # "capture", "slac", "sdp", "v2gtp", "decode"
    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    frame: int | None
    kind: str
    detail: str

    def as_record(self) -> dict[str, Any]:
        return {"frame": self.frame, "kind": self.kind, "detail": self.detail}


@dataclass
class DecodedCapture:
    """Everything decode_capture found."""

    source: str
    format: str = "unknown"
    frames: int = 0
    first_ns: int | None = None
    events: list[DecodedEvent] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    slac: int = 0
    sdp: int = 0
    v2gtp: int = 0
    exi_decoded: int = 0
    exi_failed: int = 0
    namespaces: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    tls_connections: int = 0
    tls_decrypted: int = 0

    def summary(self) -> dict[str, Any]:
        """decode.json: the counts the issue names, then what was undecodable."""
        return {
            "capture": self.source,
            "format": self.format,
            "frames": self.frames,
            "slac": self.slac,
            "sdp": self.sdp,
            "v2gtp": self.v2gtp,
            "exi_decoded": self.exi_decoded,
            "exi_failed": self.exi_failed,
            "namespaces": sorted(self.namespaces),
            "messages_per_namespace": dict(sorted(self.namespaces.items())),
            "tcp_connections": self.connections,
            "tls_connections": self.tls_connections,
            "tls_decrypted": self.tls_decrypted,
            "undecodable": [p.as_record() for p in sorted(self.problems, key=_problem_key)],
        }

    def t(self, time_ns: int) -> float:
        return 0.0 if self.first_ns is None else (time_ns - self.first_ns) / 1e9


def _problem_key(p: Problem) -> tuple[int, str]:
    return (-1 if p.frame is None else p.frame, p.kind)


def decode_capture(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    key_log: str | None = None,
    limits: pr.ReaderLimits = _LIMITS,
) -> DecodedCapture:
    """Decode a pcap or pcapng file (path, bytes or binary file); see the module docstring."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            raw = fh.read(limits.max_stream)
        name = os.fspath(source)
    elif isinstance(source, bytes | bytearray):
        raw, name = bytes(source), "<bytes>"
    else:
        raw, name = source.read(limits.max_stream), getattr(source, "name", "<stream>")
    out = DecodedCapture(str(name))
    frames, _ = pr.read_frames(raw, limits)
    capture = pr.read_capture(raw, limits)
    out.format = capture.format
    out.frames = capture.frames
    out.first_ns = frames[0].time_ns if frames else None
    for found in capture.undecodable:
        out.problems.append(Problem(found.frame, found.kind.name, found.detail))
    if capture.undecodable_dropped:
        out.problems.append(
            Problem(None, "LIMIT", f"{capture.undecodable_dropped} more problems not kept")
        )
    carried: set[int] = set()  # frames represented by a SLAC, SDP or V2GTP event
    events: list[tuple[int, int, DecodedEvent]] = []  # (frame, order, event)
    _slac_frames(out, frames, events, carried)
    _sdp(out, capture.sdp, events, carried)
    keys = key_log if key_log is not None else capture.tls_key_log.decode("ascii", "replace")
    for connection in capture.data_connections:
        out.connections += 1
        _connection(out, connection, keys, events, carried)
    for frame in frames:
        if frame.number not in carried:
            summary = _frame_summary(frame)
            events.append(
                (frame.number, 0, DecodedEvent(out.t(frame.time_ns), "capture", "frame", summary))
            )
    for problem in out.problems:
        events.append(
            (
                problem.frame or 0,
                9,
                DecodedEvent(
                    _time_of(out, frames, problem.frame),
                    "decode",
                    "undecodable",
                    problem.as_record(),
                ),
            )
        )
    events.sort(key=lambda e: (e[0], e[1]))
    out.events = [e for _, _, e in events]
    return out


def _time_of(out: DecodedCapture, frames: list[pr.CapturedFrame], number: int | None) -> float:
    if number is None or not frames:
        return 0.0
    index = min(max(number - 1, 0), len(frames) - 1)
    return out.t(frames[index].time_ns)


# -- frames ---------------------------------------------------------------------------------------


def _ethernet(frame: pr.CapturedFrame) -> tuple[int, int] | None:
    """(ethertype, payload offset) of an Ethernet frame, VLAN tags skipped; None otherwise."""
    data = frame.data
    if frame.linktype != pr.LinkType.ETHERNET or len(data) < 14:
        return None
    ethertype, pos = int.from_bytes(data[12:14], "big"), 14
    for _ in range(2):
        if ethertype not in (0x8100, 0x88A8) or len(data) < pos + 4:
            break
        ethertype, pos = int.from_bytes(data[pos + 2 : pos + 4], "big"), pos + 4
    return ethertype, pos


def _frame_summary(frame: pr.CapturedFrame) -> dict[str, Any]:
    """What a frame with no V2G message is: its protocol and, for TCP, ports, flags, length."""
    out: dict[str, Any] = {"frame": frame.number, "length": frame.wire_length}
    eth = _ethernet(frame)
    data = frame.data
    if eth is None:
        out["proto"] = f"linktype {frame.linktype}"
        return out
    ethertype, pos = eth
    if ethertype != 0x86DD or len(data) < pos + 40:
        out["proto"] = {0x0800: "ipv4", 0x0806: "arp", 0x88E1: "homeplug"}.get(
            ethertype, f"ethertype 0x{ethertype:04x}"
        )
        return out
    next_header = data[pos + 6]
    start = pos + 40
    if next_header == 6 and len(data) >= start + 20:
        ports = (
            int.from_bytes(data[start : start + 2], "big"),
            int.from_bytes(data[start + 2 : start + 4], "big"),
        )
        flags = data[start + 13]
        header = (data[start + 12] >> 4) * 4
        payload = max(0, int.from_bytes(data[pos + 4 : pos + 6], "big") - header)
        names = [
            n
            for bit, n in ((2, "SYN"), (16, "ACK"), (1, "FIN"), (4, "RST"), (8, "PSH"))
            if flags & bit
        ]
        out.update(proto="tcp", ports=list(ports), flags="+".join(names), payload=payload)
    elif next_header == 58:
        out["proto"] = "icmpv6"
    elif next_header == 17:
        out["proto"] = "udp"
    else:
        out["proto"] = f"ipv6 next header {next_header}"
    return out


def _slac_frames(
    out: DecodedCapture,
    frames: list[pr.CapturedFrame],
    events: list[tuple[int, int, DecodedEvent]],
    carried: set[int],
) -> None:
    for frame in frames:
        eth = _ethernet(frame)
        if eth is None or eth[0] != slac.ETHERTYPE_HOMEPLUG_AV:
            continue
        carried.add(frame.number)
        data = frame.data
        t = out.t(frame.time_ns)
        if len(data) < frame.wire_length:
            out.problems.append(
                Problem(
                    frame.number,
                    "SLAC_CUT",
                    f"HomePlug frame captured with {len(data)} of {frame.wire_length} bytes",
                )
            )
            continue
        try:
            mme = slac.decode_payload(data[0:6], data[6:12], data[eth[1] :])
        except slac.SlacDecodeError as exc:
            out.problems.append(Problem(frame.number, f"SLAC_{exc.fault.name}", exc.detail))
            continue
        out.slac += 1
        events.append(
            (
                frame.number,
                1,
                DecodedEvent(
                    t,
                    "slac",
                    mme.name,
                    {
                        "frame": frame.number,
                        "src": slac.mac_text(mme.src),
                        "dst": slac.mac_text(mme.dst),
                        "mmtype": f"0x{int(mme.mmtype):04X}",
                        "fields": slac.fields_json(mme.message),
                    },
                ),
            )
        )


def _sdp(
    out: DecodedCapture,
    datagrams: Iterable[pr.UdpDatagram],
    events: list[tuple[int, int, DecodedEvent]],
    carried: set[int],
) -> None:
    from rig.v2g import sdp

    for datagram in datagrams:
        carried.add(datagram.frame)
        data: dict[str, Any] = {
            "frame": datagram.frame,
            "src": str(datagram.src),
            "dst": str(datagram.dst),
        }
        name = "datagram"
        try:
            if datagram.dst.port == sdp.SDP_PORT:
                request = sdp.decode_request(datagram.payload)
                name = "request"
                data.update(security=request.security.name, transport=request.transport.name)
            else:
                response = sdp.decode_response(datagram.payload)
                name = "response"
                data.update(
                    address=str(response.address),
                    port=response.port,
                    security=response.security.name,
                    transport=response.transport.name,
                )
        except sdp.SdpError as exc:
            out.problems.append(Problem(datagram.frame, f"SDP_{exc.fault.name}", exc.detail))
            continue
        out.sdp += 1
        events.append((datagram.frame, 1, DecodedEvent(out.t(datagram.time_ns), "sdp", name, data)))


# -- V2GTP over TCP (and TLS) ------------------------------------------------------------------------


def _connection(
    out: DecodedCapture,
    connection: pr.TcpConnection,
    key_log: str,
    events: list[tuple[int, int, DecodedEvent]],
    carried: set[int],
) -> None:
    ev_end = connection.client or connection.endpoints[0]
    to_evse = connection.stream_from(ev_end)
    to_ev = next(s for s in connection.streams if s is not to_evse)
    streams = {"ev": to_evse, "evse": to_ev}
    if any(_is_tls(s) for s in streams.values()):
        out.tls_connections += 1
        decrypted = _decrypt(out, connection, to_evse, to_ev, key_log)
        if decrypted is None:
            for stream in streams.values():
                for run in stream.runs:
                    carried.update(mark.frame for mark in run.marks)
            return
        streams = decrypted
        out.tls_decrypted += 1
    splits = {side: pr.split_v2gtp(stream) for side, stream in streams.items()}
    for split in splits.values():
        for found in split.undecodable:
            out.problems.append(Problem(found.frame, found.kind.name, found.detail))
    ns = _negotiated(splits["ev"].frames, splits["evse"].frames)
    from rig.v2g import exi

    for side, split in splits.items():
        for index, frame in enumerate(split.frames):
            out.v2gtp += 1
            carried.add(frame.last_frame)
            carried.add(frame.first_frame)
            name, data = _v2gtp_message(out, exi, frame, index, ns, side, connection.index)
            events.append(
                (frame.last_frame, 2, DecodedEvent(out.t(frame.end_ns), "v2gtp", name, data))
            )
    for stream in (to_evse, to_ev):
        for run in stream.runs:
            carried.update(mark.frame for mark in run.marks)


def _is_tls(stream: pr.TcpStream) -> bool:
    data = stream.runs[0].data[:3] if stream.runs else b""
    return len(data) == 3 and data[0] in _TLS_RECORD_TYPES and data[1] == 3


def _decrypt(
    out: DecodedCapture,
    connection: pr.TcpConnection,
    to_evse: pr.TcpStream,
    to_ev: pr.TcpStream,
    key_log: str,
) -> dict[str, pr.TcpStream] | None:
    from rig.v2g import tls_records as tls

    where = to_evse.runs[0].marks[0].frame if to_evse.runs else connection.first_frame
    if not key_log.strip():
        out.problems.append(
            Problem(where, "TLS_NO_KEYS", f"TLS connection {connection.index}: no key log")
        )
        return None
    try:
        _, records = tls.decode_streams(tls.KeyLog.parse(key_log), to_evse.data, to_ev.data)
    except tls.TlsDecodeError as exc:
        out.problems.append(Problem(where, "TLS", f"connection {connection.index}: {exc}"))
        return None
    result = {}
    for side, stream, direction in (
        ("ev", to_evse, tls.Direction.CLIENT),
        ("evse", to_ev, tls.Direction.SERVER),
    ):
        plain = bytearray()
        marks: list[pr.ByteMark] = []
        for record in records:
            if record.direction is not direction or not record.is_application_data:
                continue
            mark = _mark_at(stream, record.offset)
            marks.append(pr.ByteMark(len(plain), mark.time_ns, mark.frame))
            plain += record.data
        runs = (pr.StreamRun(0, bytes(plain), tuple(marks)),) if plain else ()
        result[side] = pr.TcpStream(
            stream.src, stream.dst, runs, (), stream.isn, stream.fin, stream.segments, 0, 0
        )
    return result


def _mark_at(stream: pr.TcpStream, offset: int) -> pr.ByteMark:
    """The frame that brought the byte at `offset` of the stream's captured bytes (joined runs)."""
    seen = 0
    for run in stream.runs:
        if offset < seen + len(run.data):
            return run.mark_at(run.offset + offset - seen)
        seen += len(run.data)
    return stream.runs[-1].marks[-1]


def _negotiated(ev: tuple[pr.V2gtpFrame, ...], evse: tuple[pr.V2gtpFrame, ...]) -> str:
    """The namespace set the supportedAppProtocol exchange chose ("" if it did not)."""
    from rig.v2g import exi

    if not ev or not evse or ev[0].payload_type != 0x8001 or evse[0].payload_type != 0x8001:
        return ""
    try:
        request = exi.decode("app", ev[0].payload)
        response = exi.decode("app", evse[0].payload)
    except exi.EXIError:
        return ""
    offered = {p.SchemaID: p.ProtocolNamespace for p in getattr(request, "AppProtocol", None) or ()}
    chosen = getattr(response, "SchemaID", None)
    return NAMESPACE_SETS.get(offered.get(chosen, ""), "") if chosen is not None else ""


def _v2gtp_message(
    out: DecodedCapture,
    exi: Any,
    frame: pr.V2gtpFrame,
    index: int,
    negotiated: str,
    side: str,
    connection: int,
) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {
        "frame": frame.last_frame,
        "first_frame": frame.first_frame,
        "connection": connection,
        "from": side,
        "payload_type": f"0x{frame.payload_type:04X}",
        "length": len(frame.payload),
    }
    ns = _namespace_for(frame.payload_type, index, negotiated)
    if ns is None:
        out.exi_failed += 1
        detail = (
            "no namespace negotiated for this connection"
            if frame.payload_type in (0x8001, *_V20_PAYLOAD_SETS)
            else f"payload type 0x{frame.payload_type:04X} carries no EXI the rig decodes"
        )
        out.problems.append(Problem(frame.last_frame, "EXI_NAMESPACE", detail))
        data["exi"] = frame.payload.hex()
        return "undecoded", data
    data["ns"] = ns
    try:
        body = exi.to_json(exi.decode(ns, frame.payload))
    except exi.EXIError as exc:
        out.exi_failed += 1
        out.problems.append(Problem(frame.last_frame, "EXI", f"{ns}: {exc}"))
        data["exi"] = frame.payload.hex()
        return "undecoded", data
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:  # bounded, never raised
        out.exi_failed += 1
        out.problems.append(Problem(frame.last_frame, "EXI", f"{ns}: {type(exc).__name__}"))
        data["exi"] = frame.payload.hex()
        return "undecoded", data
    out.exi_decoded += 1
    out.namespaces[ns] += 1
    data["body"] = body
    return message_name(body), data


def _namespace_for(payload_type: int, index: int, negotiated: str) -> str | None:
    if payload_type == 0x8001:
        if index == 0:
            return "app"
        return negotiated if negotiated in ("din", "iso2") else None
    if payload_type in _V20_PAYLOAD_SETS and negotiated in _V20_SETS:
        return _V20_PAYLOAD_SETS[payload_type]
    return None


def message_name(body: Mapping[str, Any]) -> str:
    """The message's element name: the Body member for DIN / -2, the root element otherwise."""
    (root,) = body.keys() if len(body) == 1 else ("?",)
    inner = body.get(root)
    if root == "V2G_Message" and isinstance(inner, Mapping):
        members = inner.get("Body")
        if isinstance(members, Mapping) and members:
            return str(next(iter(members)))
    return str(root)


def message_content(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fields of the message itself (inside V2G_Message/Body for DIN and -2)."""
    name = message_name(body)
    inner = body.get("V2G_Message")
    if isinstance(inner, Mapping):
        members = inner.get("Body")
        if isinstance(members, Mapping):
            value = members.get(name)
            return value if isinstance(value, Mapping) else {}
    value = body.get(name)
    return value if isinstance(value, Mapping) else {}
