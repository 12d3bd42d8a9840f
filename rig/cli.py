"""Command line of the rig: run, validate, defects, instruments, emulate, ev, evse, decode, exi, pki.

Exit codes: 0 success (every plan passed), 1 a plan failed or errored, 2 bad input (plan, bench,
option, an unknown defect, an instrument that cannot be reached, EXI stream), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rig.bench import BenchConfig

#: The rig's own tree (a source checkout or an editable install): defaults are found from here,
#: not from the current directory.
REPO = Path(__file__).resolve().parent.parent
DEFAULT_PLANS = "test_plans/v2h"
DEFAULT_BENCH = "fixtures/benches/emulated.yaml"


#: How long `rig run` waits for a real instrument to open and answer *IDN? before the run (ms).
PROBE_TIMEOUT_MS = 5000
#: The pytest plugins `rig run` needs; nothing else installed is loaded (a fast start).
RUN_PLUGINS = ("rig.pytest_plugin",)


class BadInput(Exception):
    """Input the rig cannot use (a plan, a bench file, an option): printed as is, exit 2."""


def _load_bench(path: str) -> BenchConfig:
    from rig.bench import load_bench
    from rig.yamlsrc import SourceError

    try:
        return load_bench(path)
    except SourceError as exc:
        raise BadInput(str(exc)) from None


def _cmd_validate(args: argparse.Namespace) -> int:
    from rig.validation import validate_files

    result = validate_files(args.plans)
    for line in result.problems:
        print(line)
    if result.problems:
        return 2
    print(f"{result.plans} plan(s), {result.benches} bench file(s) OK")
    return 0


def _all_defects() -> dict[str, tuple[str, tuple[str, ...], str]]:
    """name -> (summary, checks it breaks, kind) for the physics, protocol, TLS and pilot defects."""
    from rig.emulators.defects import PROTOCOL_DEFECTS, TLS_DEFECTS
    from rig.sim import DEFECTS
    from rig.sim.pilot import PILOT_DEFECTS

    out = {n: (d.summary, d.breaks, "physics") for n, d in DEFECTS.items()}
    out.update({n: (d.summary, d.breaks, "protocol") for n, d in PROTOCOL_DEFECTS.items()})
    out.update({n: (d.summary, d.breaks, "tls") for n, d in TLS_DEFECTS.items()})
    from rig.emulators.management import MANAGEMENT_DEFECTS  # a day plan's energy manager

    out.update({n: (d.summary, d.breaks, "management") for n, d in MANAGEMENT_DEFECTS.items()})
    # The pilot's belong to one side of the cable: the DUT's side in plans with link:.
    out.update(
        {n: (f"{d.summary} ({d.side} side)", d.breaks, "pilot") for n, d in PILOT_DEFECTS.items()}
    )
    return out


def _cmd_defects(args: argparse.Namespace) -> int:
    defects = _all_defects()
    width = max(len(name) for name in defects)
    for name, (summary, breaks, kind) in sorted(defects.items()):
        print(f"{name:<{width}}  breaks: {', '.join(breaks) or '-'}")
        print(f"{'':<{width}}  ({kind}) {summary}")
    return 0


def _cmd_instruments(args: argparse.Namespace) -> int:
    """Identify every instrument of a bench and print one row each: exit 0 when all answer as
    the bench file says, 1 when one does not answer or reports another serial."""
    import datetime as dt

    from instruments.inventory import InventoryEntry, inventory, parse_due
    from rig.clock import RealClock, VirtualClock
    from rig.station import open_instruments

    bench = _load_bench(args.bench)
    all_emulated = all(i.emulated for i in bench.instruments)
    clock = VirtualClock() if all_emulated else RealClock()
    station, errors = open_instruments(bench, clock, seed=args.seed)
    try:
        entries = [
            InventoryEntry(
                inst.name,
                station.drivers[inst.name],
                inst.model,
                inst.address,
                parse_due(inst.calibration_due),
                inst.serial,
            )
            for inst in bench.instruments
            if inst.name in station.drivers
        ]
        rows = {row.name: row for row in inventory(entries, today=dt.date.today())}
    finally:
        station.teardown()
    table = [("NAME", "ROLE", "MODEL", "IDN", "ADDRESS", "CALIBRATION DUE")]
    bad = 0
    for inst in bench.instruments:
        row = rows.get(inst.name)
        error = errors.get(inst.name) or (row.error if row is not None else None)
        due = inst.calibration_due or "-"
        if row is not None and row.calibration_overdue:
            due += " OVERDUE"
        idn = str(row.idn) if row is not None and row.idn is not None else f"NO ANSWER: {error}"
        if row is not None and row.serial_mismatch:
            idn += f" (bench file says serial {inst.serial})"
        bad += error is not None or (row is not None and row.serial_mismatch)
        table.append((inst.name, inst.role, inst.model, idn, inst.address, due))
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]) - 1)]
    for r in table:
        print("  ".join(f"{v:<{w}}" for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print(
        f"{len(bench.instruments) - bad} of {len(bench.instruments)} instrument(s) answered as "
        "the bench file says"
    )
    return 1 if bad else 0


def _cmd_run(args: argparse.Namespace) -> int:
    import os

    from rig.report.figureserver import ENV, FigureServer

    if os.environ.get(ENV) == "0":  # figures drawn by the processes that run the plans
        return _run_plans(args, "")
    # Started first: it imports matplotlib on the other core while this process starts.
    with FigureServer() as figures:
        return _run_plans(args, figures.address, figures.pki)


def _run_plans(args: argparse.Namespace, figure_server: str, pki: str = "") -> int:
    import os

    import pytest

    from rig.outdir import OutputError, OutputFolder, new_run_folder, point_latest
    from rig.plan import DEFAULT_LIMITS, PlanLimits, discover, plan_from_source
    from rig.report.figureserver import ENV as FIGURE_SERVER_ENV
    from rig.v2gfiles import PKI_ENV
    from rig.yamlsrc import SourceError, load

    _check_defects("rig run", args.defect)
    workers = _workers(args.workers)
    bench_path = args.bench or str(REPO / DEFAULT_BENCH)
    bench = _load_bench(bench_path)
    if args.defect and not bench.dut.emulated:
        raise BadInput("rig run: --defect needs an emulated DUT (the bench's dut is real)")
    plan_args = args.plans or [str(REPO / DEFAULT_PLANS)]
    plans = discover(plan_args)
    if not plans:
        raise BadInput(f"rig run: no plan files in {' '.join(plan_args)}")
    limits = PlanLimits(
        max_duration_s=_quantity("--max-duration", args.max_duration, "time")
        if args.max_duration
        else DEFAULT_LIMITS.max_duration_s,
        max_samples=int(args.max_samples) if args.max_samples else DEFAULT_LIMITS.max_samples,
    )
    # Every plan is validated before the bench is touched: a malformed plan is bad input (exit 2).
    problems: list[str] = []
    for plan_path in plans:
        try:
            plan_from_source(load(plan_path), limits)
        except SourceError as exc:
            problems.extend(str(p) for p in exc.problems)
    if problems:
        raise BadInput("\n".join(problems))
    _probe_instruments(bench)
    try:
        if args.out:
            out = Path(args.out)
        else:
            base = Path(args.reports)
            out = new_run_folder(base, Path(plan_args[0]).stem if len(plan_args) == 1 else "run")
            point_latest(base, out)
        folder = OutputFolder(out)
        folder.open()
    except OutputError as exc:
        raise BadInput(f"rig run: {exc}") from None
    display = "quiet" if args.quiet else "verbose" if args.verbose else "normal"
    pytest_args = [
        *map(str, plans),
        "--bench",
        bench_path,
        "--seed",
        str(args.seed),
        "--rig-out",
        str(out),
        "--rig-display",
        display,
        "--rootdir",
        str(_common_root(plans)),
        *(f"-p{name}" for name in RUN_PLUGINS),
        # The rig's display replaces pytest's terminal; plans print nothing worth capturing.
        "-pno:terminal",
        "-pno:cacheprovider",
        # pytest's unraisable-exception plugin runs the garbage collector at exit to flush
        # unraisable exceptions of test code (about 0.1 s with a run's traces still in memory).
        "-pno:unraisableexception",
        "--capture=no",
        # Plans are YAML items: no Python test module needs assertion rewriting.
        "--assert=plain",
        "-o",
        "addopts=",
    ]
    if workers:
        pytest_args += ["-pxdist.plugin", "-n", str(workers)]
    for d in args.defect:
        pytest_args += ["--defect", d]
    if args.k:
        pytest_args += ["-k", args.k]
    if args.allow_skips:
        pytest_args.append("--allow-skips")
    if args.verbose:
        pytest_args.append("--rig-commands")
    if args.allow_expired_calibration:
        pytest_args.append("--allow-expired-calibration")
    if args.max_duration:
        pytest_args += ["--max-duration", args.max_duration]
    if args.max_samples:
        pytest_args += ["--max-samples", str(args.max_samples)]
    # Only the plugins named above are loaded (here and in xdist's workers, which inherit the
    # environment): installed extras such as hypothesis's plugin cost a second and do nothing for
    # a plan. Workers compute on small arrays: one BLAS thread each, or N workers' idle BLAS
    # threads spin against each other on the same cores.
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", FIGURE_SERVER_ENV: figure_server, PKI_ENV: pki}
    if workers:
        env |= {k: os.environ.get(k, "1") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = pytest.main(pytest_args)
    finally:
        folder.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if not args.quiet:
        for name in ("report.html", "record.json", "junit.xml"):
            if (out / name).is_file():  # say only what was written
                print(f"{name.split('.')[0]}: {out / name}")
    if code == pytest.ExitCode.OK:
        return 0
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(
            f"rig run: no plan matched -k {args.k}" if args.k else "rig run: no plan was collected",
            file=sys.stderr,
        )
        return 2
    if code == pytest.ExitCode.USAGE_ERROR:
        return 2
    return 1


def _workers(value: str) -> int:
    """`-n N` or `-n auto` (one worker per CPU); 0 runs the plans in this process."""
    if value == "auto":
        return max(os.cpu_count() or 1, 1)
    try:
        n = int(value)
    except ValueError:
        raise BadInput(f"rig run: -n {value}: a number of workers or 'auto'") from None
    if not 0 <= n <= 256:
        raise BadInput(f"rig run: -n {n}: between 0 and 256 workers")
    return n


def _check_defects(command: str, names: list[str]) -> dict[str, str]:
    """Each of `names` and its kind (physics, protocol, management, ...); an unknown one is bad
    input."""
    if not names:
        return {}  # nothing to check: the defect tables (the emulators' modules) stay unloaded
    defects = _all_defects()
    unknown = [d for d in names if d not in defects]
    if unknown:
        raise BadInput(
            f"{command}: unknown defect(s) {', '.join(unknown)}; known: {', '.join(sorted(defects))}"
        )
    return {d: defects[d][2] for d in names}


def _probe_instruments(bench: BenchConfig) -> None:
    """Every real instrument of the bench is opened and asked *IDN? before anything runs: one that
    cannot be reached is bad input naming it and its address, not an error inside a plan."""
    real = [i for i in bench.instruments if not i.emulated]
    if not real:
        return
    import pyvisa

    try:
        rm = pyvisa.ResourceManager()
    except Exception as exc:
        raise BadInput(
            f"rig run: no VISA library for the bench's instruments ({', '.join(i.name for i in real)}): {exc}"
        ) from None
    try:
        for inst in real:
            where = f"instrument {inst.name} ({inst.model}) at {inst.address}"
            try:
                resource: Any = rm.open_resource(inst.address, open_timeout=PROBE_TIMEOUT_MS)
            except Exception as exc:
                raise BadInput(f"rig run: {where} cannot be opened: {_why(exc)}") from None
            try:
                resource.timeout = PROBE_TIMEOUT_MS
                resource.read_termination = "\n"
                resource.write_termination = "\n"
                resource.query("*IDN?")
            except Exception as exc:
                raise BadInput(f"rig run: {where} does not answer *IDN?: {_why(exc)}") from None
            finally:
                with contextlib.suppress(Exception):
                    resource.close()
    finally:
        with contextlib.suppress(Exception):
            rm.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _common_root(paths: list[Path]) -> Path:
    """The deepest folder holding every plan: output names are the plans' paths below it."""
    folders = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def _quantity(option: str, value: str, dimension: str) -> float:
    from rig import units

    try:
        return units.parse(value, dimension)
    except units.UnitError as exc:
        raise BadInput(f"rig: {option}: {exc}") from None


