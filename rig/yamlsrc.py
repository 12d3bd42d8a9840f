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


#: Bounds on what a plan or bench file may be (issue: every input is bounded). Plans and benches
#: are a few kB; these leave room for long procedures while refusing bombs at once.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 200_000
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Builder:
    """Builds plain data from a composed YAML node graph, with every key's line, within bounds."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.nodes = 0

    def fail(self, node: yaml.Node, path: Path_, message: str) -> SourceError:
        return SourceError(
            [Problem(self.file, node.start_mark.line + 1, render_path(path), message)]
        )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node, path, f"more than {MAX_NODES} values (anchors and aliases expand too far)"
            )
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested more than {MAX_DEPTH} levels deep")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise self.fail(node, path, f"unknown YAML tag {node.tag!r}")
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self.scalar(key_node, path))
                if key in out:
                    raise self.fail(key_node, (*path, key), "duplicate key")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.fail(node, path, f"unknown YAML tag {node.tag!r}")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        """Resolve a scalar's tag (int, float, bool, null, str, date) as yaml.safe_load would."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "a mapping key must be a plain value")
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, path, str(getattr(exc, "problem", None) or exc)) from None


def load(path: str | Path, *, display_name: str | None = None) -> Source:
    """Parse one YAML file (UTF-8, at most MAX_FILE_BYTES). Every failure is a SourceError."""
    name = display_name or str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SourceError([Problem(name, 0, "(file)", exc.strerror or str(exc))]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(
            [Problem(name, 0, "(file)", f"larger than {MAX_FILE_BYTES // 1024} KiB; refused")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError(
            [Problem(name, line, "(file)", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})")]
        ) from None
    return loads(text, name)


def loads(text: str, name: str = "<string>") -> Source:
    if len(text) > MAX_FILE_BYTES:
        raise SourceError([Problem(name, 0, "(file)", f"larger than {MAX_FILE_BYTES} characters")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        message = str(exc.problem or exc)
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise SourceError([Problem(name, line, "(syntax)", message)]) from None
    except yaml.reader.ReaderError as exc:
        # A NUL byte or a control character: PyYAML names the character and its position.
        line = text[: exc.position].count("\n") + 1
        raise SourceError(
            [Problem(name, line, "(file)", f"character {int(exc.character):#06x} is not allowed")]
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError([Problem(name, 0, "(syntax)", str(exc))]) from None
    except RecursionError:
        raise SourceError([Problem(name, 0, "(document)", "nested too deeply")]) from None
    if node is None:
        raise SourceError([Problem(name, 1, "(document)", "the file is empty")])
    builder = _Builder(name)
    data = builder.build(node, ())
    return Source(name, data, builder.lines)
