"""One timeline per run: instrument samples, protocol/DUT events and step markers, streamed to disk.

The writer appends one JSON object per line and flushes as it goes, so a crash, a Ctrl-C or a
SIGTERM leaves everything measured up to that moment on disk. The same records are kept in memory
column-wise, so the checks read numpy arrays without parsing the file back.

Record kinds (key "k"):
- ``meta``   first line: plan, seed, bench, rig version, start time.
- ``sample`` one reading of one instrument: ``{"t", "k", "src", "v": {"evse_ac.p_w": ...}}``.
- ``event``  something a DUT, an emulator or the runner reported: ``{"t", "k", "src", "name", "data"}``.
- ``step``   a plan step was applied: ``{"t", "k", "i", "line", "action", "args"}``.
Channel names are ``<src>.<key>``, e.g. ``power_analyzer.evse_ac.p_w`` or ``dc_source.v``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rig.v2g.frozen import fast_init

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@fast_init
@dataclass(frozen=True)
class Event:
    t: float
    src: str
    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class StepMarker:
    t: float
    index: int
    line: int
    action: str
    args: Mapping[str, Any]


class DeferredData(Mapping[str, Any]):
    """Event data that is built when read rather than held: an ISO 15118-20 message's decoded
    body takes ~4 kB as nested dicts, and a 24 h day keeps ~690,000 messages (rig.dut.MessageData
    keeps the frame and the decoded message instead, ~1.8 kB). The trace file gets `as_json()`;
    readers use it as any Mapping."""

    __slots__ = ()

    def as_json(self) -> dict[str, Any]:
        """Every key with its value, as the trace file stores it."""
        return {key: self[key] for key in self}


def analyzer_channel(point: str, quantity: str) -> str:
    """The trace channel of a power analyzer reading at a measurement point (rig.sim.points), e.g.
    analyzer_channel(MeasurementPoint.EVSE_AC, "p_w") == "power_analyzer.evse_ac.p_w"."""
    return f"power_analyzer.{point}.{quantity}"


def _dumps(rec: Mapping[str, Any]) -> str:
    """One record as compact JSON; NaN and infinities (a missing reading) become null."""
    try:
        return json.dumps(rec, separators=(",", ":"), allow_nan=False)
    except ValueError:  # rare: walk the record only when a non-finite number is in it
        return json.dumps(_clean(rec), separators=(",", ":"))


def _clean(value: Any) -> Any:
    """JSON cannot carry NaN/inf; write them as null so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class Trace:
    """The in-memory view of a run's timeline, as the checks and the report read it."""

    meta: dict[str, Any] = field(default_factory=dict)
    _t: dict[str, list[float]] = field(default_factory=dict)
    _v: dict[str, list[float]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    steps: list[StepMarker] = field(default_factory=list)
    end_t: float = 0.0
    #: A trace read back from disk: True when it ends with the writer's "end" record.
    complete: bool = False
    #: (src, key) -> that channel's time and value lists (add_sample runs ~25 times a sample).
    _columns: dict[tuple[str, str], tuple[list[float], list[float]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # -- building ---------------------------------------------------------------------------------
    def add_sample(self, t: float, src: str, values: Mapping[str, float]) -> None:
        columns = self._columns
        for key, value in values.items():
            found = columns.get((src, key))
            if found is None:
                name = f"{src}.{key}"
                found = columns[(src, key)] = (
                    self._t.setdefault(name, []),
                    self._v.setdefault(name, []),
                )
            found[0].append(t)
            found[1].append(math.nan if value is None else float(value))
        if t > self.end_t:
            self.end_t = t

    def add_event(self, event: Event) -> None:
        self.events.append(event)
        self.end_t = max(self.end_t, event.t)

    def add_step(self, step: StepMarker) -> None:
        self.steps.append(step)
        self.end_t = max(self.end_t, step.t)

    # -- reading ----------------------------------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        return sorted(self._t)

    def has(self, channel: str) -> bool:
        return channel in self._t

    def series(self, channel: str) -> tuple[FloatArray, FloatArray]:
        """Times and values of one channel (empty arrays if it was never sampled)."""
        return (
            np.asarray(self._t.get(channel, ()), dtype=np.float64),
            np.asarray(self._v.get(channel, ()), dtype=np.float64),
        )

    def steps_of(self, action: str) -> list[StepMarker]:
        return [s for s in self.steps if s.action == action]

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace file back (e.g. to judge or plot a run again offline)."""
        trace = cls()
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    # A line cut by a crash: everything before it is whole; say where it stopped.
                    trace.meta["cut_at_line"] = number
                    break
                kind = rec.get("k")
                if kind == "meta":
                    trace.meta = {k: v for k, v in rec.items() if k not in ("k", "t")}
                elif kind == "sample":
                    trace.add_sample(rec["t"], rec["src"], rec["v"])
                elif kind == "event":
                    trace.add_event(Event(rec["t"], rec["src"], rec["name"], rec.get("data", {})))
                elif kind == "step":
                    trace.add_step(
                        StepMarker(rec["t"], rec["i"], rec["line"], rec["action"], rec["args"])
                    )
                elif kind == "end":
                    trace.end_t = max(trace.end_t, rec["t"])
                    trace.complete = True
        return trace


class TraceWriteError(OSError):
    """The trace could not be written (a full disk, a removed folder): the run must stop."""


class TraceWriter:
    """Appends records to a JSON-lines file and to an in-memory Trace.

    Every record goes to the file in one write() of a whole line, straight to the OS (a crash of
    this process loses nothing). If a write fails or is cut short (a full disk), the file is cut
    back to its last whole record, so that every line of it parses, the failure is raised once as
    TraceWriteError (the run stops and the bench goes safe), and later records are kept in memory
    only; `disk_error` and `disk_records` say how far the file got.
    """

    def __init__(self, path: str | Path | None, meta: Mapping[str, Any]) -> None:
        self.path = Path(path) if path is not None else None
        self.trace = Trace(meta=dict(meta))
        self._fd: int | None = None
        self._size = 0
        self.disk_records = 0
        self.disk_error: str | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o644)
        self._write({"t": 0.0, "k": "meta", **meta})

    def _write(self, rec: Mapping[str, Any]) -> None:
        if self._fd is None:
            return
        data = (_dumps(rec) + "\n").encode("utf-8")
        try:
            view = memoryview(data)
            while view:  # a short write is retried; a full disk then says so (ENOSPC)
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as exc:
            self._fail(exc)
            raise TraceWriteError(
                exc.errno or errno.EIO,
                f"cannot write the trace {self.path}: {exc.strerror or exc}; "
                f"{self.disk_records} whole records are on disk",
            ) from exc
        self._size += len(data)
        self.disk_records += 1

    def _fail(self, exc: OSError) -> None:
        fd, self._fd = self._fd, None
        self.disk_error = f"{exc.strerror or exc} after {self.disk_records} records"
        assert fd is not None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, self._size)  # drop a partial line: every line on disk parses
        with contextlib.suppress(OSError):
            os.close(fd)

    def _write_quiet(self, rec: Mapping[str, Any]) -> None:
        """Records written while the run is already ending (teardown): a disk failure here is
        remembered in disk_error, not raised, so that nothing stops the bench going safe."""
        with contextlib.suppress(TraceWriteError):
            self._write(rec)

    def sample(self, t: float, src: str, values: Mapping[str, float]) -> None:
        self.trace.add_sample(t, src, values)
        if self._fd is not None:
            self._write({"t": t, "k": "sample", "src": src, "v": dict(values)})

    def event(
        self,
        t: float,
        src: str,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        held = data if isinstance(data, DeferredData) else dict(data or {})
        self.trace.add_event(Event(t, src, name, held))
        if self._fd is None:
            return  # an in-memory trace (no output folder): nothing to write
        fields = held.as_json() if isinstance(held, DeferredData) else held
        rec = {"t": t, "k": "event", "src": src, "name": name, "data": fields}
        if quiet:
            self._write_quiet(rec)
        else:
            self._write(rec)

    def step(self, t: float, index: int, line: int, action: str, args: Mapping[str, Any]) -> None:
        marker = StepMarker(t, index, line, action, dict(args))
        self.trace.add_step(marker)
        self._write(
            {"t": t, "k": "step", "i": index, "line": line, "action": action, "args": marker.args}
        )

    def close(self, t: float) -> None:
        if self._fd is not None:
            self._write_quiet({"t": t, "k": "end"})
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self.trace.end_t = max(self.trace.end_t, t)
