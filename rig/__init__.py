"""V2H test rig: ISO 15118-20 bidirectional power transfer on real or emulated benches."""

__version__ = "0.1.0"
