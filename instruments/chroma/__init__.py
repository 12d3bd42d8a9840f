"""Chroma instruments."""
