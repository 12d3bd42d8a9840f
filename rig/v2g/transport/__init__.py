"""Transports of the ISO 15118 stack: byte links (memory, TCP) and the layers that wrap them (TLS)."""
