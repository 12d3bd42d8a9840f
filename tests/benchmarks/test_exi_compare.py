"""Keeps tests/benchmarks/exi_compare.py working: a short run with the peer, no floors asserted.

The floors of issue 3 are asserted by tests/benchmarks/test_exi_speed.py (rig.v2g.exi alone);
this run only checks that the side-by-side report is complete and that both codecs produce the
same bytes for the two benchmark messages.
"""

from __future__ import annotations

import pytest
from benchmarks import exi_compare
from peers import josev

pytest.importorskip("rig.v2g.exi", reason="rig.v2g.exi not built yet")


@pytest.mark.peer
@pytest.mark.benchmark
def test_side_by_side_report_is_complete() -> None:
    reason = josev.unavailable_reason()
    if reason is not None:
        josev.missing(reason)
    report = exi_compare.run(number=200, repeat=3, peer_number=5, peer_warmup=20)
    assert [r.name for r in report.rows] == [name for name, _, _ in exi_compare.CASES]
    for row in report.rows:
        assert row.same_bytes, f"{row.name}: the peer encodes other bytes"
        timings = (row.ours_encode_s, row.ours_decode_s, row.peer_encode_s, row.peer_decode_s)
        assert all(t is not None and t > 0 for t in timings)
    assert 60 <= report.rows[0].size <= 80  # "about 68 bytes"
    assert report.ours_import_s > 0 and report.py4j_null_s is not None
    text = exi_compare.format_report(report)
    assert "DC_ChargeLoopReq BPT_Dynamic" in text and "py4j null call" in text
