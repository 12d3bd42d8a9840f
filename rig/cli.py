"""Command line of the rig: ``rig run``, ``rig validate``, ``rig defects``, ``rig emulate``, ``rig exi``.

Exit codes: 0 success (every plan passed), 1 a plan failed or errored, 2 bad input (plan, bench,
option, EXI stream), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.bench import BenchConfig

#: The rig's own tree (a source checkout or an editable install): defaults are found from here,
#: not from the current directory.
REPO = Path(__file__).resolve().parent.parent
DEFAULT_PLANS = "test_plans/v2h"
DEFAULT_BENCH = "fixtures/benches/emulated.yaml"


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
    """name -> (summary, checks it breaks, kind) for the physics and the protocol defects."""
    from rig.emulators.defects import PROTOCOL_DEFECTS
    from rig.sim import DEFECTS

    out = {n: (d.summary, d.breaks, "physics") for n, d in DEFECTS.items()}
    out.update({n: (d.summary, d.breaks, "protocol") for n, d in PROTOCOL_DEFECTS.items()})
    return out


def _cmd_defects(args: argparse.Namespace) -> int:
    defects = _all_defects()
    width = max(len(name) for name in defects)
    for name, (summary, breaks, kind) in sorted(defects.items()):
        print(f"{name:<{width}}  breaks: {', '.join(breaks) or '-'}")
        print(f"{'':<{width}}  ({kind}) {summary}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from rig.outdir import OutputError, OutputFolder, new_run_folder, point_latest
    from rig.plan import DEFAULT_LIMITS, PlanLimits, discover, plan_from_source
    from rig.yamlsrc import SourceError, load

    defects = _all_defects()
    unknown = [d for d in args.defect if d not in defects]
    if unknown:
        raise BadInput(
            f"rig run: unknown defect(s) {', '.join(unknown)}; known: {', '.join(sorted(defects))}"
        )
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
    pytest_args = [
        *map(str, plans),
        "--bench",
        bench_path,
        "--seed",
        str(args.seed),
        "--rig-out",
        str(out),
        f"--html={out / 'report.html'}",
        "--self-contained-html",
        f"--junitxml={out / 'junit.xml'}",
        "--rootdir",
        str(_common_root(plans)),
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-q",
        "-rfEs",
        # The rig is imported before pytest starts; its plugin needs no assertion rewriting.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]
    for d in args.defect:
        pytest_args += ["--defect", d]
    if args.k:
        pytest_args += ["-k", args.k]
    if args.allow_skips:
        pytest_args.append("--allow-skips")
    if args.allow_expired_calibration:
        pytest_args.append("--allow-expired-calibration")
    if args.max_duration:
        pytest_args += ["--max-duration", args.max_duration]
    if args.max_samples:
        pytest_args += ["--max-samples", str(args.max_samples)]
    try:
        code = pytest.main(pytest_args)
    finally:
        folder.close()
    for name in ("report.html", "record.json"):
        if (out / name).is_file():  # say only what was written
            print(f"{name.split('.')[0]}: {out / name}")
    if code == pytest.ExitCode.OK:
        return 0
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    if code == pytest.ExitCode.USAGE_ERROR:
        return 2
    return 1


def _common_root(paths: list[Path]) -> Path:
    """The deepest folder holding every plan: output names are the plans' paths below it."""
    import os

    folders = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def _quantity(option: str, value: str, dimension: str) -> float:
    from rig import units

    try:
        return units.parse(value, dimension)
    except units.UnitError as exc:
        raise BadInput(f"rig: {option}: {exc}") from None


def _cmd_emulate(args: argparse.Namespace) -> int:
    from rig.station import BenchError, serve_emulated

    if not args.serve:
        print("rig emulate: nothing to do (use --serve)", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print("rig emulate: emulators serve on loopback only (127.0.0.1 or ::1)", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        raise BadInput(f"rig emulate: --port {args.port} is not a TCP port (0..65535)")
    bench = _load_bench(args.bench)
    try:
        return serve_emulated(
            bench, host=args.host, base_port=args.port, seed=args.seed, defects=tuple(args.defect)
        )
    except BenchError as exc:
        raise BadInput(f"rig emulate: {exc}") from None


def _cmd_exi(args: argparse.Namespace, rest: list[str]) -> int:
    from rig.v2g.exi.cli import main as exi_main

    return int(exi_main(rest))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig", description=__doc__.splitlines()[0] if __doc__ else None
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
    run.set_defaults(func=_cmd_run)

    val = sub.add_parser(
        "validate", help="check plan and bench files; print file:line: field: message"
    )
    val.add_argument("plans", nargs="+", metavar="PLAN|BENCH|DIR")
    val.set_defaults(func=_cmd_validate)

    dfx = sub.add_parser("defects", help="list the seeded defects of the emulated DUT")
    dfx.set_defaults(func=_cmd_defects)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "exi":
        return _cmd_exi(argparse.Namespace(), argv[1:])
    if argv and argv[0] == "pki":
        from rig.v2g.pki_cli import main as pki_main

        return int(pki_main(argv[1:]))
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
