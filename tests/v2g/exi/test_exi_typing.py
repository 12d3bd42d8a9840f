"""The generated message classes are typed: strict mypy (the project's own configuration) rejects
a message built with a wrong field name or a wrong field type, and accepts a correct one.

One mypy run checks a small probe module written to a temporary folder. Each probe line that
must fail ends in `# expect: <text of the error>`; every other line must pass. The run uses the
checkout's mypy cache (.mypy_cache, the one `mypy` itself uses there), so it is quick once the
cache is warm and a few seconds when cold.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PROBE = '''\
"""Probe for test_exi_typing: uses of the generated classes, right and wrong."""

from rig.v2g import exi
from rig.v2g.exi import ac, app, common, commontypes, dc, din, iso2, xmldsig

header = dc.MessageHeaderType(SessionID=bytes(8), TimeStamp=1718607534)


def volts(value: int) -> dc.RationalNumberType:
    return dc.RationalNumberType(Exponent=0, Value=value)


# the right fields: passes (an optional left out, a list field, an enum, a substitution member)
good = dc.DC_ChargeLoopReq(
    Header=header,
    MeterInfoRequested=False,
    EVPresentVoltage=volts(400),
    CLReqControlMode=dc.Scheduled_DC_CLReqControlMode(
        EVTargetCurrent=volts(10), EVTargetVoltage=volts(400)
    ),
)
offer = app.supportedAppProtocolReq(
    AppProtocol=[
        app.AppProtocolType(
            ProtocolNamespace="urn:iso:std:iso:15118:-20:DC",
            VersionNumberMajor=1,
            VersionNumberMinor=0,
            SchemaID=1,
            Priority=1,
        )
    ]
)
answer = common.SessionSetupRes(
    Header=header, ResponseCode=common.responseCodeType.OK, EVSEID="DE*ABC*E1"
)
data: bytes = exi.encode(good)
as_json = exi.to_json(offer)

# a wrong field name
dc.DC_ChargeLoopReq(nonsense=1)  # expect: Unexpected keyword argument "nonsense" for "DC_ChargeLoopReq"

# a wrong field type
dc.DC_ChargeLoopReq(Header=header, MeterInfoRequested="no", EVPresentVoltage=volts(1), CLReqControlMode=good.CLReqControlMode)  # expect: Argument "MeterInfoRequested" to "DC_ChargeLoopReq" has incompatible type "str"; expected "bool"

# more of the same kind: an enum given as its text, a list field given one item, a missing
# required field, positional arguments, an optional that is not None-able in a nested type
common.SessionSetupRes(Header=header, ResponseCode="OK", EVSEID="x")  # expect: incompatible type "str"; expected "responseCodeType"
app.supportedAppProtocolReq(AppProtocol=offer.AppProtocol[0])  # expect: expected "list[AppProtocolType]"
dc.DC_ChargeLoopReq(Header=header, MeterInfoRequested=True, EVPresentVoltage=volts(1))  # expect: Missing named argument "CLReqControlMode"
commontypes.RationalNumberType(0, 400)  # expect: Too many positional arguments
dc.RationalNumberType(Exponent=0, Value=None)  # expect: Argument "Value" to "RationalNumberType" has incompatible type "None"; expected "int"
ac.AC_ChargeLoopReq(Header=header, MeterInfoRequested=False, CLReqControlMode=volts(1))  # expect: Argument "CLReqControlMode" to "AC_ChargeLoopReq" has incompatible type
xmldsig.DigestMethodType(Algorithm=1)  # expect: Argument "Algorithm" to "DigestMethodType" has incompatible type "int"; expected "str"

# frozen
good.MeterInfoRequested = True  # expect: is read-only

# decode with a literal namespace set: a union of the set's roots, narrowed without a cast
message = exi.decode("dc", data)
if isinstance(message, dc.DC_ChargeLoopReq):
    present: int = message.EVPresentVoltage.Value
    maybe: dc.DisplayParametersType | None = message.DisplayParameters
match message:
    case dc.DC_ChargeLoopReq(EVPresentVoltage=voltage):
        exponent: int = voltage.Exponent
    case _:
        pass
message.EVPresentVoltage  # expect: has no attribute "EVPresentVoltage"
received = exi.from_json("app", as_json)
if isinstance(received, app.supportedAppProtocolReq):
    first: str = received.AppProtocol[0].ProtocolNamespace
kinds: dict[str, type[dc.Document]] = exi.message_types("dc")

# DIN 70121 and -2: a V2G_Message whose Body holds one message
frame = exi.decode("iso2", data)
if isinstance(frame, iso2.V2G_Message):
    member = frame.Body.BodyElement
    if isinstance(member, iso2.CurrentDemandReq):
        soc: int = member.DC_EVStatus.EVRESSSOC
frame.Body  # expect: has no attribute "Body"
din.V2G_Message(Header=din.MessageHeaderType(SessionID=bytes(8)), Body=din.BodyType(BodyElement=din.SessionSetupReq(EVCCID="WMI")))  # expect: Argument "EVCCID" to "SessionSetupReq" has incompatible type "str"; expected "bytes"

# encode takes generated classes only
exi.encode("DC_ChargeLoopReq")  # expect: Argument 1 to "encode" has incompatible type "str"; expected "EXIMessage"
'''

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")


def test_mypy_rejects_wrong_fields_and_accepts_right_ones(tmp_path: Path) -> None:
    probe = tmp_path / "exi_typing_probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            "--no-pretty",
            "--no-error-summary",
            str(probe),
        ],
        cwd=REPO,  # mypy finds `rig` here (the editable install's import hook is not for mypy)
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors: dict[int, list[str]] = {}
    for line in result.stdout.splitlines():
        m = LINE.match(line)
        if m is None or m["kind"] != "error":
            continue
        assert Path(m["file"]).name == probe.name, f"error outside the probe: {line}"
        errors.setdefault(int(m["line"]), []).append(m["text"])
    assert result.returncode in (0, 1), result.stdout + result.stderr
    expected: dict[int, str] = {}
    for number, text in enumerate(PROBE.splitlines(), start=1):
        if "# expect: " in text:
            expected[number] = text.split("# expect: ", 1)[1]
    assert len(expected) >= 12
    for number, wanted in expected.items():
        got = errors.get(number, [])
        assert any(wanted in e for e in got), f"probe line {number}: want {wanted!r}, got {got}"
    unexpected = {n: e for n, e in errors.items() if n not in expected}
    assert not unexpected, f"errors on lines that must pass: {unexpected}"
