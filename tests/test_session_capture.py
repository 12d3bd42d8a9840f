"""Every plan run writes its ISO 15118-20 session as a capture with its TLS key log, and the
capture, read back and decrypted with the key log, decodes to exactly the messages in the trace."""

from pathlib import Path

from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.v2g.exi import decode, to_json
from rig.v2g.messages import NAMESPACE_SET
from rig.v2g.pcapread import read_capture
from rig.v2g.tls_records import Direction, KeyLog, application_data, decode_streams
from rig.v2g.v2gtp import FrameReader

REPO = Path(__file__).resolve().parent.parent
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
PLAN = REPO / "test_plans/v2h/charge_discharge_reversal.yaml"


def test_a_tls_session_capture_decodes_to_exactly_the_messages_in_the_trace(tmp_path: Path) -> None:
    assert BENCH.dut.tls
    result = execute(load_plan(PLAN), BENCH, out_dir=tmp_path)
    assert result.verdict == "pass", result.verdicts
    pcap = tmp_path / "charge_discharge_reversal.v2g.pcapng"
    keylog = tmp_path / "charge_discharge_reversal.keylog.txt"
    assert keylog.stat().st_mode & 0o777 == 0o600
    capture = read_capture(pcap)
    assert capture.undecodable == ()
    # SDP before the session: one request to ff02::1 and one response, asking for and offering TLS.
    assert [len(d.payload) for d in capture.sdp] == [10, 28]
    assert capture.sdp[0].payload[8] == 0x00 and capture.sdp[1].payload[26] == 0x00  # TLS
    (tcp,) = capture.data_connections
    client = tcp.client
    assert client is not None
    to_secc = tcp.stream_from(client)
    to_evcc = next(s for s in tcp.streams if s is not to_secc)
    assert to_secc.complete and to_evcc.complete
    # The key log travels in the capture too (a decryption secrets block), identical to the file.
    assert capture.tls_key_log.decode().split() == keylog.read_text().split()
    _, records = decode_streams(KeyLog.parse(keylog.read_text()), to_secc.data, to_evcc.data)
    frames = []
    for direction, sent in ((Direction.CLIENT, True), (Direction.SERVER, False)):
        reader = FrameReader()
        for frame in reader.feed(application_data(records, direction)):
            frames.append((sent, frame))
        reader.end()  # no frame cut short
    # Decoded with our codec, every payload is the message the trace recorded, in order per side.
    trace_msgs = [e.data for e in result.trace.events if e.name == "message"]
    assert len(frames) == len(trace_msgs) == result.messages > 500
    for sent in (True, False):
        wire = [f for s, f in frames if s is sent]
        logged = [m for m in trace_msgs if (m["dir"] == "tx") is sent]
        assert len(wire) == len(logged)
        for frame, message in zip(wire, logged, strict=True):
            assert frame.data.hex() == message["exi"]
            ns = NAMESPACE_SET[frame.payload_type]
            assert to_json(decode(ns, frame.payload)) == message["body"]


def test_rig_decode_reads_the_plan_capture_with_its_key_log(tmp_path: Path) -> None:
    """`rig decode CAPTURE --keylog FILE` on a plan's -20-over-TLS capture: the session decrypts
    and every V2GTP payload decodes, the same count of messages as the trace; without the key
    log the TLS connection is seen but nothing in it is decoded (and it says so)."""
    import json

    from rig.decode import main as decode_main

    plan = REPO / "fixtures/plans/served_short.yaml"
    result = execute(load_plan(plan), BENCH, out_dir=tmp_path)
    assert result.error is None and result.messages > 10
    pcap, keylog = tmp_path / "served_short.v2g.pcapng", tmp_path / "served_short.keylog.txt"
    out = tmp_path / "decoded"
    assert decode_main([str(pcap), "--keylog", str(keylog), "--out", str(out)]) == 0
    summary = json.loads((out / "decode.json").read_text())
    assert summary["exi_failed"] == 0
    assert summary["exi_decoded"] == result.messages
    assert summary["tls_connections"] == summary["tls_decrypted"] == 1
    assert {"app", "common", "dc"} <= set(summary["namespaces"]), summary["namespaces"]
    names = [
        event["name"]
        for event in map(json.loads, (out / "trace.jsonl").read_text().splitlines())
        if event.get("src") == "v2gtp"
    ]
    assert "SessionSetupReq" in names and "SessionStopRes" in names
    # The capture carries its key log (a decryption secrets block): decodes without the file too.
    bare = tmp_path / "bare.pcapng"
    bare.write_bytes(pcap.read_bytes())
    assert decode_main([str(bare), "--out", str(tmp_path / "bare")]) == 0
    again = json.loads((tmp_path / "bare" / "decode.json").read_text())
    assert again["exi_decoded"] == result.messages
