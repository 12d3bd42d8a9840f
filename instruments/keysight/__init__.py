"""Keysight instruments."""
