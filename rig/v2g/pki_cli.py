"""Command line of the test PKI: ``rig pki init DIR [--curve CURVE] [--profile FILE] [--force]``.

rig.cli wires ``rig pki ...`` to main(argv) with the words after ``pki``; ``python -m
rig.v2g.pki_cli init DIR`` does the same. Exit codes as rig's: 0 done, 2 bad input or a folder
that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rig.v2g.pki import Curve, PkiError, PkiProfile, init_pki


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig pki", description="Test PKI for ISO 15118-20.")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser(
        "init",
        help="generate a complete test PKI in DIR",
        description="Generate the V2G, CPO, CPS, OEM and MO chains with negative variants, "
        "and Josev's folder layout, in DIR (directories 0700, keys 0600).",
    )
    init.add_argument("directory", metavar="DIR", type=Path)
    init.add_argument(
        "--curve",
        choices=[c.value for c in Curve],
        help="key type of every certificate (default: the profile's, secp521r1 as -20 uses)",
    )
    init.add_argument(
        "--profile",
        type=Path,
        help="TOML certificate profile (see fixtures/pki/profile.toml); default: built in",
    )
    init.add_argument(
        "--force", action="store_true", help="replace a PKI already in DIR (only its own files)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        profile = PkiProfile.load(args.profile) if args.profile else PkiProfile()
        if args.curve:
            profile = profile.with_curve(Curve(args.curve))
        folder = init_pki(args.directory, profile, force=args.force)
    except (PkiError, OSError) as exc:
        print(f"rig pki init: {exc}", file=sys.stderr)
        return 2
    count = sum(1 for _ in (folder.directory / "certs").glob("*.pem"))
    print(f"test PKI in {folder.directory}: {count} certificates, curve {profile.curve}")
    print(f"  Josev (iso15118 package): PKI_PATH={folder.josev_pki_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
