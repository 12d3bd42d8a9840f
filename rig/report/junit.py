"""junit.xml for CI: one testcase per plan, class names from the plan folders, `<error>` for a run
the rig could not judge (bad bench, instrument failure, interrupted), `<failure>` for a plan whose
checks failed or came out inconclusive, suite properties naming the run (seed, bench, DUT,
firmware, defects, rig commit) and each check's figures as testcase properties.

"Not judged" and skipped plans are `<skipped>` with their reason: never a silent pass (the rig's
exit code fails the run for them unless --allow-skips).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rig.identity import iso_utc
from rig.outdir import atomic_write
from rig.report.outcome import Outcome
from rig.report.record import dut_record
from rig.report.table import as_text

if TYPE_CHECKING:
    from rig.identity import RunIdentity
    from rig.report.summary import PlanSummary

#: Characters XML 1.0 cannot carry (a peer's text may hold them): dropped.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Longest attribute value (messages are one line; the body carries the rest).
MAX_ATTR = 1000


def _x(text: object, limit: int = 100_000) -> str:
    return _NOT_XML.sub("", str(text))[:limit]


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:.6g}"


def _prop(parent: ET.Element, name: str, value: object) -> None:
    ET.SubElement(parent, "property", name=_x(name, 200), value=_x(value, MAX_ATTR))


def build_junit(
    identity: RunIdentity,
    summaries: Sequence[PlanSummary],
    *,
    stopped_by: str | None = None,
) -> ET.Element:
    tally = {"tests": len(summaries), "failures": 0, "errors": 0, "skipped": 0}
    total_time = sum(s.wall_s or 0.0 for s in summaries)
    suites = ET.Element("testsuites", name="rig run")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="rig",
        timestamp=iso_utc(identity.started),
        hostname=_x(identity.host, 200),
    )
    props = ET.SubElement(suite, "properties")
    dut = dut_record(summaries) or {}
    for name, value in (
        ("seed", identity.seed),
        ("bench", identity.bench.path),
        ("bench_name", identity.bench_name),
        ("bench_sha256", identity.bench.sha256 or ""),
        ("dut", dut.get("name", "")),
        ("dut_side", dut.get("side", "")),
        ("firmware", dut.get("firmware", "")),
        ("dut_serial", dut.get("serial", "")),
        ("defects", ",".join(identity.defects)),
        ("rig_version", identity.rig.version),
        ("rig_commit", identity.rig.commit or ""),
        ("complete", "false" if stopped_by else "true"),
    ):
        _prop(props, name, value)
    if stopped_by:
        _prop(props, "stopped_by", stopped_by)
    for s in summaries:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_x(s.classname, 300),
            name=_x(s.name, 200),
            time=f"{s.wall_s or 0.0:.3f}",
            file=_x(s.plan, 1000),
        )
        cp = ET.SubElement(case, "properties")
        _prop(cp, "verdict", s.outcome.value)
        for c in s.checks:
            name = str(c.get("name", "?"))
            _prop(cp, f"{name}.verdict", c.get("verdict", ""))
            _prop(cp, f"{name}.measured", _number(c.get("measured")))
            _prop(cp, f"{name}.limit", _number(c.get("limit")))
            _prop(cp, f"{name}.relation", c.get("relation") or "")
            _prop(cp, f"{name}.unit", c.get("unit", ""))
            if c.get("uncertainty") is not None:
                _prop(cp, f"{name}.uncertainty", _number(c.get("uncertainty")))
        if s.simulated_s is not None:
            _prop(cp, "simulated_s", f"{s.simulated_s:.3f}")
        _prop(cp, "protocol", s.protocol)
        if s.messages is not None:
            _prop(cp, "messages", s.messages)
        body = as_text(s.checks) if s.checks else (s.error or "")
        message = _x(s.headline, MAX_ATTR)
        if s.outcome in (Outcome.FAIL, Outcome.INCONCLUSIVE):
            tally["failures"] += 1
            el = ET.SubElement(case, "failure", type=s.outcome.value, message=message)
            el.text = _x(body)
        elif s.outcome in (Outcome.ERROR, Outcome.INTERRUPTED):
            tally["errors"] += 1
            el = ET.SubElement(case, "error", type=s.outcome.value, message=message)
            el.text = _x((s.error or "") + ("\n" + as_text(s.checks) if s.checks else ""))
        elif s.outcome in (Outcome.SKIPPED, Outcome.NOT_JUDGED):
            tally["skipped"] += 1
            ET.SubElement(case, "skipped", type=s.outcome.value, message=message)
    for el in (suites, suite):
        for key, n in tally.items():
            el.set(key, str(n))
        el.set("time", f"{total_time:.3f}")
    return suites


def write_junit(path: Path, root: ET.Element) -> None:
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    atomic_write(path, '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n")
