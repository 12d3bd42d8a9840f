"""Yokogawa instruments."""
