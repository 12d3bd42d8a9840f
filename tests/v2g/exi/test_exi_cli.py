"""`rig exi decode|encode`: JSON out, hex out (lower-case), one-line errors with exit code 2."""

from __future__ import annotations

import io
import json

import pytest

from rig.v2g.exi.cli import main

STREAM = "8034042d166f29fb80ea560aebdbfb3062810012006164000a02002400c800"
MESSAGE = {
    "DC_ChargeLoopReq": {
        "Header": {"SessionID": "5A2CDE53F701D4AC", "TimeStamp": 1718607534},
        "MeterInfoRequested": False,
        "EVPresentVoltage": {"Exponent": 0, "Value": 400},
        "BPT_Scheduled_DC_CLReqControlMode": {
            "EVTargetCurrent": {"Exponent": 0, "Value": 20},
            "EVTargetVoltage": {"Exponent": 0, "Value": 400},
        },
    }
}


def test_decode_prints_the_json_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--ns", "dc", STREAM.upper()]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == MESSAGE
    assert out.startswith('{\n  "DC_ChargeLoopReq": {')  # indent 2


def test_encode_from_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", "--ns", "dc", json.dumps(MESSAGE)]) == 0
    assert capsys.readouterr().out.strip() == STREAM


def test_encode_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", "--ns", "dc", "-"], stdin=io.StringIO(json.dumps(MESSAGE))) == 0
    assert capsys.readouterr().out.strip() == STREAM


def test_decode_error_is_one_line_with_bit_offset(capsys: pytest.CaptureFixture[str]) -> None:
    bad = "800c041e9869d6a61dc1ef895b9b4a8062004841801804180180418019a900"  # cbexigen #52
    assert main(["decode", "--ns", "ac", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "EXIDecodeError" in err and "at bit 234" in err


def test_truncated_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--ns", "dc", STREAM[:-4]]) == 2
    assert "at bit" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "stdin", "words"),
    [
        (["decode", "--ns", "dc", "80zz"], None, "not valid hex"),
        (["encode", "--ns", "dc", "{not json"], None, "invalid JSON"),
        (["encode", "--ns", "dc", '{"DC_ChargeLoopReq": {}}'], None, "DC_ChargeLoopReq.Header"),
        (["encode", "--ns", "dc", '{"Nope": {}}'], None, "not a global element"),
        (["encode", "--ns", "nope", "{}"], None, "invalid choice"),
        (["frobnicate"], None, "invalid choice"),
        (["encode", "--ns", "dc", "-"], "", "invalid JSON"),
    ],
)
def test_errors_exit_2_with_one_line(
    argv: list[str], stdin: str | None, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, stdin=io.StringIO(stdin) if stdin is not None else None) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert words in captured.err


def test_out_of_range_value_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    message = json.loads(json.dumps(MESSAGE))
    message["DC_ChargeLoopReq"]["EVPresentVoltage"]["Exponent"] = 300
    assert main(["encode", "--ns", "dc", json.dumps(message)]) == 2
    assert "DC_ChargeLoopReq.EVPresentVoltage.Exponent" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ns", "stream", "message"),
    [
        (  # the VW's SessionSetupReq (tux-evse__vw-ac-iso2.pcap, frame 53)
            "iso2",
            "8098004011d01801f7e81aae4400",
            {
                "V2G_Message": {
                    "Header": {"SessionID": "00"},
                    "Body": {"SessionSetupReq": {"EVCCID": "007DFA06AB91"}},
                }
            },
        ),
        (  # EVerest libcbv2g's DIN ServiceDiscoveryReq vector
            "din",
            "809a0211d63f74d2297ac9119400",
            {
                "V2G_Message": {
                    "Header": {"SessionID": "4758FDD348A5EB24"},
                    "Body": {"ServiceDiscoveryReq": {"ServiceCategory": "EVCharging"}},
                }
            },
        ),
    ],
)
def test_din_and_iso2_both_ways(
    capsys: pytest.CaptureFixture[str], ns: str, stream: str, message: dict[str, object]
) -> None:
    assert main(["decode", "--ns", ns, stream]) == 0
    assert json.loads(capsys.readouterr().out) == message
    assert main(["encode", "--ns", ns, json.dumps(message)]) == 0
    assert capsys.readouterr().out.strip() == stream


def test_a_din_document_is_no_iso2_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Decoded with the wrong set, a DIN document's root code (77) names another -2 element."""
    assert main(["decode", "--ns", "iso2", "809a0211d63f74d2297ac9119400"]) == 2
    assert "EXIDecodeError" in capsys.readouterr().err
