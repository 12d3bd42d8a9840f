"""The expected_protocol helper itself must fail on every kind of mismatch."""

from __future__ import annotations

import pytest

from instruments.keysight.ac6900 import AC6900
from instruments.testing import FakeResource, ProtocolMismatch, expected_protocol


def test_a_matching_table_passes() -> None:
    with expected_protocol(AC6900, [("OUTP?", "1")]) as ac:
        assert ac.output_enabled()


def test_a_different_command_fails_at_once() -> None:
    mismatch = pytest.raises(ProtocolMismatch, match="expected 'OUTP ON', driver sent 'OUTP OFF'")
    with mismatch, expected_protocol(AC6900, [("OUTP ON", None)]) as ac:
        ac.write("OUTP OFF")


def test_unused_pairs_fail_on_exit() -> None:
    table = [("OUTP?", "1"), ("VOLT?", "230")]
    with (
        pytest.raises(ProtocolMismatch, match="never used"),
        expected_protocol(AC6900, table) as ac,
    ):
        ac.output_enabled()


def test_an_empty_table_means_nothing_may_be_sent() -> None:
    with pytest.raises(ProtocolMismatch, match="past the end"), expected_protocol(AC6900, []) as ac:
        ac.write("OUTP OFF")


def test_an_unread_reply_fails() -> None:
    resource = FakeResource([("OUTP?", "1")])
    resource.write("OUTP?")
    with pytest.raises(ProtocolMismatch, match="never read"):
        resource.assert_done()


def test_a_query_where_the_table_has_a_write_fails() -> None:
    resource = FakeResource([("OUTP ON", None)])
    with pytest.raises(ProtocolMismatch, match="no reply"):
        resource.query("OUTP ON")


def test_a_bare_read_pair() -> None:
    resource = FakeResource([("*TRG", None), (None, "42")])
    resource.write("*TRG")
    assert resource.read() == "42"
    resource.assert_done()
