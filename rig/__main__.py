"""Entry point for ``python -m rig``."""

from rig.cli import entry

entry()
