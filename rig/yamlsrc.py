"""YAML with line numbers, and error collection that names file, line and field.

Plans and bench files are read through here so that every complaint can say
`test_plans/v2h/x.yaml:14: steps[3].grid.voltage: '230' has no unit` instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


def render_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(document)"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class SourceError(Exception):
    """One or more problems in a YAML source; str() lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Source:
    """A parsed YAML document with the line of every mapping key and sequence item (1-based)."""

    file: str
    data: Any
    lines: dict[Path_, int]
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path_) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), render_path(path), message))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise SourceError(sorted(self.problems, key=lambda p: p.line))


def _build(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            if key in out:
                raise SourceError(
                    [
                        Problem(
                            file,
                            key_node.start_mark.line + 1,
                            render_path((*path, key)),
                            "duplicate key",
                        )
                    ]
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar's tag (int, float, bool, null, str, date) as yaml.safe_load would."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def load(path: str | Path, *, display_name: str | None = None) -> Source:
    """Parse one YAML file. Syntax errors become a SourceError with the parser's line."""
    name = display_name or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(name, 0, "(file)", exc.strerror or str(exc))]) from None
    return loads(text, name)


def loads(text: str, name: str = "<string>") -> Source:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        message = str(exc.problem or exc)
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise SourceError([Problem(name, line, "(syntax)", message)]) from None
    if node is None:
        raise SourceError([Problem(name, 1, "(document)", "the file is empty")])
    lines: dict[Path_, int] = {}
    data = _build(node, (), lines, name)
    return Source(name, data, lines)