def _cmd_emulate(args: argparse.Namespace) -> int:
    from rig.serve import serve_emulated
    from rig.station import BenchError

    if not args.serve:
        print("rig emulate: nothing to do (use --serve)", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print("rig emulate: emulators serve on loopback only (127.0.0.1 or ::1)", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        raise BadInput(f"rig emulate: --port {args.port} is not a TCP port (0..65535)")
    kinds = _check_defects("rig emulate", args.defect)
    managing = [d for d in args.defect if kinds[d] == "management"]
    if any(kinds[d] not in ("physics", "management") for d in args.defect):
        raise BadInput(
            "rig emulate: only the physics and management defects apply to a served bench"
        )
    bench = _load_bench(args.bench)
    plan = None
    if args.plan:
        from rig.plan import load_plan
        from rig.yamlsrc import SourceError

        try:
            plan = load_plan(args.plan)
        except SourceError as exc:
            raise BadInput(str(exc)) from None
    if managing and (plan is None or plan.day is None):
        raise BadInput(
            f"rig emulate: {', '.join(managing)}: a management defect needs --plan with a day "
            "(the served DUT's energy manager gets its day from it)"
        )
    try:
        return serve_emulated(
            bench,
            host=args.host,
            base_port=args.port,
            seed=args.seed,
            defects=tuple(args.defect),
            bench_out=Path(args.bench_out) if args.bench_out else None,
            plan=plan,
        )
    except BenchError as exc:
        raise BadInput(f"rig emulate: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the rig's version and git commit, and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run plans on a bench (wraps pytest), write an HTML report")
    run.add_argument("plans", nargs="*", metavar="PLAN|DIR", help=f"default: {DEFAULT_PLANS}")
    run.add_argument("--bench", default=None, help=f"bench file (default: {DEFAULT_BENCH})")
    run.add_argument(
        "--out",
        default=None,
        help="output folder (default: a new folder reports/<UTC time>-<name>/, "
        "with reports/latest pointing at it)",
    )
    run.add_argument(
        "--reports",
        default=str(REPO / "reports"),
        help="where new run folders go when --out is not given (default: the rig's reports/)",
    )
    run.add_argument(
        "--allow-skips", action="store_true", help="skipped plans do not make the run fail"
    )
    run.add_argument(
        "--allow-expired-calibration",
        action="store_true",
        help="run with instruments past their calibration due date (every verdict says so)",
    )
    run.add_argument("--max-duration", default=None, metavar="TIME", help="raise the 7 d bound")
    run.add_argument("--max-samples", type=float, default=None, help="raise the 5e6 bound")
    run.add_argument("--seed", type=int, default=1, help="seed of the emulated bench (default 1)")
    run.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="seed a defect into the emulated DUT (repeatable; see `rig defects`)",
    )
    run.add_argument("-k", default=None, help="only plans matching this pytest -k expression")
    run.add_argument(
        "-n",
        "--workers",
        default="0",
        metavar="N|auto",
        help="run plans in N worker processes (pytest-xdist; auto: one per CPU); results are "
        "the same as with 0, the default (every plan in this process)",
    )
    talk = run.add_mutually_exclusive_group()
    talk.add_argument(
        "-q", "--quiet", action="store_true", help="only what did not pass, and one closing line"
    )
    talk.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also log every step, DUT event and instrument command (also to <plan>.commands.log)",
    )
    run.set_defaults(func=_cmd_run)

    val = sub.add_parser(
        "validate", help="check plan and bench files; print file:line: field: message"
    )
    val.add_argument("plans", nargs="+", metavar="PLAN|BENCH|DIR")
    val.set_defaults(func=_cmd_validate)

    dfx = sub.add_parser("defects", help="list the seeded defects of the emulated DUT")
    dfx.set_defaults(func=_cmd_defects)

    ins = sub.add_parser(
        "instruments",
        help="identify every instrument of a bench: role, model, IDN, address, calibration",
    )
    ins.add_argument("--bench", default=str(REPO / DEFAULT_BENCH))
    ins.add_argument("--seed", type=int, default=1, help="seed of emulated instruments")
    ins.set_defaults(func=_cmd_instruments)

    emu = sub.add_parser(
        "emulate", help="serve the emulated instruments as SCPI sockets on loopback"
    )
    emu.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    emu.add_argument("--bench", default=str(REPO / DEFAULT_BENCH))
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument(
        "--port", type=int, default=5025, help="first port; one per instrument (0: any)"
    )
    emu.add_argument("--seed", type=int, default=1)
    emu.add_argument("--defect", action="append", default=[], metavar="NAME")
    emu.add_argument(
        "--bench-out",
        default=None,
        metavar="FILE",
        help="write a bench file pointing at the served instruments and DUT",
    )
    emu.add_argument(
        "--plan", default=None, metavar="PLAN", help="take the EV and grid of the physics from it"
    )
    emu.set_defaults(func=_cmd_emulate)

    exi = sub.add_parser(
        "exi", help="ISO 15118-20 EXI: decode/encode (rig exi --help)", add_help=False
    )
    exi.set_defaults(func=None)
    pki = sub.add_parser(
        "pki",
        help="test PKI for ISO 15118-20 TLS: rig pki init DIR (rig pki --help)",
        add_help=False,
    )
    pki.set_defaults(func=None)
    for name, text in _PASS_THROUGH_HELP.items():
        sub.add_parser(name, help=text, add_help=False).set_defaults(func=None)
    return parser


