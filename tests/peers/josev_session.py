"""The iso15118 package (Josev) as a session peer: its -20 SECC or EVCC in a network namespace.

Two roles in one file:
- imported by tests (rig's .venv): JosevSession.start() runs one side inside one end of a veth
  pair (tests/netns.py), streams and keeps its log, recognises the messages it sends and
  receives, detects the end of the session (SessionStop) and stops it cleanly;
- run as a script under .venv-peer/bin/python (the "launcher"): starts Josev's SECC or EVCC
  the way its own `iso15118.secc.main` / `iso15118.evcc.main` do, plus the two choices its
  simulators do not offer (which energy service and control mode the EV picks; what the SECC
  offers). The rig's venv never imports iso15118.

Facts found by reading iso15118 0.31.2 (as installed by .ci/peer-setup) and running it here:

Running it
- Entry points: `python -m iso15118.secc.main` and `python -m iso15118.evcc.main [CONFIG]`; both
  `asyncio.run` a handler with the simulated controllers (SimEVSEController, SimEVController)
  and the Java codec (ExificientEXICodec: py4j starts a JVM on EXICodec.jar, ~1.5 s here;
  JavaGateway(die_on_exit=True), so the JVM ends with its Python).
- Settings come from environment variables, and from a `.env` file in the working directory if
  one exists (environs) - so we run it in a fresh directory of its own.
  Shared: LOG_LEVEL (default INFO; INFO is needed, the message log is at INFO), MESSAGE_LOG_JSON
  (default true: every message logged as JSON), MESSAGE_LOG_EXI, ENABLE_TLS_1_3, PKI_PATH.
  SECC: NETWORK_INTERFACE (default eth0), PROTOCOLS (default DIN_SPEC_70121, ISO_15118_2,
  ISO_15118_20_AC, ISO_15118_20_DC), AUTH_MODES (EIM, PNC), SECC_ENFORCE_TLS (false),
  FREE_CHARGING_SERVICE, FREE_CERT_INSTALL_SERVICE, ALLOW_CERT_INSTALL_SERVICE,
  USE_CPO_BACKEND, STANDBY_ALLOWED.
  EVCC: NETWORK_INTERFACE, EVCC_CONFIG_PATH (a JSON file; the default is a relative path into
  the source tree: always pass one), LOG_LEVEL. The JSON (EVCCConfig, pydantic aliases):
  supportedProtocols, supportedEnergyServices, useTls, enforceTls, sdpRetryCycles (default 1),
  chargeLoopCycle (ChargeLoop requests before stopping, default 10), chargeLoopDelay (s),
  isCertInstallNeeded, maxContractCerts, maxSupportingPoints, energyTransferMode (-2 only).
- The EVCC needs `aiofile` to read that JSON and the package does not declare it. Worse, when
  the import or the read fails, load_from_file() logs at DEBUG and returns the *default*
  config (AC, TLS, all protocols): the EV silently does something else. .ci/peer-setup
  installs aiofile; the launcher checks that the loaded config is the one asked for.
- Both sides need an IPv6 link-local address on the interface (psutil; the first one listed
  is used). The EVCC refuses to start without one (validate_nic).

Selecting -20, the service and the control mode
- -20 is chosen in supportedAppProtocol: PROTOCOLS=ISO_15118_20_DC (or _AC) on the SECC,
  supportedProtocols ["ISO_15118_20_DC"] in the EV's JSON. The lists go through a set(), so
  with several entries the priority order is not kept.
- The SECC simulator offers services [DC, DC_BPT] (or [AC, AC_BPT]) and, for each, parameter
  sets: (1) ControlMode Scheduled with MobilityNeedsMode 1, (2) Dynamic with MobilityNeedsMode
  2, (3) Dynamic with MobilityNeedsMode 1. The EV asks ServiceDetail only for the services in
  supportedEnergyServices, and its simulator takes the first matched service and its first
  parameter set: Scheduled, always. A comment in the simulator names an environment variable
  15118_20_PRIORITIZE_DYNAMIC_CONTROL_MODE to change that; the code does not read it. Dynamic
  therefore needs the launcher's EV controller, which picks the parameter set whose ControlMode
  is the one asked for.
- No TLS: useTls false in the EV's JSON makes the SDP request say 0x10; the SECC (with
  SECC_ENFORCE_TLS false) then starts a plain TCP server.

Network behaviour
- SDP: the SECC binds UDP [::]:15118 with SO_BINDTODEVICE and joins ff02::1 on the interface;
  the EVCC sends to ff02::1:15118 with IPV6_MULTICAST_IF, waits 0.25 s per request, at most 50
  requests per cycle (SDP_MAX_REQUEST_COUNTER), sdpRetryCycles cycles. The SECC starts its TCP
  server only when a request comes, on a random port in 49152..65535, bound to the interface's
  link-local address, and pauses its UDP server while a TCP client is connected.
- Message timeouts are Josev's own (iso15118.shared.messages.timeouts); the SECC waits for
  SupportedAppProtocolReq up to 20 s (V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT).
- After SessionStop both sides wait 2 s, then 3 s more before closing TCP (5 s, the -20
  [V2G20-1643] wait); the EVCC process then exits with code 0, the SECC stays up and answers
  SDP again. The harness stops both at SessionStop instead of waiting those 5 s.
- Speed: the first messages take 100-500 ms each (py4j calls into a cold JVM). The harness sets
  JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" (our choice, not Josev's): for a
  short run the quick C1 compiler alone halves the wall time (a DC_BPT dynamic session, 2
  ChargeLoops: ~11 s instead of ~22 s on this 2-core machine under load; ~6 s when idle).
- chargeLoopCycle N gives N+1 ChargeLoop requests. In dynamic mode the EV repeats
  PowerDeliveryReq(Start) with EVProcessing Ongoing a few times before the ChargeLoop. The AC
  SECC simulator logs ERROR lines ("Both Max Charge and Discharge power are set") in AC_BPT on
  every ChargeLoop; they do not affect the session.

Against the rig's own EVCC and SECC (tests/peers/test_interop_josev.py)
- Its EVCC refuses an SDP response whose TCP port is outside 49152..65535 (shared/messages/
  sdp.py, MIN_TCP_PORT: "The port ... does not match the mandatory UDP server port 15118",
  then an AttributeError in its own __repr__) and sends SDP requests until it gives up.
- Its simulated EVSE has no power stage: the present voltage is a constant 1 V (secc/
  controller/simulator.py, `evse_data_context.present_voltage = 1`) and send_charging_command
  does nothing, so its DC_PreChargeRes never reaches the EV's battery voltage. Josev's EV
  declares pre-charge done after 5 rounds whatever the voltage (evcc/controller/simulator.py,
  is_precharged); an EV that waits for the voltage never gets there. `power_stage` gives the
  SECC an ideal one (present voltage = the EV's target in pre-charge, present current = the
  EV's target current in the ChargeLoop).
- One SECC process serves sessions in turn (the EVCC's process exits after its session); its
  EVSE data is shared by them: a DC ChargeParameterDiscovery replaces the session limits
  (secc/controller/evse_data.py, update_dc_charge_parameters_v20), the AC ones are None
  afterwards and the next AC_ChargeLoopReq raises TypeError in get_ac_charge_loop_params_v20.
- TLS 1.3 (`tls`): ENABLE_TLS_1_3=true and PKI_PATH on both sides; with it the SECC still
  serves plain TCP to an EV whose SDP request says 0x10, TLS to one that says 0x00. Its client
  context is ssl.PROTOCOL_TLS with check_hostname off and the OEM chain (oemCertChain.pem,
  oemLeaf.key) as client certificate; the server requires the EV's certificate against
  oemRootCACert.pem; both restrict key exchange to prime256v1 (set_ecdh_curve).

Log lines the harness relies on (logger format "LEVEL    time - module (line): text"):
  "Message to encode (ns=<ns>): <json>" (outgoing) and "Decoded message (ns=<ns>): <json>"
  (incoming), from iso15118.shared.exi_codec; "<Name> received" and "Sent <Name>" from
  comm_session; "UDP server started at address FF02::1%<if>" (SECC ready);
  "Communication session handler started" (EVCC ready); "SDPResponse received".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the launcher runs in .venv-peer, without pytest or the rig
    from netns import NsProcess, VethPair

HERE = Path(__file__).resolve()
LAUNCH_MARK = "RIG-LAUNCHER"

# Wall-time bounds (seconds). JVM start ~1.5 s, a session 8-10 s here; room for a loaded CI.
READY_TIMEOUT_S = 60.0
SESSION_TIMEOUT_S = 120.0


class JosevRole(Enum):
    SECC = "secc"
    EVCC = "evcc"


# Names as in rig.v2g.vocabulary (kept as text here: the launcher runs without the rig).
SERVICES = ("AC", "DC", "AC_BPT", "DC_BPT")
CONTROL_MODES = {"scheduled": 1, "dynamic": 2}


@dataclass(frozen=True)
class JosevSettings:
    """What one Josev side should do."""

    role: JosevRole
    interface: str
    service: str = "DC_BPT"
    control_mode: str = "dynamic"
    #: EVCC: ChargeLoop requests before it stops (Josev's chargeLoopCycle).
    charge_loops: int = 3
    #: SECC: offer only `service` with `control_mode` (default: everything Josev offers).
    restrict_offer: bool = False
    extra_env: tuple[tuple[str, str], ...] = ()
    #: TLS 1.3 (ENABLE_TLS_1_3) with the certificates under PKI_PATH/iso15118_2/ (the layout
    #: `rig pki init DIR` writes to DIR/josev). EVCC: useTls and enforceTls; SECC: serves TLS to
    #: an EV whose SDP request asks for it, plain TCP to one that does not.
    tls: bool = False
    pki_path: Path | None = None
    #: SECC: the PROTOCOLS it offers (default: the one of `service`), e.g. both -20 namespaces
    #: so that one SECC process serves AC and DC sessions in turn.
    protocols: tuple[str, ...] | None = None
    #: SECC: an ideal power stage under Josev's simulated EVSE (see the module docstring).
    power_stage: bool = False

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"service {self.service!r} not one of {SERVICES}")
        if self.control_mode not in CONTROL_MODES:
            raise ValueError(f"control mode {self.control_mode!r} not one of {CONTROL_MODES}")

    @property
    def protocol(self) -> str:
        return "ISO_15118_20_DC" if "DC" in self.service else "ISO_15118_20_AC"

    def evcc_config(self) -> dict[str, Any]:
        return {
            "supportedProtocols": [self.protocol],
            "supportedEnergyServices": [self.service],
            "isCertInstallNeeded": False,
            "useTls": self.tls,
            "enforceTls": self.tls,
            "sdpRetryCycles": 1,
            "chargeLoopCycle": self.charge_loops,
        }

    def environment(self, workdir: Path) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NETWORK_INTERFACE": self.interface,
            "LOG_LEVEL": "INFO",
            "MESSAGE_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
            "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        }
        if "JAVA_HOME" in os.environ:
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        if self.tls or self.pki_path is not None:
            if self.pki_path is None:
                raise ValueError("JosevSettings: tls needs pki_path (rig pki init DIR: DIR/josev)")
            env["ENABLE_TLS_1_3"] = "true"
            env["PKI_PATH"] = str(self.pki_path)
        if self.role is JosevRole.SECC:
            env["PROTOCOLS"] = ",".join(self.protocols or (self.protocol,))
            env["AUTH_MODES"] = "EIM"
            env["SECC_ENFORCE_TLS"] = "false"
        else:
            env["EVCC_CONFIG_PATH"] = str(workdir / "evcc_config.json")
        env.update(self.extra_env)
        return env

    def launcher_argv(self, python: Path) -> list[str]:
        argv = [str(python), str(HERE), "launch", self.role.value]
        argv += ["--service", self.service, "--control-mode", self.control_mode]
        if self.restrict_offer:
            argv.append("--restrict-offer")
        if self.tls:
            argv.append("--tls")
        if self.power_stage:
            argv.append("--power-stage")
        return argv


# --- reading Josev's log ---------------------------------------------------------------------

_LOG_LINE = re.compile(r"^(?P<level>[A-Z]+)\s+\S+ \S+ - (?P<module>\S+) \(\d+\): (?P<text>.*)$")
_MESSAGE = re.compile(
    r"^(?P<what>Message to encode|Decoded message) \(ns=(?P<ns>[^)]*)\): (?P<json>\{.*\})$"
)


@dataclass(frozen=True)
class PeerMessage:
    """One V2G message the peer sent or received, as its log shows it (its JSON form)."""

    direction: str  # "sent" | "received"
    name: str
    namespace: str
    body: dict[str, Any]

    @property
    def response_code(self) -> str | None:
        code = self.body.get("ResponseCode")
        return code if isinstance(code, str) else None


def parse_messages(lines: list[str]) -> list[PeerMessage]:
    """The messages in a Josev log, in order (lines that do not parse are skipped)."""
    messages = []
    for line in lines:
        entry = _LOG_LINE.match(line)
        if entry is None:
            continue
        found = _MESSAGE.match(entry.group("text"))
        if found is None:
            continue
        try:
            document = json.loads(found.group("json"))
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or len(document) != 1:
            continue
        ((name, body),) = document.items()
        direction = "sent" if found.group("what") == "Message to encode" else "received"
        namespace = found.group("ns").rsplit(".", 1)[-1]
        messages.append(
            PeerMessage(direction, name, namespace, body if isinstance(body, dict) else {})
        )
    return messages


@dataclass(frozen=True)
class JosevOutcome:
    """How one Josev side's session went, from its log."""

    role: JosevRole
    session_stopped: bool  # SessionStop exchanged (EVCC: response received; SECC: sent)
    messages: tuple[PeerMessage, ...]
    exit_code: int | None
    log_path: Path | None
    wall_s: float
    log_tail: str = ""
    errors: tuple[str, ...] = field(default=())

    def names(self, direction: str) -> list[str]:
        return [m.name for m in self.messages if m.direction == direction]

    def failed_responses(self) -> list[tuple[str, str]]:
        """(message, code) for every response whose code does not start with OK."""
        return [
            (m.name, m.response_code)
            for m in self.messages
            if m.response_code is not None and not m.response_code.startswith("OK")
        ]


