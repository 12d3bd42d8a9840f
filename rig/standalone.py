"""`rig ev` and `rig evse`: the rig's EVCC or SECC alone on a real network, for lab use.

    rig ev   --iface IF | --host ADDR --port N  [--no-tls | --tls --pki DIR]
             [--service DC_BPT|AC_BPT|DC|AC] [--control-mode dynamic|scheduled]
             [--discharge-kw KW] [--duration S] [--out DIR]
    rig evse --iface IF | --host ADDR [--port N] [--no-tls | --tls --pki DIR]
             [--services LIST] [--sessions N] [--out DIR]

`rig ev` runs one session as the EV: an emulated battery (LabEv, a rig.v2g.reference.BatteryEv
that also asks for discharge and stops after a while) finds the charger by SDP on IF (or connects
to ADDR:N), charges, or with --discharge-kw asks the charger to take that much power from it,
and after --duration seconds of ChargeLoop ends the session with PowerDelivery(Stop) and
SessionStop(Terminate). `rig evse` answers SDP on IF and serves N sessions in turn (0: until
interrupted) as an emulated charger (LabCharger, a rig.v2g.reference.BenchCharger).

Both print a one-screen summary (messages, response codes other than OK, timing min / median /
max per message type, how each session ended) and write into OUT:
- trace.jsonl: the host's records (rig.v2g.host.HostRecord.as_dict), one JSON object per line,
  written as they come (a crash keeps what was recorded);
- keylog.txt: the TLS key log (NSS format; empty without TLS);
- v2g.pcapng: a live capture of IF when running as root and the interface allows, otherwise
  frames synthesized from the real connection's addresses and bytes with wall timestamps
  (rig.v2g.capture.TappedLink; SDP datagrams from the host's records); with TLS the key log is
  also put into the file (inject_tls_keys), so Wireshark decrypts it as is.

Exit codes: 0 when every session ended with a normal SessionStop (Terminate or Pause) - also
after Ctrl-C, if the session then ended that way; 1 when a session ended otherwise (FAILED
code, timeout, lost connection, no charger found); 2 on bad options, an unknown interface, a port
in use, an unusable PKI or output folder (a one-line error, nothing run); 130 when interrupted
before the sessions asked for were over. Ctrl-C, SIGTERM and SIGHUP end the session safely: the
EV stops at its next ChargeLoop (PowerDelivery(Stop), SessionStop); the charger sends
EVSENotification Terminate, which the EV answers the same way; outside the ChargeLoop, or when
no SessionStop follows within STOP_GRACE seconds, or at a second signal, the link is closed and
both controllers go safe. The summary and the files are written in every case.

rig.cli wires ``rig ev`` / ``rig evse`` to main_ev(argv) / main_evse(argv);
``python -m rig.standalone ev|evse ...`` does the same.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, TextIO

from rig.clock import RealClock, VirtualClock
from rig.outdir import OutputError, OutputFolder, new_run_folder
from rig.v2g.capture import (
    CaptureWriter,
    LiveCapture,
    TappedLink,
    inject_tls_keys,
    live_filter,
    live_interface,
)
from rig.v2g.connection import Connection, RecordKind
from rig.v2g.controllers import (
    AcLoopRequest,
    AcLoopStatus,
    ChargeProgress,
    DcLoopRequest,
    DcLoopStatus,
    EvIntent,
    EvseNotice,
    Notification,
    ServiceOffer,
)
from rig.v2g.engine import Engine
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.exi import to_json
from rig.v2g.host import (
    EvccHost,
    HostEvent,
    HostRecord,
    SdpTarget,
    SeccHost,
    SessionResult,
    TcpEndpoints,
    evcc_tls_config,
    secc_tls_config,
)
from rig.v2g.link import ByteLink
from rig.v2g.netif import InterfaceError, interface_index, link_local_address
from rig.v2g.pki import PkiError, PkiFolder
from rig.v2g.reference import BatteryEv, BenchCharger, default_parameter_sets
from rig.v2g.sdp import SDP_PORT, SeccEndpoint
from rig.v2g.secc import Secc, SeccConfig
from rig.v2g.sessions import PausedSession, SessionStore
from rig.v2g.timing import EvccTiming
from rig.v2g.transport.memory import memory_pair
from rig.v2g.transport.tls import TlsConfig
from rig.v2g.vocabulary import SESSION_SERVICES, ControlMode, Service, SessionPhase

#: Seconds the loop runs between looks at signals and at the hosts (rig's choice: short enough
#: that Ctrl-C feels immediate, long enough to cost nothing).
SLICE = 0.05
#: Seconds a session has, after Ctrl-C or SIGTERM, to end with SessionStop before its link is
#: closed (rig's choice: a DC stop is PowerDelivery, two or three WeldingDetection, SessionStop).
STOP_GRACE = 10.0
#: NotificationMaxDelay of the Terminate the charger sends when stopped (rig's choice).
TERMINATE_MAX_DELAY = 5.0
#: --realtime: the SCHED_FIFO priority of the tool's loop (rig's choice: above every normal
#: task, so that a request wakes the SECC at once on a busy machine; below the kernel's own
#: real-time threads, which run at 50). Measured in tests/benchmarks/test_realtime_floors.py.
REALTIME_PRIORITY = 10
#: Seconds the loop runs after the hosts finished, so that closing links flush and a live
#: capture sees the last segments.
SETTLE = 0.3

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

TRACE_FILE = "trace.jsonl"
KEYLOG_FILE = "keylog.txt"
PCAP_FILE = "v2g.pcapng"

Role = Literal["ev", "evse"]


class BadInput(Exception):
    """An option, interface, port, PKI or folder the tool cannot use: one line, exit 2."""


# --- the emulated physical sides ---------------------------------------------------------------


@dataclass
class LabEv(BatteryEv):
    """The EV of `rig ev`: a BatteryEv that asks for discharge and ends after a while.

    `discharge_power` (W, > 0) asks the charger to take that much: in Scheduled mode the EV sets
    it as its (negative) target current and power profile; in Dynamic mode, where the charger
    steers, the EV offers no charging and sets both its maximum and its minimum discharge power
    to it (so a charger that honours the EV's limits discharges exactly that much). At or below
    the reserve SoC nothing is asked. `duration` ends the session normally after that many
    seconds of ChargeLoop; request_stop() does so at the next ChargeLoop. Only the latest loop
    status is kept, so an hours-long session holds no growing lists.
    """

    discharge_power: float = 0.0
    duration: float | None = None
    stop_requested: bool = False
    charge_loop_started: float | None = None

    def __post_init__(self) -> None:
        if self.discharge_power < 0:
            raise ValueError("discharge_power is a magnitude (W >= 0)")
        if self.discharge_power > 0:
            self.max_discharge_power = -self.discharge_power
            self.start_discharging = True

    def request_stop(self) -> None:
        self.stop_requested = True

    def _asking_discharge(self, bidirectional: bool) -> bool:
        return self.discharge_power > 0 and bidirectional and self.soc > self.reserve_soc

    def dc_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> DcLoopRequest:
        request = super().dc_loop_request(control_mode, bidirectional, now)
        if request.limits is not None and self._asking_discharge(bidirectional):
            limits = dataclasses.replace(
                request.limits,
                max_charge_power=0.0,
                min_discharge_power=-self.discharge_power,
            )
            request = dataclasses.replace(request, limits=limits)
        return request

    def ac_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> AcLoopRequest:
        request = super().ac_loop_request(control_mode, bidirectional, now)
        if control_mode is ControlMode.DYNAMIC and self._asking_discharge(bidirectional):
            request = dataclasses.replace(
                request, max_charge_power=0.0, min_discharge_power=-self.discharge_power
            )
        return request

    def power_delivery_done(self, progress: ChargeProgress, now: float) -> None:
        super().power_delivery_done(progress, now)
        if progress is ChargeProgress.START and self.charge_loop_started is None:
            self.charge_loop_started = now

    def intent(self, now: float) -> EvIntent:
        if self.stop_requested:
            return EvIntent.STOP
        started = self.charge_loop_started
        if self.duration is not None and started is not None and now - started >= self.duration:
            return EvIntent.STOP
        return EvIntent.CHARGE

    def dc_status(self, status: DcLoopStatus, now: float) -> None:
        super().dc_status(status, now)
        del self.dc_statuses[:-1]

    def ac_status(self, status: AcLoopStatus, now: float) -> None:
        super().ac_status(status, now)
        del self.ac_statuses[:-1]


@dataclass
class LabCharger(BenchCharger):
    """The charger of `rig evse`: a BenchCharger whose Dynamic-mode power is its `setpoint`
    within the EV's limits, taking at least the EV's minimum discharge power when the EV asks
    for one (LabEv's --discharge-kw). Keeps no growing per-loop lists."""

    def dc_charge_loop(self, request: DcLoopRequest, now: float) -> DcLoopStatus:
        setpoint = self.setpoint
        ev = request.limits
        if ev is not None and ev.min_discharge_power is not None and ev.min_discharge_power < 0:
            self.setpoint = min(setpoint, ev.min_discharge_power)
        try:
            return super().dc_charge_loop(request, now)
        finally:
            self.setpoint = setpoint
            del self.dc_requests[:-1]

    def ac_charge_loop(self, request: AcLoopRequest, now: float) -> AcLoopStatus:
        setpoint = self.setpoint
        floor = request.min_discharge_power
        if floor is not None and floor < 0:
            self.setpoint = min(setpoint, floor)
        try:
            return super().ac_charge_loop(request, now)
        finally:
            self.setpoint = setpoint
            del self.ac_requests[:-1]

    def request_stop(self) -> None:
        """Ask the EV to end the session (EVSENotification Terminate in the next ChargeLoopRes)."""
        self.notify(EvseNotice(Notification.TERMINATE, TERMINATE_MAX_DELAY))


# --- output: the trace, the key log, the capture ----------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class TraceFile:
    """OUT/trace.jsonl: one JSON object per line, each written whole and flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = 0
        self._file: TextIO | None = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, obj: dict[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps(obj, separators=(",", ":"), default=_json_default)
        self._file.write(line + "\n")  # line-buffered: the whole line reaches the file now
        self.records += 1

    def __call__(self, record: HostRecord) -> None:
        self.write(record.as_dict())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _new_secret_file(path: Path) -> None:
    """An empty file, born 0600 (a TLS key log holds session secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


def _ipv6_text(address: str) -> str:
    """The capture file's frames are IPv6: an IPv4 address is written IPv4-mapped."""
    return address if ":" in address else f"::ffff:{address}"


#: The hidden subcommand of `python -m rig.standalone` that runs a live capture for a tool.
CAPTURE_COMMAND = "_capture"
#: Seconds the capture process has to open its packet socket (scapy's import is most of it).
CAPTURE_START_TIMEOUT = 30.0


class LiveCaptureProcess:
    """rig.v2g.capture.LiveCapture of one interface in a child process, writing the pcapng.

    A child of its own because the sniffer runs a Python callback per frame (scapy) on a thread:
    in the tool's process it holds the GIL while the session waits to be served (measured here:
    the SECC's ChargeLoop processing p99 rose from 0.3 ms to 2-5 ms). The child ignores Ctrl-C
    (the parent ends the session first, and the capture should see that end) and stops when its
    stdin closes or on SIGTERM; it dies with the parent's pipe if the parent is killed.
    """

    def __init__(self, interface: str, path: Path, epoch_ns: int) -> None:
        self.interface = interface
        self.frames = 0
        self.filter_mode = ""
        self.stopped_line = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        argv = [sys.executable, "-m", "rig.standalone", CAPTURE_COMMAND, interface]
        self._popen = subprocess.Popen(
            [*argv, str(path), str(epoch_ns)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, name="capture-output", daemon=True).start()
        line = self._line(CAPTURE_START_TIMEOUT)
        if line is None or not line.startswith("started "):
            self.stop()
            raise RuntimeError(
                line.removeprefix("failed ") if line else "the capture process did not start"
            )
        self.filter_mode = line.split(" ", 1)[1]

    def _pump(self) -> None:
        assert self._popen.stdout is not None
        for raw in self._popen.stdout:
            self._lines.put(raw.rstrip("\n"))
        self._lines.put(None)

    def _line(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        """End the capture; the file is whole once this returns."""
        popen = self._popen
        if popen.stdin is not None and not popen.stdin.closed:
            with contextlib.suppress(OSError):
                popen.stdin.close()
        try:
            popen.wait(10.0)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5.0)
        while (line := self._line(1.0)) is not None:
            if line.startswith("stopped "):
                self.stopped_line = line
                with contextlib.suppress(ValueError, IndexError):
                    self.frames = int(line.split()[1])


def _capture_main(argv: Sequence[str]) -> int:
    """The capture process (see LiveCaptureProcess): INTERFACE PATH EPOCH_NS."""
    interface, path, epoch = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bpf = live_filter((), sdp=True)
    writer = CaptureWriter(path, epoch_ns=int(epoch), interface=live_interface(interface, bpf))
    live = LiveCapture(writer, interface, sdp=True)
    try:
        live.start()
    except Exception as exc:  # no packet socket, an interface scapy cannot open, ...
        writer.close()
        print(f"failed {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"started {live.filter_mode}", flush=True)

    def until_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_eof, daemon=True).start()
    while not stop.wait(0.5):
        pass
    live.stop()
    writer.close()
    print(f"stopped {live.frames} frames, {len(live.errors)} errors", flush=True)
    return 0


class CaptureSink:
    """OUT/v2g.pcapng: a live capture of the interface, or frames synthesized from the host."""

    def __init__(
        self, path: Path, epoch_ns: int, now: Callable[[], float], live: str | None = None
    ) -> None:
        self.path = path
        self._now = now
        self.mode = "synthesized"
        self.note = ""
        self.live: LiveCaptureProcess | None = None
        self.writer: CaptureWriter | None = None
        self._taps: list[TappedLink] = []
        self._sdp_local: tuple[str, int] | None = None
        if live is not None:
            if os.geteuid() != 0:
                self.note = "live capture needs root: frames synthesized from the connection"
            else:
                try:
                    self.live = LiveCaptureProcess(live, path, epoch_ns)
                except (OSError, RuntimeError) as exc:
                    self.note = f"live capture of {live} not possible ({exc}); frames synthesized"
                else:
                    self.mode = "live"
                    self.note = f"live capture of {live} ({self.live.filter_mode} filter)"
                    return
        self.writer = CaptureWriter(path, epoch_ns=epoch_ns)

    @property
    def frames(self) -> int:
        if self.live is not None:
            return self.live.frames
        return self.writer.packets_written if self.writer is not None else 0

    def tap(self, link: ByteLink, ends: TcpEndpoints) -> ByteLink:
        if self.writer is None:
            return link  # the interface is sniffed: nothing to synthesize
        local = (_ipv6_text(ends.local[0]), ends.local[1])
        peer = (_ipv6_text(ends.peer[0]), ends.peer[1])
        client, server = (local, peer) if ends.local_is_client else (peer, local)
        tapped = TappedLink(
            link,
            self.writer.tcp_session(client, server),
            self._now,
            local_is_client=ends.local_is_client,
        )
        self._taps.append(tapped)
        return tapped

    def on_record(self, record: HostRecord, secc_address: str | None = None) -> None:
        """SDP datagrams from the host's records (synthesized mode only)."""
        if self.writer is None or record.record.kind is not RecordKind.EVENT:
            return
        name, data, t = record.record.name, record.record.data or {}, record.record.time
        try:
            if name == HostEvent.SDP_REQUEST and data.get("local_address"):
                self._sdp_local = (str(data["local_address"]), int(data["local_port"]))
                exchange = self.writer.sdp(self._sdp_local, (self._sdp_local[0], SDP_PORT))
                exchange.request(t, bytes.fromhex(data["hex"]))
            elif name == HostEvent.SDP_REPLY and self._sdp_local and data.get("source_address"):
                secc = (str(data["source_address"]), int(data["source_port"]))
                self.writer.sdp(self._sdp_local, secc).response(t, bytes.fromhex(data["hex"]))
            elif name == HostEvent.SDP_SERVED and secc_address and data.get("source_address"):
                ev = (str(data["source_address"]), int(data["source_port"]))
                exchange = self.writer.sdp(ev, (secc_address, SDP_PORT))
                exchange.request(t, bytes.fromhex(data["hex"]))
                if data.get("response_hex"):
                    exchange.response(t, bytes.fromhex(data["response_hex"]))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self.note = (self.note + "; " if self.note else "") + f"SDP not captured: {exc}"

    def close(self, key_log: str) -> None:
        if self.live is not None:
            self.live.stop()
        if self.writer is not None:
            self.writer.close()
        errors = [t.capture_error for t in self._taps if t.capture_error is not None]
        if errors:
            self.note = (self.note + "; " if self.note else "") + f"capture error: {errors[0]}"
        if key_log.strip():
            # Wireshark decrypts a TLS 1.3 session only with the secrets before its packets.
            inject_tls_keys(self.path, key_log)


# --- the summary --------------------------------------------------------------------------------


class Summary:
    """Messages, response codes other than OK, per-message timing and how sessions ended, built
    from the host's records as they come (the durations are kept; a float per exchange)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.sent = 0
        self.received = 0
        self.codes: Counter[tuple[str, str]] = Counter()
        self.timing: dict[str, list[float]] = {}
        self.results: list[SessionResult] = []
        self.sdp_tries = 0
        self.secc: str | None = None
        self.tls: str | None = None
        self.refused = 0
        self._pending: dict[int, tuple[str, float]] = {}

    def __call__(self, record: HostRecord) -> None:
        rec = record.record
        kind = rec.kind
        if kind is RecordKind.SENT or kind is RecordKind.RECEIVED:
            outgoing = kind is RecordKind.SENT
            if outgoing:
                self.sent += 1
            else:
                self.received += 1
            name = rec.name
            # EV: request sent -> response received; EVSE: request received -> response sent
            request_side = outgoing if self.role == "ev" else not outgoing
            if name.endswith("Req") and request_side:
                self._pending[record.connection] = (name[:-3], rec.time)
            elif name.endswith("Res"):
                pending = self._pending.pop(record.connection, None)
                if pending is not None and pending[0] == name[:-3]:
                    self.timing.setdefault(pending[0], []).append(rec.time - pending[1])
                code = _response_code(rec.data, name)
                if code is not None and not code.startswith("OK"):
                    self.codes[(name, code)] += 1
        elif kind is RecordKind.EVENT:
            data = rec.data or {}
            if rec.name == HostEvent.SDP_REQUEST:
                self.sdp_tries += 1
            elif rec.name == HostEvent.SECC_FOUND:
                self.secc = f"{data.get('address')} port {data.get('port')} ({data.get('how')})"
            elif rec.name == HostEvent.TLS_ESTABLISHED:
                self.tls = f"{data.get('version')} {data.get('cipher_suite')}"
            elif rec.name == HostEvent.CONNECTION_REFUSED:
                self.refused += 1

    def render(self, title: str, files: str, verdict: str) -> str:
        lines = [title]
        if self.role == "ev" and self.secc is not None:
            tries = f", {self.sdp_tries} SDP request(s)" if self.sdp_tries else ""
            lines.append(f"SECC: {self.secc}{tries}")
        lines.append(f"TLS: {self.tls}" if self.tls else "TLS: none")
        if not self.results:
            lines.append("sessions: none")
        for r in self.results:
            how = r.closure.value if r.closure is not None else "no session"
            normal = "normal SessionStop" if r.normal else "NOT a normal SessionStop"
            lines.append(
                f"session {r.connection}: {how} ({normal}): {_clip(r.reason, 100)}"
                f"  [{r.messages_sent} sent, {r.messages_received} received, "
                f"{r.ended - r.started:.1f} s{', resumed' if r.resumed else ''}]"
            )
        if self.refused:
            lines.append(f"connections refused during a session: {self.refused}")
        lines.append(f"messages: {self.sent} sent, {self.received} received")
        if self.codes:
            codes = ", ".join(f"{n} {c} x{k}" for (n, c), k in sorted(self.codes.items()))
            lines.append(f"response codes other than OK: {codes}")
        else:
            lines.append("response codes other than OK: none")
        if self.timing:
            what = (
                "request sent -> response received"
                if self.role == "ev"
                else "request received -> response sent"
            )
            lines.append(f"timing, {what} (ms):")
            lines.append(f"  {'message':<30} {'n':>6} {'min':>8} {'median':>8} {'max':>8}")
            for name, values in sorted(self.timing.items(), key=lambda kv: -len(kv[1])):
                lines.append(
                    f"  {name:<30} {len(values):>6} {min(values) * 1e3:>8.2f} "
                    f"{statistics.median(values) * 1e3:>8.2f} {max(values) * 1e3:>8.2f}"
                )
        lines.append(files)
        lines.append(verdict)
        return "\n".join(lines)


def _response_code(data: Any, name: str) -> str | None:
    if isinstance(data, dict):
        body = data.get(name)
        if isinstance(body, dict):
            code = body.get("ResponseCode")
            if isinstance(code, str):
                return code
    return None


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- options ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (BadInput) instead of usage and exit."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(message)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of 0..65535")
    return value


def _percent(text: str) -> float:
    value = _non_negative(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"{text} is over 100 %")
    return value


def _common_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--iface", metavar="IF", help="the charging interface (SDP, link-local)")
    where.add_argument("--host", metavar="ADDR", help="an address (no SDP): ::1, fe80::1%%eth0")
    security = parser.add_mutually_exclusive_group()
    security.add_argument("--tls", action="store_true", help="TLS 1.3, mutual authentication")
    security.add_argument("--no-tls", action="store_true", help="plain TCP (the default)")
    parser.add_argument("--pki", metavar="DIR", type=Path, help="test PKI (rig pki init DIR)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="output folder")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run the session at real-time priority (SCHED_FIFO; root or CAP_SYS_NICE)",
    )


def _ev_parser() -> _Parser:
    parser = _Parser(
        prog="rig ev",
        description="Run one ISO 15118-20 session as the EV against a charger.",
    )
    _common_options(parser)
    parser.add_argument("--port", type=_port, help="the SECC's TCP port (with --host)")
    parser.add_argument(
        "--service", choices=[s.value for s in SESSION_SERVICES], default=Service.DC_BPT.value
    )
    parser.add_argument("--control-mode", choices=[m.value for m in ControlMode], default="dynamic")
    parser.add_argument(
        "--discharge-kw", type=_positive, metavar="KW", help="ask the charger to take KW"
    )
    parser.add_argument(
        "--duration", type=_positive, metavar="S", help="end normally after S s of ChargeLoop"
    )
    parser.add_argument("--soc", type=_percent, default=50.0, help="initial SoC, %% (50)")
    parser.add_argument("--reserve", type=_percent, default=30.0, help="V2X reserve, %% (30)")
    parser.add_argument(
        "--loop-interval",
        type=_non_negative,
        default=EvccTiming().charge_loop_interval,
        metavar="S",
        help="seconds between ChargeLoop requests (0.25)",
    )
    return parser


def _evse_parser() -> _Parser:
    parser = _Parser(
        prog="rig evse",
        description="Answer SDP and serve ISO 15118-20 sessions as a charger.",
    )
    _common_options(parser)
    parser.add_argument("--port", type=_port, default=0, help="TCP port (0: the kernel picks)")
    parser.add_argument(
        "--services",
        default=",".join(s.value for s in SESSION_SERVICES),
        metavar="LIST",
        help="energy services offered, comma-separated (DC_BPT,DC,AC_BPT,AC)",
    )
    parser.add_argument(
        "--sessions", type=int, default=1, metavar="N", help="sessions to serve (0: until stopped)"
    )
    parser.add_argument(
        "--setpoint-kw",
        type=float,
        default=11.0,
        metavar="KW",
        help="Dynamic mode: power the charger steers to (+ charge, - discharge; 11)",
    )
    return parser


@dataclass(frozen=True)
class _Common:
    interface: str | None
    host: str | None
    tls: TlsConfig | None
    pki: PkiFolder | None
    out: Path


def _go_realtime() -> str:
    """This thread (the one serving the loop) at SCHED_FIFO REALTIME_PRIORITY; processes it
    starts do not inherit it (SCHED_RESET_ON_FORK). BadInput where not permitted."""
    try:
        os.sched_setscheduler(
            0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(REALTIME_PRIORITY)
        )
    except (OSError, AttributeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BadInput(f"--realtime: {why} (needs root or CAP_SYS_NICE)") from None
    return f"SCHED_FIFO {REALTIME_PRIORITY}"


def _check_common(args: argparse.Namespace) -> None:
    if args.tls and args.pki is None:
        raise BadInput("--tls needs --pki DIR (a test PKI: rig pki init DIR)")
    if args.pki is not None and not args.tls:
        raise BadInput("--pki is for --tls")
    if args.iface is not None:
        try:
            interface_index(args.iface)
        except InterfaceError as exc:
            raise BadInput(str(exc)) from None


def _pki(args: argparse.Namespace) -> PkiFolder | None:
    if not args.tls:
        return None
    try:
        return PkiFolder(args.pki)
    except PkiError as exc:
        raise BadInput(f"--pki: {exc}") from None


def _services(text: str) -> tuple[Service, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadInput("--services: name at least one of DC_BPT, DC, AC_BPT, AC")
    out: list[Service] = []
    for name in names:
        try:
            service = Service(name.upper())
        except ValueError:
            raise BadInput(
                f"--services: unknown service {name!r} (DC_BPT, DC, AC_BPT, AC)"
            ) from None
        if service not in SESSION_SERVICES:
            raise BadInput(f"--services: {service} is not a service the rig runs sessions of")
        if service not in out:
            out.append(service)
    return tuple(out)


# --- running ------------------------------------------------------------------------------------


def warm_up(pairs: Sequence[tuple[Service, ControlMode]]) -> None:
    """One whole session per (service, mode) between our own engines in virtual time, so that
    the EXI grammars (loaded lazily on first use) are ready before the first real message."""
    for service, mode in pairs:
        clock = VirtualClock()
        ev_link, evse_link = memory_pair(clock, latency=0.001)
        ev = BatteryEv(intents=deque([EvIntent.STOP]))
        # with a recorder and to_json, as a real session runs: the JSON forms warm up too
        Connection(
            Secc(BenchCharger()), evse_link, clock, recorder=_discard, to_json=to_json
        ).start()
        Connection(
            Evcc(ev, EvccConfig(services=(service,), control_mode=mode)),
            ev_link,
            clock,
            recorder=_discard,
            to_json=to_json,
        ).start()
        clock.run_until(120.0)


def _settle_heap() -> None:
    """Everything made so far (modules, grammars, the warm-up's caches) lives for the whole run:
    move it out of the collector's way, so that a full collection during a session walks only
    what the session made (a pause there is a late response)."""
    gc.collect()
    gc.freeze()


def _discard(record: object) -> None:
    pass


class _Stopper:
    """Signals counted inside the loop (add_signal_handler): never raised into a callback."""

    def __init__(self, loop_owner: RealClock) -> None:
        self.count = 0
        self.name = ""
        self._loop = loop_owner.loop
        self._installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                self._loop.add_signal_handler(sig, self._hit, sig)
                self._installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                pass

    def _hit(self, sig: int) -> None:
        self.count += 1
        self.name = signal.Signals(sig).name

    def remove(self) -> None:
        for sig in self._installed:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(sig)
        self._installed.clear()


@dataclass
class _Outputs:
    folder: Path
    trace: TraceFile
    keylog: Path
    capture: CaptureSink
    lock: OutputFolder | None = None
    closed: bool = field(default=False)

    def close(self) -> str:
        """Close everything; a one-line description of the files."""
        if not self.closed:
            self.closed = True
            self.trace.close()
            key_log = self.keylog.read_text(encoding="ascii", errors="replace")
            try:
                self.capture.close(key_log)
            except (OSError, ValueError) as exc:
                self.capture.note = f"capture file could not be finished: {exc}"
            if self.lock is not None:
                self.lock.close()
        lines = self.keylog.read_text(encoding="ascii", errors="replace").count("\n")
        note = f"; {self.capture.note}" if self.capture.note else ""
        return (
            f"out: {self.folder}  ({TRACE_FILE}: {self.trace.records} records; "
            f"{KEYLOG_FILE}: {lines} lines; {PCAP_FILE}: {self.capture.mode}, "
            f"{self.capture.frames} frames{note})"
        )


def _open_outputs(out: Path | None, role: Role, clock: RealClock, live: str | None) -> _Outputs:
    try:
        if out is None:
            folder = new_run_folder(Path("reports"), role)
            lock = OutputFolder(folder)
        else:
            folder, lock = out, OutputFolder(out)
        lock.open()
    except OutputError as exc:
        raise BadInput(str(exc)) from None
    try:
        # Wall time at the clock's t = 0: the capture's timestamps (rig.clock reads no wall time).
        epoch_ns = time.time_ns() - round(clock.now() * 1e9)
        trace = TraceFile(folder / TRACE_FILE)
        keylog = folder / KEYLOG_FILE
        _new_secret_file(keylog)
        capture = CaptureSink(folder / PCAP_FILE, epoch_ns, clock.now, live)
    except OSError as exc:
        lock.close()
        raise BadInput(f"output folder {folder}: {exc.strerror or exc}") from None
    trace.write(
        {
            "kind": "header",
            "tool": f"rig {role}",
            "wall_time_at_t0": epoch_ns / 1e9,
            "pid": os.getpid(),
        }
    )
    return _Outputs(folder, trace, keylog, capture, lock)


def _serve(
    clock: RealClock,
    finished: Callable[[], bool],
    stopper: _Stopper,
    on_first_signal: Callable[[], None],
    on_give_up: Callable[[str], None],
) -> bool:
    """Run the loop until `finished()`; True if a signal came. The first signal asks for an
    orderly end; STOP_GRACE later, or at a second signal, `on_give_up` closes the link."""
    signals_seen = 0
    deadline: float | None = None
    while not finished():
        clock.run_until(clock.now() + SLICE)
        if stopper.count > signals_seen:
            if signals_seen == 0:
                print(f"{stopper.name}: ending the session", file=sys.stderr, flush=True)
                on_first_signal()
                deadline = clock.now() + STOP_GRACE
            if stopper.count >= 2:
                on_give_up(f"interrupted ({stopper.name}, twice)")
            signals_seen = stopper.count
        if deadline is not None and clock.now() > deadline and not finished():
            on_give_up(f"interrupted ({stopper.name}): no SessionStop within {STOP_GRACE} s")
            deadline = None
    settle = clock.now() + SETTLE
    clock.run_until(settle)
    return signals_seen > 0


def main_ev(argv: Sequence[str] | None = None) -> int:
    """`rig ev`: one session as the EV (see the module docstring); the exit code."""
    try:
        args = _ev_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        _check_common(args)
        if args.host is not None and args.port is None:
            raise BadInput("--host needs --port (the SECC's TCP port)")
        if args.iface is not None and args.port is not None:
            raise BadInput("--port is for --host (with --iface, SDP gives the port)")
        service = Service(args.service)
        mode = ControlMode(args.control_mode)
        if args.discharge_kw is not None and not service.bidirectional:
            raise BadInput(f"--discharge-kw needs a bidirectional service, not {service}")
        if args.reserve >= 100:
            raise BadInput("--reserve must be below 100 %")
        target: SeccEndpoint | SdpTarget
        if args.iface is not None:
            target = SdpTarget(args.iface)
        else:
            try:
                target = SeccEndpoint.parse(args.host, args.port)
                if target.interface is not None:
                    interface_index(target.interface)
            except ValueError:
                raise BadInput(f"--host: not an IP address: {args.host!r}") from None
            except InterfaceError as exc:
                raise BadInput(str(exc)) from None
        pki = _pki(args)
        args.priority = _go_realtime() if args.realtime else "normal priority"
    except BadInput as exc:
        print(f"rig ev: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    clock = RealClock()
    try:
        try:
            outputs = _open_outputs(args.out, "ev", clock, args.iface)
        except BadInput as exc:
            print(f"rig ev: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        origin = time.time() - clock.now()  # header TimeStamp = Unix time [schema: TimeStamp]
        tls = evcc_tls_config(pki, key_log=outputs.keylog) if pki is not None else None
        battery = LabEv(
            soc=args.soc,
            reserve_soc=args.reserve,
            discharge_power=(args.discharge_kw or 0.0) * 1e3,
            duration=args.duration,
        )
        config = EvccConfig(
            services=(service,),
            control_mode=mode,
            timestamp_origin=origin,
            timing=EvccTiming(charge_loop_interval=args.loop_interval),
        )

        def make_engine(resume: PausedSession | None) -> Engine | None:
            return Evcc(battery, config, resume=resume)

        return _run_ev(clock, outputs, make_engine, target, tls, battery, service, mode, args)
    finally:
        clock.close()


def _fan_out(*sinks: Callable[[HostRecord], None]) -> Callable[[HostRecord], None]:
    def record(rec: HostRecord) -> None:
        for sink in sinks:
            sink(rec)

    return record


def _run_ev(
    clock: RealClock,
    outputs: _Outputs,
    make_engine: Callable[[PausedSession | None], Engine | None],
    target: SeccEndpoint | SdpTarget,
    tls: TlsConfig | None,
    battery: LabEv,
    service: Service,
    mode: ControlMode,
    args: argparse.Namespace,
) -> int:
    summary = Summary("ev")
    stopper = _Stopper(clock)
    verdict = "result: not run"
    code = EXIT_FAILED
    try:
        warm_up([(service, mode)])
        _settle_heap()
        host = EvccHost(
            clock.loop,
            clock,
            make_engine,
            target=target,
            tls=tls,
            recorder=_fan_out(outputs.trace, summary, outputs.capture.on_record),
            to_json=to_json,
            tap=outputs.capture.tap,
            on_session_end=summary.results.append,
        )
        host.start()
        where = f"SDP on {args.iface}" if args.iface else f"{args.host} port {args.port}"
        print(
            f"rig ev: {service} {mode}, {'TLS' if tls else 'no TLS'}, {where}, "
            f"{args.priority}; out {outputs.folder}",
            flush=True,
        )

        def orderly() -> None:
            engine = host.engine
            phase = getattr(engine, "phase", None)
            if phase in (SessionPhase.CHARGE_LOOP, SessionPhase.STANDBY):
                battery.request_stop()  # PowerDelivery(Stop) at the next ChargeLoop
            elif phase is not SessionPhase.STOPPING:
                host.close(f"interrupted ({stopper.name}) in phase {phase}")

        interrupted = _serve(clock, lambda: host.finished, stopper, orderly, host.close)
        results = summary.results
        normal = bool(results) and all(r.normal for r in results)
        if normal:
            code, verdict = EXIT_OK, "result: OK, the session ended with SessionStop"
        elif interrupted:
            code, verdict = EXIT_INTERRUPTED, "result: interrupted"
        else:
            code, verdict = EXIT_FAILED, "result: FAILED, no normal SessionStop"
    except Exception as exc:  # a bug: still write what there is
        verdict = f"result: ERROR {type(exc).__name__}: {exc}"
        code = EXIT_FAILED
    finally:
        stopper.remove()
        files = outputs.close()
    title = f"rig ev: {service} {mode}" + (
        f", asking {args.discharge_kw} kW discharge" if args.discharge_kw else ""
    )
    print(summary.render(title, files, f"{verdict} (exit {code})"), flush=True)
    return code


def main_evse(argv: Sequence[str] | None = None) -> int:
    """`rig evse`: serve N sessions as the charger (see the module docstring); the exit code."""
    try:
        args = _evse_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        _check_common(args)
        services = _services(args.services)
        if args.sessions < 0:
            raise BadInput("--sessions must be >= 0 (0: until stopped)")
        if not math.isfinite(args.setpoint_kw):
            raise BadInput("--setpoint-kw must be a number")
        host_address: str | None = None
        interface: str | None = args.iface
        if args.host is not None:
            host_address, _, scope = args.host.partition("%")
            try:
                socket.inet_pton(
                    socket.AF_INET6 if ":" in host_address else socket.AF_INET, host_address
                )
            except OSError:
                raise BadInput(f"--host: not an IP address: {args.host!r}") from None
            if scope:
                interface = scope
                try:
                    interface_index(scope)
                except InterfaceError as exc:
                    raise BadInput(str(exc)) from None
        elif interface is not None:
            try:
                link_local_address(interface)
            except InterfaceError as exc:
                raise BadInput(str(exc)) from None
        pki = _pki(args)
        args.priority = _go_realtime() if args.realtime else "normal priority"
    except BadInput as exc:
        print(f"rig evse: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    clock = RealClock()
    try:
        charger = LabCharger(
            offers=tuple(ServiceOffer(s, default_parameter_sets(s)) for s in services),
            setpoint=args.setpoint_kw * 1e3,
        )
        store = SessionStore()
        origin = time.time() - clock.now()
        config = SeccConfig(timestamp_origin=origin)
        try:
            outputs = _open_outputs(args.out, "evse", clock, args.iface)
        except BadInput as exc:
            print(f"rig evse: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        tls = secc_tls_config(pki, key_log=outputs.keylog) if pki is not None else None
        summary = Summary("evse")
        secc_address: str | None = None

        def capture_record(rec: HostRecord) -> None:
            outputs.capture.on_record(rec, secc_address)

        record = _fan_out(outputs.trace, summary, capture_record)
        host = SeccHost(
            clock.loop,
            clock,
            lambda: Secc(charger, config, store=store),
            interface=interface,
            host=host_address,
            port=args.port,
            sdp=args.iface is not None,
            tls=tls,
            recorder=lambda rec: record(rec),
            to_json=to_json,
            tap=outputs.capture.tap,
            on_session_end=summary.results.append,
            max_sessions=args.sessions or None,
        )
        try:
            host.start()
        except OSError as exc:
            outputs.close()
            where = f"[{host_address or interface}]:{args.port}"
            print(f"rig evse: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        secc_address = host.address  # known once listening: SDP answers carry it
        return _run_evse(clock, outputs, host, charger, summary, services, tls, args)
    finally:
        clock.close()


def _run_evse(
    clock: RealClock,
    outputs: _Outputs,
    host: SeccHost,
    charger: LabCharger,
    summary: Summary,
    services: tuple[Service, ...],
    tls: TlsConfig | None,
    args: argparse.Namespace,
) -> int:
    stopper = _Stopper(clock)
    verdict = "result: not run"
    code = EXIT_FAILED
    try:
        warm_up([(s, m) for s in services for m in ControlMode])
        _settle_heap()
        where = f"[{host.address}{'%' + host.interface if host.interface else ''}]:{host.port}"
        print(
            f"rig evse: listening on {where}, {'TLS' if tls else 'no TLS'}"
            f"{', SDP' if host.sdp else ''}, {args.priority};"
            f" offering {','.join(s.value for s in services)};"
            f" out {outputs.folder}",
            flush=True,
        )

        def orderly() -> None:
            phase = getattr(host.active_engine, "phase", None)
            why = f"interrupted ({stopper.name})"
            if phase in (SessionPhase.CHARGE_LOOP, SessionPhase.STANDBY):
                charger.request_stop()  # EVSENotification Terminate in the next ChargeLoopRes
                host.drain(why)
            elif phase is SessionPhase.STOPPING:
                host.drain(why)  # SessionStop is on its way
            else:
                host.close(why if phase is None else f"{why} in phase {phase}")

        interrupted = _serve(clock, lambda: host.finished, stopper, orderly, host.close)
        results = summary.results
        all_normal = all(r.normal for r in results)
        served_all = args.sessions == 0 or len(results) >= args.sessions
        if results and all_normal and served_all:
            code, verdict = EXIT_OK, f"result: OK, {len(results)} session(s) ended with SessionStop"
        elif interrupted and all_normal:
            code, verdict = EXIT_INTERRUPTED, "result: interrupted"
        else:
            code, verdict = EXIT_FAILED, "result: FAILED, not every session ended with SessionStop"
    except Exception as exc:
        verdict = f"result: ERROR {type(exc).__name__}: {exc}"
        code = EXIT_FAILED
    finally:
        stopper.remove()
        files = outputs.close()
    title = f"rig evse: offering {','.join(s.value for s in services)}"
    print(summary.render(title, files, f"{verdict} (exit {code})"), flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rig.standalone ev|evse ...``."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == [CAPTURE_COMMAND] and len(words) == 4:
        return _capture_main(words[1:])
    if not words or words[0] not in ("ev", "evse"):
        print("usage: python -m rig.standalone ev|evse [options]", file=sys.stderr)
        return EXIT_BAD_INPUT
    return main_ev(words[1:]) if words[0] == "ev" else main_evse(words[1:])


if __name__ == "__main__":
    sys.exit(main())