#: Commands with their own option parsers: `rig <name> ...` hands the rest of the line over.
_PASS_THROUGH_HELP = {
    "ev": "the rig as an ISO 15118-20 EV in front of a real EVSE (rig ev --help)",
    "evse": "the rig as an ISO 15118-20 EVSE in front of a real EV (rig evse --help)",
    "decode": "decode a V2G capture or a live interface: SLAC, SDP, V2GTP, EXI (rig decode --help)",
}


def _pass_through(name: str, rest: list[str]) -> int:
    if name == "exi":
        from rig.v2g.exi.cli import main as exi_main

        return int(exi_main(rest))
    if name == "pki":
        from rig.v2g.pki_cli import main as pki_main

        return int(pki_main(rest))
    if name == "decode":
        from rig.decode import main as decode_main

        return int(decode_main(rest))
    from rig.standalone import main_ev, main_evse

    return int(main_ev(rest) if name == "ev" else main_evse(rest))


class _VersionAction(argparse.Action):
    """`rig --version`: the commit is read only when asked (a git call)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from rig.identity import rig_identity

        print(rig_identity().describe())
        parser.exit()


def entry() -> NoReturn:
    """The `rig` command (and `python -m rig`): main(), then leave without the interpreter's
    teardown (rig.process: up to half a second of freeing what the run held)."""
    from rig.process import collect_less_often, leave

    collect_less_often()
    leave(main())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("exi", "pki", *_PASS_THROUGH_HELP):
        return _pass_through(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BadInput as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rig run ... | head`: the reader left; nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