_READY = {
    JosevRole.SECC: r"UDP server started at address FF02::1%",
    JosevRole.EVCC: r"Communication session handler started",
}
_SESSION_STOPPED = {
    JosevRole.SECC: r" - iso15118\.shared\.comm_session \(\d+\): Sent SessionStopRes$",
    JosevRole.EVCC: r" - iso15118\.shared\.comm_session \(\d+\): SessionStopRes received$",
}


class JosevSession:
    """One Josev side running in a namespace (see the module docstring)."""

    def __init__(self, settings: JosevSettings, process: NsProcess, workdir: Path) -> None:
        self.settings = settings
        self.process = process
        self.workdir = workdir
        self.started_at = time.monotonic()

    @classmethod
    def start(
        cls,
        pair: VethPair,
        side: Literal["evse", "ev"],
        settings: JosevSettings,
        workdir: Path,
        peer_python: Path,
        echo: bool = False,
    ) -> JosevSession:
        """Start the side in its own working directory (no stray .env), output to its log."""
        workdir.mkdir(parents=True, exist_ok=True)
        if settings.role is JosevRole.EVCC:
            (workdir / "evcc_config.json").write_text(json.dumps(settings.evcc_config(), indent=2))
        process = pair.spawn(
            side,
            settings.launcher_argv(peer_python),
            name=f"josev-{settings.role.value}",
            env=settings.environment(workdir),
            cwd=workdir,
            echo=echo,
        )
        return cls(settings, process, workdir)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.process.wait_for(_READY[self.settings.role], timeout)

    def wait_session_end(self, timeout: float = SESSION_TIMEOUT_S) -> JosevOutcome:
        """Until SessionStop shows in the log (or the process ends, or `timeout`)."""
        # A timeout or an early exit is not an error here: the outcome says what happened.
        with contextlib.suppress(TimeoutError):
            self.process.wait_for(_SESSION_STOPPED[self.settings.role], timeout)
        return self.outcome()

    def outcome(self) -> JosevOutcome:
        lines = list(self.process.lines)
        stopped = any(re.search(_SESSION_STOPPED[self.settings.role], line) for line in lines)
        errors = tuple(line for line in lines if line.startswith(("ERROR", "CRITICAL")))
        return JosevOutcome(
            role=self.settings.role,
            session_stopped=stopped,
            messages=tuple(parse_messages(lines)),
            exit_code=self.process.returncode,
            log_path=self.process.log_path,
            wall_s=time.monotonic() - self.started_at,
            log_tail="\n".join(lines[-25:]),
            errors=errors,
        )

    def stop(self) -> int:
        """Ctrl-C first (Josev's run() catches KeyboardInterrupt), then harder; the log stays."""
        return int(self.process.stop(grace=3.0))


