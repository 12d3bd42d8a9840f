"""The SCPI engine: header forms, compound messages, common commands and the error queue."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruments.emulated.scpi import (
    Command,
    ErrorCode,
    Params,
    ScpiEngine,
    ScpiError,
    compile_pattern,
)


class Toy(ScpiEngine):
    """A two-setting instrument: a voltage with a 0..300 V range and an output switch."""

    def __init__(self) -> None:
        super().__init__()
        self.voltage = 0.0
        self.output = False
        self.items: dict[int, str] = {}
        self.resets = 0

    def identity(self) -> str:
        return "ACME,TOY1,42,1.0"

    def reset(self) -> None:
        self.resets += 1
        self.voltage = 0.0

    def commands(self) -> Sequence[Command]:
        return [
            Command(
                "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                write=self._set_voltage,
                read=lambda p: f"{self.voltage:g}",
            ),
            Command("[SOURce:]VOLTage:MODE", write=lambda p: None, read=lambda p: "FIX"),
            Command("OUTPut[:STATe]", write=self._set_output, read=lambda p: str(int(self.output))),
            Command(":NUMeric[:NORMal]:ITEM<n>", write=self._set_item, read=self._item),
            Command("MEASure:VOLTage", read=lambda p: "1.0"),
        ]

    def _set_voltage(self, params: Params) -> None:
        params.expect(1)
        self.voltage = params.number(0, unit="V", low=0.0, high=300.0)

    def _set_output(self, params: Params) -> None:
        params.expect(1)
        self.output = params.boolean(0)

    def _set_item(self, params: Params) -> None:
        params.expect(1)
        self.items[params.suffixes[0]] = params.choice(0, {"URMS": "URMS", "LAMBda": "LAMBDA"})

    def _item(self, params: Params) -> str:
        return self.items.get(params.suffixes[0], "NONE")


@pytest.fixture
def toy() -> Toy:
    return Toy()


@pytest.mark.parametrize(
    "message",
    [
        "SOURce:VOLTage:LEVel:IMMediate:AMPLitude 12",
        "SOUR:VOLT:LEV:IMM:AMPL 12",
        ":VOLT 12",
        "volt 12",
        "Volt:Lev 12",
        "VOLTAGE 12V",
        "VOLT 12000mV",
        "VOLT 0.012KV",
        "  VOLT\t12  ",
    ],
)
def test_long_short_case_optional_nodes_and_units_reach_the_same_setting(
    toy: Toy, message: str
) -> None:
    assert toy.execute(message) is None
    assert toy.voltage == pytest.approx(12.0)
    assert toy.errors == []


def test_a_truncation_that_is_neither_short_nor_long_is_an_undefined_header(toy: Toy) -> None:
    toy.execute("VOLTA 5")
    assert toy.errors == [(-113, "Undefined header;VOLTA")]
    assert toy.voltage == 0.0


def test_compound_message_runs_each_unit_and_joins_the_replies(toy: Toy) -> None:
    assert toy.execute("VOLT 5;:OUTP ON;:VOLT?;:OUTP?") == "5;1"


def test_a_unit_without_colon_is_resolved_relative_to_the_previous_path(toy: Toy) -> None:
    # SCPI-99 6.2.4: after VOLT 7 the path is the root's VOLTage node, so MODE? is VOLT:MODE?.
    assert toy.execute("VOLT 7;MODE?") == "FIX"
    # ... and still from the root when the relative form does not exist.
    assert toy.execute("VOLT 8;OUTP?") == "0"


def test_numeric_suffixes_default_to_one(toy: Toy) -> None:
    toy.execute(":NUM:NORM:ITEM3 LAMB;:NUMERIC:ITEM URMS")
    assert toy.items == {3: "LAMBDA", 1: "URMS"}
    assert toy.execute(":NUM:ITEM3?") == "LAMBDA"


def test_common_commands(toy: Toy) -> None:
    assert toy.execute("*IDN?") == "ACME,TOY1,42,1.0"
    assert toy.execute("*OPC?") == "1"
    assert toy.execute("*TST?") == "0"
    toy.execute("VOLT 3;*RST")
    assert toy.resets == 1 and toy.voltage == 0.0


def test_unknown_header_queues_minus_113_and_syst_err_pops_it(toy: Toy) -> None:
    toy.execute("FOO:BAR 1")
    assert toy.execute("SYST:ERR?") == '-113,"Undefined header;FOO:BAR"'
    assert toy.execute("SYSTem:ERRor:NEXT?") == '0,"No error"'


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("VOLT 301", ErrorCode.DATA_OUT_OF_RANGE),
        ("VOLT -1", ErrorCode.DATA_OUT_OF_RANGE),
        ("VOLT ABC", ErrorCode.DATA_TYPE_ERROR),
        ("VOLT 5A", ErrorCode.INVALID_SUFFIX),
        ("VOLT", ErrorCode.MISSING_PARAMETER),
        ("VOLT 1,2", ErrorCode.PARAMETER_NOT_ALLOWED),
        ("OUTP MAYBE", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("NUM:ITEM2 FOO", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("MEAS:VOLT 3", ErrorCode.UNDEFINED_HEADER),
        ("VOLT::LEV 3", ErrorCode.SYNTAX_ERROR),
        ("*FOO", ErrorCode.UNDEFINED_HEADER),
    ],
)
def test_bad_data_queues_the_standard_error(toy: Toy, message: str, code: ErrorCode) -> None:
    toy.execute(message)
    assert [entry[0] for entry in toy.errors] == [int(code)]


def test_min_and_max_select_the_range_ends(toy: Toy) -> None:
    toy.execute("VOLT MAX")
    assert toy.voltage == 300.0
    toy.execute("VOLT MIN")
    assert toy.voltage == 0.0


def test_a_command_error_discards_the_rest_of_the_message_but_an_execution_error_does_not(
    toy: Toy,
) -> None:
    toy.execute("BOGUS;:VOLT 9")
    assert toy.voltage == 0.0
    toy.execute("VOLT 999;:OUTP ON")
    assert toy.output is True
    assert [code for code, _ in toy.errors] == [-113, -222]


def test_esr_reports_the_error_classes_and_clears_on_read(toy: Toy) -> None:
    toy.execute("BOGUS")
    toy.execute("VOLT 999")
    assert toy.execute("*ESR?") == str(0x20 | 0x10)
    assert toy.execute("*ESR?") == "0"


def test_full_error_queue_keeps_the_oldest_and_ends_with_overflow(toy: Toy) -> None:
    for _ in range(15):
        toy.execute("VOLT 999")
    assert len(toy.errors) == 10
    assert toy.errors[0][0] == -222
    assert toy.errors[-1] == (-350, "Queue overflow")


def test_cls_clears_the_queue(toy: Toy) -> None:
    toy.execute("BOGUS")
    toy.execute("*CLS")
    assert toy.errors == []
    assert toy.execute("*STB?") == "0"


def test_quoted_strings_keep_their_separators(toy: Toy) -> None:
    class Echo(Toy):
        def commands(self) -> Sequence[Command]:
            return [Command("TEXT", read=lambda p: "|".join(p.args))]

    echo = Echo()
    assert echo.execute('TEXT? "a;b","c,d";*OPC?') == '"a;b"|"c,d";1'


def test_pattern_compilation_marks_optional_nodes_and_suffixes() -> None:
    nodes = compile_pattern("[SOURce:]VOLTage[:LEVel]:ITEM<n>")
    assert [(n.long, n.short, n.optional, n.suffix) for n in nodes] == [
        ("SOURCE", "SOUR", True, False),
        ("VOLTAGE", "VOLT", False, False),
        ("LEVEL", "LEV", True, False),
        ("ITEM", "ITEM", False, True),
    ]


def test_scpi_error_entry_carries_the_detail() -> None:
    assert ScpiError(ErrorCode.DATA_OUT_OF_RANGE, "VOLT 9").entry == (
        -222,
        "Data out of range;VOLT 9",
    )


@given(
    source=st.sampled_from(["SOUR:", "SOURCE:", "sour:", "Source:", ":", ""]),
    volt=st.sampled_from(["VOLT", "volt", "VOLTAGE", "Voltage"]),
    level=st.sampled_from(["", ":LEV", ":level", ":LEVEL:IMM", ":LEV:IMMEDIATE:AMPL"]),
    value=st.integers(min_value=0, max_value=300),
)
def test_any_spelling_of_the_header_sets_the_same_voltage(
    source: str, volt: str, level: str, value: int
) -> None:
    toy = Toy()
    toy.execute(f"{source}{volt}{level} {value}")
    assert toy.errors == [] and toy.voltage == value
