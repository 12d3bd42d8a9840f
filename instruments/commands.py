"""One table of SCPI commands per driver, each with where the fact comes from.

Every driver keeps the commands it sends in a module-level `COMMANDS` table of `Cmd` entries and
formats them from there, so that a lab correcting a command edits one line. A source containing
"(?)" marks a command not confirmed against the vendor's manual text (taken from open drivers,
sample code, or the family's conventions); `unconfirmed()` lists them for a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from string import Formatter

UNCONFIRMED = "(?)"


@dataclass(frozen=True)
class Cmd:
    """A command template (`VOLT {v}`) and the source of the fact."""

    template: str
    source: str

    def __post_init__(self) -> None:
        if not self.template or not self.source:
            raise ValueError("a command needs a template and a source")

    @property
    def confirmed(self) -> bool:
        return UNCONFIRMED not in self.source

    @cached_property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in Formatter().parse(self.template) if name)

    def __call__(self, **values: object) -> str:
        names = self.fields
        if not names and not values:
            return self.template
        missing = names - set(values)
        extra = set(values) - names
        if missing or extra:
            raise ValueError(
                f"{self.template!r}: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        return self.template.format(**values)


def unconfirmed(table: Mapping[str, Cmd]) -> list[str]:
    """Names of the commands in `table` not confirmed against a manual."""
    return sorted(name for name, cmd in table.items() if not cmd.confirmed)