# --- the launcher (runs under .venv-peer/bin/python) -----------------------------------------


def _launch_secc(
    service: str, control_mode: int, restrict: bool, power_stage: bool = False
) -> None:
    import asyncio

    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.secc.secc_settings import Config
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.messages.enums import ServiceV20

    wanted = ServiceV20[service].id

    class OfferOnly(SimEVSEController):  # type: ignore[misc]
        """Josev's simulated EVSE offering only one service and one control mode."""

        async def get_energy_service_list(self) -> Any:
            services = await super().get_energy_service_list()
            services.services = [s for s in services.services if s.service_id == wanted]
            return services

        async def get_service_parameter_list(self, service_id: int) -> Any:
            parameters = await super().get_service_parameter_list(service_id)
            parameters.parameter_sets = [
                p
                for p in parameters.parameter_sets
                if any(
                    x.name == "ControlMode" and x.int_value == control_mode for x in p.parameters
                )
            ]
            return parameters

    class WithPowerStage(OfferOnly if restrict else SimEVSEController):  # type: ignore[misc]
        """An ideal power stage under Josev's simulated EVSE, whose own has none: its present
        voltage follows the EV's target in pre-charge, its present current the EV's target
        current in the ChargeLoop (what a real charger reports back)."""

        async def send_charging_command(
            self,
            ev_target_voltage: float | None,
            ev_target_current: float | None,
            is_precharge: bool = False,
            is_session_bpt: bool = False,
        ) -> None:
            data = self.evse_data_context
            if ev_target_voltage is not None:
                data.present_voltage = ev_target_voltage
            if not is_precharge and ev_target_current is not None:
                data.present_current = ev_target_current

    async def main() -> None:
        config = Config()
        config.load_envs()
        config.print_settings()
        kind = WithPowerStage if power_stage else OfferOnly if restrict else SimEVSEController
        controller = kind()
        await controller.set_status(ServiceStatus.STARTING)
        print(
            f"{LAUNCH_MARK} secc offer={'only ' + service if restrict else 'all'}"
            f" power_stage={power_stage}",
            flush=True,
        )
        await SECCHandler(
            exi_codec=ExificientEXICodec(), evse_controller=controller, config=config
        ).start(config.iface)

    asyncio.run(main())


