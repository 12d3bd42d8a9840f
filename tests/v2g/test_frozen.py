"""rig.v2g.frozen.fast_init: the direct-store __init__ behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field

import pytest

from rig.v2g.exi._generated import commontypes, dc
from rig.v2g.frozen import fast_init


def _pair(**params: bool) -> tuple[type, type]:
    """The same class twice: with the dataclass's __init__ and with fast_init's."""

    def make() -> type:
        @dataclass(frozen=True, **params)
        class Sample:
            a: int
            b: str = "b"
            c: list[int] = field(default_factory=lambda: [1])
            d: float = field(default=0.5, kw_only=True)
            e: int = field(default=7, init=False)
            f: list[int] = field(default_factory=list, init=False)

        return Sample

    return make(), fast_init(make())


@pytest.mark.parametrize("slots", [False, True])
def test_same_signature_defaults_and_fields(slots: bool) -> None:
    plain, fast = _pair(slots=slots)
    assert inspect.signature(fast.__init__) == inspect.signature(plain.__init__)  # type: ignore[misc]
    for args, kwargs in [((1,), {}), ((1, "x", [2]), {"d": 2.0})]:
        p, f = plain(*args, **kwargs), fast(*args, **kwargs)
        assert dataclasses.asdict(p) == dataclasses.asdict(f)
        assert repr(p).replace(plain.__qualname__, "") == repr(f).replace(fast.__qualname__, "")
    # a fresh default_factory value per instance, as the dataclass makes it
    assert fast(1).c is not fast(1).c and fast(1).f is not fast(1).f


@pytest.mark.parametrize("slots", [False, True])
def test_still_frozen_hashable_and_picklable(slots: bool) -> None:
    _, fast = _pair(slots=slots)
    obj = fast(3, "z", [4], d=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.a = 4  # type: ignore[misc]
    assert obj == fast(3, "z", [4], d=1.0)
    assert dataclasses.replace(obj, a=5).a == 5


def test_wrong_calls_fail_as_before() -> None:
    plain, fast = _pair()
    for cls in (plain, fast):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, "b", [1], 2.0)  # d is keyword-only
        with pytest.raises(TypeError):
            cls(1, e=3)  # not an init field


def test_post_init_runs_and_initvar_classes_are_left_alone() -> None:
    seen: list[int] = []

    @fast_init
    @dataclass(frozen=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            seen.append(self.a)

    WithPost(4)
    assert seen == [4]

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        scale: InitVar[int] = 1

    original = WithInitVar.__init__
    assert fast_init(WithInitVar).__init__ is original


def test_generated_message_classes_use_it() -> None:
    r = commontypes.RationalNumberType(Exponent=-1, Value=25)
    assert (r.Exponent, r.Value) == (-1, 25)
    assert pickle.loads(pickle.dumps(r)) == r
    with pytest.raises(TypeError):
        commontypes.RationalNumberType(Exponent=1)  # type: ignore[call-arg]
    mode = dc.Dynamic_DC_CLResControlMode(
        EVSEMaximumChargePower=r,
        EVSEMinimumChargePower=r,
        EVSEMaximumChargeCurrent=r,
        EVSEMaximumVoltage=r,
    )
    assert mode.DepartureTime is None and mode.EVSEMaximumVoltage is r
    assert type(mode).__init__.__code__.co_filename.startswith("<fast_init rig.v2g.exi")
