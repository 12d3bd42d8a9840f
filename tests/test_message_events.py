"""The -20 messages of a run as the trace holds them (rig.dut.MessageData): the frame and the
decoded message, with the JSON form and the hex built when read. What a reader gets, in memory
and from the trace file, is exactly the message on the wire; what is held per message is a
fraction of the JSON form's nested dicts (a 24 h day keeps ~690,000 messages)."""

import json
import tracemalloc
from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.dut import MessageData
from rig.plan import load_plan
from rig.runner import RunResult, execute
from rig.trace import Trace
from rig.v2g.exi import to_json
from rig.v2g.messages import decode_payload
from rig.v2g.v2gtp import HEADER_SIZE

REPO = Path(__file__).resolve().parent.parent
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
PLANS = {
    "evse": REPO / "test_plans/v2h/grid_loss_grid_following.yaml",  # the rig's EVCC
    "ev": REPO / "fixtures/plans/served_short_ev.yaml",  # the rig's SECC
}


@pytest.fixture(scope="module", params=sorted(PLANS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp(request.param)
    result = execute(load_plan(PLANS[request.param]), BENCH, seed=1, out_dir=out)
    assert result.error is None, result.error
    return result


def message_events(trace: Trace) -> list:
    return [e for e in trace.events if e.src == "v2g" and e.name == "message"]


def test_every_message_reads_as_the_frame_on_the_wire_decodes(run: RunResult) -> None:
    events = message_events(run.trace)
    assert len(events) == run.messages > 100
    codes = 0
    for e in events:
        data = e.data
        assert isinstance(data, MessageData)
        frame = bytes.fromhex(data["exi"])
        assert data["payload_type"] == int.from_bytes(frame[2:4], "big")
        body = to_json(decode_payload(data["payload_type"], frame[HEADER_SIZE:]))
        assert data["body"] == body
        assert list(body) == [data["message"]]
        code = body[data["message"]].get("ResponseCode")
        assert data.get("code") == code and ("code" in data) == (code is not None)
        codes += code is not None
        assert data["dir"] in ("tx", "rx") and data["side"] in ("evcc", "secc")
    assert codes == len(events) // 2  # every response, no request


def test_the_trace_file_holds_the_same_messages_in_the_same_key_order(run: RunResult) -> None:
    assert run.trace_path is not None
    in_memory = message_events(run.trace)
    lines = [
        json.loads(line)
        for line in run.trace_path.read_text(encoding="utf-8").splitlines()
        if '"name":"message"' in line and '"src":"v2g"' in line
    ]
    assert len(lines) == len(in_memory)
    for line, e in zip(lines, in_memory, strict=True):
        assert line["t"] == e.t
        assert list(line["data"]) == list(e.data)
        assert line["data"] == e.data.as_json() == dict(e.data)
    loaded = message_events(Trace.load(run.trace_path))
    assert [e.data for e in loaded] == [e.data for e in in_memory]  # Mapping equality both ways


def test_a_message_event_reads_as_a_mapping() -> None:
    data = MessageData("tx", "evcc", "SessionSetupReq", 0x8002, b"\x01\xfe\x80\x02", None)
    assert list(data) == ["dir", "side", "message", "payload_type", "exi", "body"]
    assert len(data) == 6 and "code" not in data and "body" in data
    assert data["exi"] == "01fe8002" and data["body"] == {}
    assert data.get("code") is None and data.get("nothing", 7) == 7
    with pytest.raises(KeyError):
        data["code"]


def test_a_held_chargeloop_message_costs_less_than_half_its_json_form(run: RunResult) -> None:
    loop = next(e.data for e in message_events(run.trace) if e.data["message"].endswith("LoopReq"))
    frame = bytes.fromhex(loop["exi"])
    count = 500

    def held(make) -> float:  # bytes held per message, the decoded message's own included
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [
                make(decode_payload(loop["payload_type"], frame[HEADER_SIZE:]))
                for _ in range(count)
            ]
            size = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(kept) == count
        return size / count

    as_data = held(lambda m: MessageData("tx", "evcc", loop["message"], 0x8004, frame, m))
    as_json = held(lambda m: {"exi": frame.hex(), "body": to_json(m)})
    print(f"held per ChargeLoop message: {as_data:.0f} B (JSON form {as_json:.0f} B)")
    assert as_data < 0.5 * as_json, (as_data, as_json)


def test_a_record_with_only_the_json_form_is_held_as_it_is() -> None:
    body = {"SessionSetupRes": {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "X"}}
    data = MessageData("rx", "evcc", "SessionSetupRes", 0x8002, b"\x01\xfe", None, body)
    assert data["body"] is body and data["code"] == "OK_NewSessionEstablished"
    assert list(data)[-1] == "code" and len(data) == 7
