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

DEFAULT_PLANS = "test_plans/v2h"
DEFAULT_BENCH = "fixtures/benches/emulated.yaml"
DEFAULT_OUT = "reports/latest"


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


def _cmd_defects(args: argparse.Namespace) -> int:
    from rig.sim import DEFECTS

    width = max(len(name) for name in DEFECTS)
    for name, defect in sorted(DEFECTS.items()):
        breaks = ", ".join(defect.breaks) or "-"
        print(f"{name:<{width}}  breaks: {breaks}")
        print(f"{'':<{width}}  {defect.summary}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from rig.plan import discover
    from rig.sim import DEFECTS

    unknown = [d for d in args.defect if d not in DEFECTS]
    if unknown:
        print(
            f"rig run: unknown defect(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFECTS))}",
            file=sys.stderr,
        )
        return 2
    bench = _load_bench(args.bench)
    if args.defect and not bench.dut.emulated:
        print("rig run: --defect needs an emulated DUT (the bench's dut is real)", file=sys.stderr)
        return 2
    plans = discover(args.plans or [DEFAULT_PLANS])
    if not plans:
        print(
            f"rig run: no plan files in {' '.join(args.plans or [DEFAULT_PLANS])}", file=sys.stderr
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pytest_args = [
        *map(str, plans),
        "--bench",
        args.bench,
        "--seed",
        str(args.seed),
        "--rig-out",
        str(out),
        f"--html={out / 'report.html'}",
        "--self-contained-html",
        f"--junitxml={out / 'junit.xml'}",
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
    code = pytest.main(pytest_args)
    print(f"report: {out / 'report.html'}\nrecord: {out / 'record.json'}")
    if code == pytest.ExitCode.OK:
        return 0
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    if code == pytest.ExitCode.USAGE_ERROR:
        return 2
    return 1


def _cmd_emulate(args: argparse.Namespace) -> int:
    from rig.station import serve_emulated

    if not args.serve:
        print("rig emulate: nothing to do (use --serve)", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print("rig emulate: emulators serve on loopback only (127.0.0.1 or ::1)", file=sys.stderr)
        return 2
    bench = _load_bench(args.bench)
    return serve_emulated(
        bench, host=args.host, base_port=args.port, seed=args.seed, defects=tuple(args.defect)
    )


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
    run.add_argument(
        "--bench", default=DEFAULT_BENCH, help=f"bench file (default: {DEFAULT_BENCH})"
    )
    run.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
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
    emu.add_argument("--bench", default=DEFAULT_BENCH)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "exi":
        return _cmd_exi(argparse.Namespace(), argv[1:])
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