def _launch_evcc(service: str, control_mode: int, tls: bool = False) -> None:
    import asyncio

    import aiofile  # noqa: F401  (without it the EV's JSON is silently ignored; fail here)
    from iso15118.evcc import Config, EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import load_from_file
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.messages.enums import ServiceV20
    from iso15118.shared.messages.iso15118_20.common_messages import SelectedEnergyService

    wanted = ServiceV20[service]

    class Chooser(SimEVController):  # type: ignore[misc]
        """Josev's simulated EV choosing the service and control mode it was told to."""

        async def select_energy_service_v20(self, services: list[Any]) -> Any:
            for matched in services:
                if matched.service is not wanted:
                    continue
                for parameter_set in matched.parameter_sets:
                    modes = [
                        p.int_value for p in parameter_set.parameters if p.name == "ControlMode"
                    ]
                    if modes == [control_mode]:
                        print(
                            f"{LAUNCH_MARK} evcc chose {service} parameter set {parameter_set.id}",
                            flush=True,
                        )
                        return SelectedEnergyService(
                            service=matched.service,
                            is_free=matched.is_free,
                            parameter_set=parameter_set,
                        )
            offered = [(m.service.name, [p.id for p in m.parameter_sets]) for m in services]
            print(
                f"{LAUNCH_MARK} evcc: {service}/{control_mode} not offered: {offered}", flush=True
            )
            return await super().select_energy_service_v20(services)

    async def main() -> None:
        config = Config()
        config.load_envs()
        evcc_config = await load_from_file(config.ev_config_file_path)
        names = [s.name for s in evcc_config.supported_energy_services or []]
        if names != [service] or bool(evcc_config.use_tls) != tls:
            raise SystemExit(
                f"{LAUNCH_MARK} evcc config not loaded as asked ({names}, useTls="
                f"{evcc_config.use_tls}): is aiofile installed in the peer venv?"
            )
        print(f"{LAUNCH_MARK} evcc service={service} control_mode={control_mode}", flush=True)
        await EVCCHandler(
            evcc_config=evcc_config,
            iface=config.iface,
            exi_codec=ExificientEXICodec(),
            ev_controller=Chooser(evcc_config),
        ).start()

    asyncio.run(main())


def launch(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="josev_session.py launch")
    parser.add_argument("role", choices=[r.value for r in JosevRole])
    parser.add_argument("--service", choices=SERVICES, default="DC_BPT")
    parser.add_argument("--control-mode", choices=sorted(CONTROL_MODES), default="dynamic")
    parser.add_argument("--restrict-offer", action="store_true")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--power-stage", action="store_true")
    args = parser.parse_args(argv)
    mode = CONTROL_MODES[args.control_mode]
    try:
        if args.role == JosevRole.SECC.value:
            _launch_secc(args.service, mode, args.restrict_offer, args.power_stage)
        else:
            _launch_evcc(args.service, mode, args.tls)
    except KeyboardInterrupt:
        print(f"{LAUNCH_MARK} stopped by SIGINT", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "launch":
        sys.exit(launch(sys.argv[2:]))
    sys.exit("usage: josev_session.py launch secc|evcc [--service S] [--control-mode M]")
