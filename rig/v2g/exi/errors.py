"""Errors of the EXI codec: one base class, an encode error naming the field path, and a decode
error carrying the bit offset (counted from the first bit of the stream, header included)."""

from __future__ import annotations


class EXIError(Exception):
    """Base class of every error the EXI codec raises on purpose."""


class EXIEncodeError(EXIError):
    """A message cannot be encoded; `path` names the field (outermost first)."""

    def __init__(self, message: str, path: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = list(path or [])

    def within(self, name: str, index: int | None = None) -> EXIEncodeError:
        """Prepend one path step (called by each enclosing type on the way out)."""
        if name:
            self.path.insert(0, name if index is None else f"{name}[{index}]")
        return self

    def within_path(self, dotted: str, index: int | None, lists: tuple[str, ...]) -> EXIEncodeError:
        """Prepend `dotted` ("Field" or "Field.Child" of an inlined type), indexing its first
        step when that is a list field."""
        if dotted:
            parts = dotted.split(".")
            if index is not None and parts[0] in lists:
                parts[0] = f"{parts[0]}[{index}]"
            self.path[:0] = parts
        return self

    @property
    def field_path(self) -> str:
        return ".".join(self.path)

    def __str__(self) -> str:
        return f"{self.field_path}: {self.message}" if self.path else self.message


class EXIDecodeError(EXIError):
    """A stream cannot be decoded; `bit_offset` is where the problem was found."""

    def __init__(self, message: str, bit_offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.bit_offset = bit_offset

    def __str__(self) -> str:
        return f"{self.message} (at bit {self.bit_offset}, byte {self.bit_offset // 8})"
