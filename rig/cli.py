"""Command line of the rig: ``rig run``, ``rig validate``, ``rig defects``, ``rig emulate``, ``rig exi``."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("not yet")
