"""Emulated Keysight InfiniiVision oscilloscope: captures of the World's instantaneous waveforms.

Channels are wired to probes by the `channels` option ({1: grid.v, 2: evse_ac.i, 3: home.v}: a
point's voltage or current, phase suffix for 3-phase benches, see rig.sim.waveform.Probe); the
EXT input to the grid relay (`ext: grid_relay`, the grid source's connection to the site, so
S3 opening is a falling edge there). Unwired channels read 0 plus noise.

An acquisition (`:SINGle`, `:DIGitize`) arms the scope; it waits for the pre-trigger part of
the record (5 div - position) and then for its trigger: an edge of the trigger source through
the level with the slope (searched in the recorded history as time passes, on World timers), or
`:TRIGger:FORCe` at the moment it is sent; `:TRIGger:SWEep AUTO` triggers by itself 40 ms (?)
after the pre-trigger part is full. The record spans 10 divisions around the trigger + position
at the model's sample rate: the lower of the maximum rate and record length / window. It
completes when its last sample is in the past; the rows of state history it needs are kept with
it. `:WAVeform:DATA?` synthesizes the source channel from those rows (rig.sim.waveform), adds
the channel's gain error, offset error and vertical noise (?: ±2 % gain and ±0.1 div offset as
datasheet-style bands, half of them as the fixed error; 0.02 div rms noise), quantizes to the
8-bit ADC over ±5 divisions and sends BYTE, WORD or ASCii as a definite-length block with
`:WAVeform:PREamble?` to scale it. Samples are not locked to the trigger: the first lies a
random fraction of a sample interval off, as on a scope whose sample clock runs free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from instruments.blocks import encode_block
from instruments.emulated.scpi import (
    Blocked,
    Command,
    ErrorCode,
    Params,
    Read,
    ScpiError,
    Write,
    nr3,
)
from instruments.emulated.twin import Twin
from instruments.emulated.world import TimerLike
from instruments.options import index, indexed, number, quantity
from rig.sim.history import HistorySlice, StateHistory
from rig.sim.waveform import LEAD_S, Probe, evaluate

#: EXT input sources: the history column whose 0/1 changes are edges.
EXT_SOURCES: Mapping[str, str] = {"grid_relay": "source_on"}
#: (?) Auto sweep triggers by itself this long after the pre-trigger part is full.
AUTO_TIMEOUT_S = 0.04
#: An edge is searched for at COARSE_RATE, then placed at up to FINE_RATE (s^-1): line
#: frequency signals cross a level at most twice a cycle, so 20 kSa/s never misses one, and
#: 1 MSa/s places it to 1 us. A pulse shorter than 50 us can be missed (the rig's own choice).
COARSE_RATE = 2e4
FINE_RATE = 1e6
#: Largest chunk synthesized at once when searching for an edge.
SEARCH_CHUNK = 1 << 18
#: NORMal points mode returns at most this many points (?).
NORMAL_POINTS = 62_500
_FORMATS = {"BYTE": 0, "WORD": 1, "ASCII": 4}


@dataclass(frozen=True)
class ChannelSettings:
    per_div: float = 1.0
    offset: float = 0.0
    probe: float = 1.0
    unit: str = "VOLT"
    coupling: str = "DC"
    display: bool = False


@dataclass(frozen=True, eq=False)
class Acquisition:
    """One completed record: where its samples are, and the history rows they come from."""

    t_trigger: float
    x_origin: float  # time of the first sample relative to the trigger
    sample_rate: float
    points: int
    rows: HistorySlice
    channels: Mapping[int, ChannelSettings]


@dataclass
class _Armed:
    t_arm: float
    pre_s: float
    post_s: float
    searched_until: float
    t_trigger: float | None = None
    #: The last coarse sample of the previous search (an edge between two searches counts).
    last_sample: tuple[float, float] | None = None


class InfiniiVisionTwin(Twin):
    maker = "KEYSIGHT TECHNOLOGIES"
    default_model = "DSOX3024T"
    firmware = "07.50.2021102830"  # (?)
    option_names = frozenset(
        {"channels", "ext", "record_length", "max_sample_rate", "vertical_noise", "history_span"}
    )
    CHANNELS = range(1, 5)
    #: (?) DC vertical gain accuracy and offset accuracy bands, vertical noise (divisions rms).
    GAIN_BAND = 0.02
    OFFSET_BAND_DIV = 0.1

    def configure(self) -> None:
        wiring = indexed("channels", self.options.get("channels", {}))
        self.probes: dict[int, Probe] = {}
        for channel, text in wiring.items():
            if channel not in self.CHANNELS or not isinstance(text, str):
                raise ValueError(f"option channels: {channel}: {text!r} is not CHAN1..4 -> probe")
            self.probes[channel] = Probe.parse(text)
        ext = str(self.options.get("ext", "grid_relay"))
        if ext not in EXT_SOURCES:
            raise ValueError(f"option ext: {ext!r}; known: {sorted(EXT_SOURCES)}")
        self.ext_column = EXT_SOURCES[ext]
        self.record_length = index("record_length", self.options.get("record_length", 2_000_000))
        if not 1000 <= self.record_length <= 64_000_000:
            raise ValueError("option record_length must be 1000 .. 64000000 points")
        self.max_sample_rate = quantity(
            "max_sample_rate", self.options.get("max_sample_rate", 5e9), "rate"
        )
        self.noise_div = number(self.options, "vertical_noise", 0.02)
        span = quantity("history_span", self.options.get("history_span", 60.0), "time")
        self.history_store: StateHistory = self.world.record_history(span)
        self.rng = self.world.spawn_rng(f"{type(self).__name__}:{self.serial}")
        share = 0.5  # the fixed errors take at most half the bands (rig's own choice)
        self.gain_error = {
            ch: float(self.rng.uniform(-1, 1)) * share * self.GAIN_BAND for ch in self.CHANNELS
        }
        self.offset_error_div = {
            ch: float(self.rng.uniform(-1, 1)) * share * self.OFFSET_BAND_DIV
            for ch in self.CHANNELS
        }
        self._timer: TimerLike | None = None
        self._reset_settings()

    def _reset_settings(self) -> None:
        self.channels = {ch: ChannelSettings(display=ch == 1) for ch in self.CHANNELS}
        self.seconds_per_div = 1e-4
        self.position_s = 0.0
        self.trigger_source = "CHAN1"
        self.trigger_level = 0.0
        self.trigger_slope = "POS"
        self.sweep = "AUTO"
        self.waveform_source = 1
        self.waveform_format = "BYTE"
        self.byte_order = "MSBF"
        self.unsigned = True
        self.points_mode = "NORMAL"
        self.points_requested: int | None = 1000
        self.armed: _Armed | None = None
        self.last: Acquisition | None = None
        self.triggered_event = False
        #: Completed acquisitions so far, and the count a running :DIGitize waits for.
        self.acquisitions = 0
        self._digitize_until: int | None = None
        self._data_cache: dict[int, np.ndarray] = {}
        self._cancel_timer()

    def reset(self) -> None:
        self._reset_settings()

    def state(self) -> dict[str, bool | float | str]:
        return {
            "armed": self.armed is not None,
            "triggered": self.armed is not None and self.armed.t_trigger is not None,
            "t_trigger": math.nan if self.last is None else self.last.t_trigger,
            "seconds_per_div": self.seconds_per_div,
            "position_s": self.position_s,
            "trigger_source": self.trigger_source,
            "sample_rate": self.sample_rate,
        }

    # --- geometry --------------------------------------------------------------------------------

    @property
    def window_s(self) -> float:
        return 10.0 * self.seconds_per_div

    @property
    def sample_rate(self) -> float:
        return min(self.max_sample_rate, self.record_length / self.window_s)

    @property
    def points(self) -> int:
        return max(1, math.floor(self.window_s * self.sample_rate + 1e-9))

    # --- commands --------------------------------------------------------------------------------

    def commands(self) -> Sequence[Command]:
        return [
            Command(":CHANnel<n>:SCALe", write=self._channel_number("per_div", "", 1e-6), read=self._channel_get("per_div")),
            Command(":CHANnel<n>:OFFSet", write=self._channel_number("offset", "", None), read=self._channel_get("offset")),
            Command(":CHANnel<n>:PROBe", write=self._channel_number("probe", "", 1e-4), read=self._channel_get("probe")),
            Command(":CHANnel<n>:UNITs", write=self._set_units, read=lambda p: self._channel(p).unit),
            Command(":CHANnel<n>:COUPling", write=self._set_coupling, read=lambda p: self._channel(p).coupling),
            Command(":CHANnel<n>:DISPlay", write=self._set_display, read=lambda p: str(int(self._channel(p).display))),
            Command(":TIMebase:SCALe", write=self._set_timebase_scale, read=lambda p: nr3(self.seconds_per_div)),
            Command(":TIMebase:POSition", write=self._set_position, read=lambda p: nr3(self.position_s)),
            Command(":TIMebase:REFerence", write=self._set_reference, read=lambda p: "CENT"),
            Command(":TRIGger:MODE", write=self._set_trigger_mode, read=lambda p: "EDGE"),
            Command(":TRIGger:SWEep", write=self._set_sweep, read=lambda p: self.sweep),
            Command(":TRIGger:EDGE:SOURce", write=self._set_trigger_source, read=lambda p: self.trigger_source),
            Command(":TRIGger[:EDGE]:LEVel", write=self._set_trigger_level, read=lambda p: nr3(self.trigger_level)),
            Command(":TRIGger:EDGE:SLOPe", write=self._set_slope, read=lambda p: self.trigger_slope),
            Command(":TRIGger:FORCe", write=self._force),
            Command(":SINGle", write=self._single),
            Command(":RUN", write=self._single),
            Command(":STOP", write=self._stop),
            Command(":DIGitize", write=self._digitize),
            Command(":TER", read=self._ter),
            Command(":OPERegister:CONDition", read=self._operation_condition),
            Command(":ACQuire:SRATe", read=lambda p: nr3(self.sample_rate)),
            Command(":ACQuire:POINts", read=lambda p: str(self.points)),
            Command(":WAVeform:SOURce", write=self._set_waveform_source, read=lambda p: f"CHAN{self.waveform_source}"),
            Command(":WAVeform:FORMat", write=self._set_format, read=lambda p: self.waveform_format),
            Command(":WAVeform:BYTeorder", write=self._set_byte_order, read=lambda p: self.byte_order),
            Command(":WAVeform:UNSigned", write=self._set_unsigned, read=lambda p: str(int(self.unsigned))),
            Command(":WAVeform:POINts:MODE", write=self._set_points_mode, read=lambda p: self.points_mode),
            Command(":WAVeform:POINts", write=self._set_points, read=lambda p: str(self._transfer_points())),
            Command(":WAVeform:PREamble", read=self._preamble),
            Command(":WAVeform:DATA", read=self._data),
        ]  # fmt: skip

    def _channel_index(self, params: Params) -> int:
        channel = params.suffixes[0]
        if channel not in self.CHANNELS:
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"CHANnel{channel}")
        return channel

    def _channel(self, params: Params) -> ChannelSettings:
        return self.channels[self._channel_index(params)]

    def _update_channel(self, params: Params, **changes: object) -> None:
        channel = self._channel_index(params)
        self.channels[channel] = replace(self.channels[channel], **changes)  # type: ignore[arg-type]

    def _channel_number(self, field: str, unit: str, low: float | None) -> Write:
        def write(params: Params) -> None:
            params.expect(1)
            self._update_channel(params, **{field: params.number(0, unit=unit, low=low)})

        return write

    def _channel_get(self, field: str) -> Read:
        def read(params: Params) -> str:
            params.expect(0)
            value: float = getattr(self._channel(params), field)
            return nr3(value)

        return read

    def _set_units(self, params: Params) -> None:
        params.expect(1)
        self._update_channel(params, unit=params.choice(0, {"VOLT": "VOLT", "AMPere": "AMP"}))

    def _set_coupling(self, params: Params) -> None:
        params.expect(1)
        coupling = params.choice(0, {"DC": "DC", "AC": "AC"})
        self._update_channel(params, coupling=coupling)

    def _set_display(self, params: Params) -> None:
        params.expect(1)
        self._update_channel(params, display=params.boolean(0))

    def _set_timebase_scale(self, params: Params) -> None:
        params.expect(1)
        self.seconds_per_div = params.number(0, unit="S", low=2e-9, high=50.0)
        self.history_store.extend_span(3.0 * self.window_s + 1.0)

    def _set_position(self, params: Params) -> None:
        params.expect(1)
        self.position_s = params.number(0, unit="S", low=-500.0, high=500.0)

    def _set_reference(self, params: Params) -> None:
        params.expect(1)
        if params.choice(0, {"LEFT": "LEFT", "CENTer": "CENT", "RIGHt": "RIGH"}) != "CENT":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "only the centre reference is emulated")

    def _set_trigger_mode(self, params: Params) -> None:
        params.expect(1)
        if params.choice(0, {"EDGE": "EDGE", "GLITch": "GLIT", "PATTern": "PATT"}) != "EDGE":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "only the edge trigger is emulated")

    def _set_sweep(self, params: Params) -> None:
        params.expect(1)
        self.sweep = params.choice(0, {"AUTO": "AUTO", "NORMal": "NORM"})

    def _set_trigger_source(self, params: Params) -> None:
        params.expect(1)
        text = params.args[0].strip().upper()
        if text in ("EXT", "EXTERNAL"):
            self.trigger_source = "EXT"
            return
        for prefix in ("CHANNEL", "CHAN"):
            if text.startswith(prefix) and text[len(prefix) :].isdigit():
                channel = int(text[len(prefix) :])
                if channel in self.CHANNELS:
                    self.trigger_source = f"CHAN{channel}"
                    return
        raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])

    def _set_trigger_level(self, params: Params) -> None:
        params.expect(1, 2)
        self.trigger_level = params.number(0)

    def _set_slope(self, params: Params) -> None:
        params.expect(1)
        self.trigger_slope = params.choice(
            0, {"POSitive": "POS", "NEGative": "NEG", "EITHer": "EITH", "ALTernate": "ALT"}
        )

    def _set_waveform_source(self, params: Params) -> None:
        params.expect(1)
        text = params.args[0].strip().upper()
        for prefix in ("CHANNEL", "CHAN"):
            if text.startswith(prefix) and text[len(prefix) :].isdigit():
                channel = int(text[len(prefix) :])
                if channel in self.CHANNELS:
                    self.waveform_source = channel
                    return
        raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])

    def _set_format(self, params: Params) -> None:
        params.expect(1)
        self.waveform_format = params.choice(0, {"BYTE": "BYTE", "WORD": "WORD", "ASCii": "ASCII"})

    def _set_byte_order(self, params: Params) -> None:
        params.expect(1)
        self.byte_order = params.choice(0, {"LSBFirst": "LSBF", "MSBFirst": "MSBF"})

    def _set_unsigned(self, params: Params) -> None:
        params.expect(1)
        self.unsigned = params.boolean(0)

    def _set_points_mode(self, params: Params) -> None:
        params.expect(1)
        self.points_mode = params.choice(
            0, {"NORMal": "NORMAL", "MAXimum": "MAXIMUM", "RAW": "RAW"}
        )

    def _set_points(self, params: Params) -> None:
        params.expect(1)
        if params.args[0].strip().upper() in ("MAX", "MAXIMUM"):
            self.points_requested = None
        else:
            self.points_requested = params.integer(0, low=100, high=64_000_000)

    # --- acquisition -------------------------------------------------------------------------------

    def _arm(self) -> None:
        now = self.now()
        pre = 5.0 * self.seconds_per_div - self.position_s
        post = self.window_s - pre
        self.armed = _Armed(now, pre, post, searched_until=now + max(pre, 0.0))
        self._data_cache.clear()
        self._schedule(now)

    def _single(self, params: Params) -> None:
        params.expect(0)
        self._arm()

    def _stop(self, params: Params) -> None:
        params.expect(0)
        self.armed = None
        self._cancel_timer()

    def _force(self, params: Params) -> None:
        params.expect(0)
        armed = self.armed
        if armed is not None and armed.t_trigger is None:
            self._triggered(self.now())

    def _digitize(self, params: Params) -> None:
        """Arm, and block until that acquisition has completed (run again on resume)."""
        if self._digitize_until is None:
            self._digitize_until = self.acquisitions + 1
            self._arm()
        self._progress(self.now())
        if self.acquisitions >= self._digitize_until:
            self._digitize_until = None
            return
        armed = self.armed
        if armed is None or self.forced:
            self._digitize_until = None
            self.armed = None
            self._cancel_timer()
            raise ScpiError(ErrorCode.EXECUTION_ERROR, "acquisition needs time to pass")
        if armed.t_trigger is not None:
            raise Blocked(armed.t_trigger + armed.post_s)
        raise Blocked(self.now() + self._check_period())

    def abort(self) -> None:
        """The client gave up on a :DIGitize: the acquisition stops with it."""
        if self.blocked_until is not None and self._digitize_until is not None:
            self._digitize_until = None
            self.armed = None
            self._cancel_timer()
        super().abort()

    def _check_period(self) -> float:
        return min(max(self.window_s / 2.0, 0.005), 0.5)

    def _schedule(self, t: float) -> None:
        self._cancel_timer()
        armed = self.armed
        if armed is None:
            return
        if armed.t_trigger is not None:
            due = armed.t_trigger + armed.post_s
        else:
            due = max(t, armed.searched_until) + self._check_period()
        self._timer = self.world.call_at(due, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._progress(self.world.now)
        if self.armed is not None:
            self._schedule(self.world.now)

    def _progress(self, now: float) -> None:
        """Search the history up to `now` for the trigger; complete the record when due."""
        armed = self.armed
        if armed is None:
            return
        if armed.t_trigger is None and now > armed.searched_until:
            found = self._search(armed.searched_until, now)
            armed.searched_until = now
            if found is not None:
                self._triggered(found)
            elif self.sweep == "AUTO" and now >= armed.t_arm + max(armed.pre_s, 0) + AUTO_TIMEOUT_S:
                self._triggered(armed.t_arm + max(armed.pre_s, 0.0) + AUTO_TIMEOUT_S)
        if armed.t_trigger is not None and now >= armed.t_trigger + armed.post_s:
            self._complete()

    def _triggered(self, t: float) -> None:
        armed = self.armed
        assert armed is not None
        armed.t_trigger = t
        self.triggered_event = True
        self._schedule(t)

    def _complete(self) -> None:
        armed = self.armed
        assert armed is not None and armed.t_trigger is not None
        rate = self.sample_rate
        # The sample clock runs free of the trigger: the first sample is a fraction late.
        fraction = float(self.rng.uniform(0.0, 1.0)) / rate
        x_origin = -armed.pre_s + fraction
        start = armed.t_trigger + x_origin
        points = self.points
        rows = self.history_store.slice(start, start + points / rate, lead_s=LEAD_S)
        self.last = Acquisition(armed.t_trigger, x_origin, rate, points, rows, dict(self.channels))
        self.acquisitions += 1
        self.armed = None
        self._data_cache.clear()
        self._cancel_timer()

    def _search(self, t0: float, t1: float) -> float | None:
        """First time in (t0, t1] the trigger source passes its level with its slope."""
        if self.trigger_source == "EXT":
            for t_change, before, after in self.history_store.changes(self.ext_column, t0, t1):
                up = after > before
                if self.trigger_slope in ("EITH", "ALT") or up == (self.trigger_slope == "POS"):
                    return t_change
            return None
        probe = self.probes.get(int(self.trigger_source[4:]))
        if probe is None:
            return None  # nothing wired: a flat line never crosses a level
        coarse = min(self.sample_rate, COARSE_RATE)
        armed = self.armed
        carried = armed.last_sample if armed is not None else None
        found, last = self._scan(probe, t0, t1, coarse, carried)
        if armed is not None:
            armed.last_sample = last
        if found is None:
            return None
        fine = min(self.sample_rate, FINE_RATE)
        if fine <= coarse:
            return found
        # Place the edge between the coarse sample before it and the one that crossed.
        refined, _ = self._scan(probe, found - 1.0 / coarse, found, fine, None)
        return refined if refined is not None else found

    def _scan(
        self,
        probe: Probe,
        t0: float,
        t1: float,
        rate: float,
        previous: tuple[float, float] | None,
    ) -> tuple[float | None, tuple[float, float] | None]:
        """First sample time in [t0, t1] at `rate` where the probe crosses the trigger level
        (counting from `previous`, the sample before t0), and the last sample looked at."""
        start = t0
        while start < t1:
            count = min(SEARCH_CHUNK, math.ceil((t1 - start) * rate) + 1)
            times = start + np.arange(count) / rate
            times = times[times <= t1]
            if times.size == 0:
                break
            rows = self.history_store.slice(float(times[0]), float(times[-1]), lead_s=LEAD_S)
            values = evaluate(rows, probe, times, self.history_store.phases)
            if previous is not None:
                times = np.concatenate(([previous[0]], times))
                values = np.concatenate(([previous[1]], values))
            hit = self._first_crossing(values)
            if hit is not None:
                return float(times[hit]), None
            previous = (float(times[-1]), float(values[-1]))
            start = float(times[-1]) + 1.0 / rate
        return None, previous

    def _first_crossing(self, values: np.ndarray) -> int | None:
        above = values >= self.trigger_level
        up = np.flatnonzero(~above[:-1] & above[1:]) + 1
        down = np.flatnonzero(above[:-1] & ~above[1:]) + 1
        if self.trigger_slope == "POS":
            hits = up
        elif self.trigger_slope == "NEG":
            hits = down
        else:
            hits = np.sort(np.concatenate((up, down)))
        return int(hits[0]) if hits.size else None

    def _ter(self, params: Params) -> str:
        params.expect(0)
        self._progress(self.now())
        event, self.triggered_event = self.triggered_event, False
        return "1" if event else "0"

    def _operation_condition(self, params: Params) -> str:
        params.expect(0)
        self._progress(self.now())
        return "8" if self.armed is not None else "0"  # bit 3: Run

    # --- waveform transfer ----------------------------------------------------------------------------

    def _acquisition(self) -> Acquisition:
        self._progress(self.now())
        if self.last is None:
            raise ScpiError(ErrorCode.DATA_CORRUPT_OR_STALE, "no acquisition")
        return self.last

    def _transfer_points(self) -> int:
        available = self.last.points if self.last is not None else self.points
        limit = available if self.points_mode != "NORMAL" else min(available, NORMAL_POINTS)
        wanted = limit if self.points_requested is None else min(limit, self.points_requested)
        return max(1, wanted)

    def _decimation(self, acquisition: Acquisition) -> int:
        return max(1, math.ceil(acquisition.points / self._transfer_points()))

    def _scaling(self, settings: ChannelSettings) -> tuple[float, float, float, int, int]:
        """(y increment, y origin, y reference, lowest code, highest code) for the format."""
        full = 10.0 * settings.per_div  # the ADC covers +-5 divisions (?)
        if self.waveform_format == "WORD":
            if self.unsigned:
                return full / 65536.0, settings.offset, 32768.0, 0, 65535
            return full / 65536.0, settings.offset, 0.0, -32768, 32767
        if self.unsigned:
            return full / 256.0, settings.offset, 128.0, 0, 255
        return full / 256.0, settings.offset, 0.0, -128, 127

    def _preamble(self, params: Params) -> str:
        params.expect(0)
        acquisition = self._acquisition()
        settings = acquisition.channels[self.waveform_source]
        step = self._decimation(acquisition)
        points = len(range(0, acquisition.points, step))
        y_increment, y_origin, y_reference, _, _ = self._scaling(settings)
        if self.waveform_format == "ASCII":
            y_increment, y_reference = 0.0, 0.0
        fields = [
            str(_FORMATS[self.waveform_format]),
            "0",  # NORMal acquisition
            str(points),
            "1",
            nr3(step / acquisition.sample_rate, 9),
            nr3(acquisition.x_origin, 9),
            "0",
            nr3(y_increment, 9),
            nr3(y_origin, 9),
            nr3(y_reference, 6),
        ]
        return ",".join(fields)

    def _values(self, channel: int, acquisition: Acquisition) -> np.ndarray:
        """The channel's record in its unit, with the scope's errors (cached per acquisition)."""
        found = self._data_cache.get(channel)
        if found is not None:
            return found
        settings = acquisition.channels[channel]
        t = acquisition.t_trigger + acquisition.x_origin
        times = t + np.arange(acquisition.points, dtype=np.float64) / acquisition.sample_rate
        probe = self.probes.get(channel)
        if probe is None:
            y = np.zeros(acquisition.points)
        else:
            y = evaluate(acquisition.rows, probe, times, self.history_store.phases)
        y = y * (1.0 + self.gain_error[channel])
        y += self.offset_error_div[channel] * settings.per_div
        if self.noise_div > 0:
            y += self.rng.standard_normal(y.size) * (self.noise_div * settings.per_div)
        if settings.coupling == "AC" and y.size:
            y -= float(y.mean())
        self._data_cache = {channel: y}
        return y

    def _data(self, params: Params) -> str:
        params.expect(0)
        acquisition = self._acquisition()
        channel = self.waveform_source
        settings = acquisition.channels[channel]
        y = self._values(channel, acquisition)[:: self._decimation(acquisition)]
        if self.waveform_format == "ASCII":
            return ",".join(f"{value:+.6E}" for value in y)
        y_increment, y_origin, y_reference, low, high = self._scaling(settings)
        # The 8-bit ADC: levels over +-5 divisions, then the transfer format's codes.
        adc_step = 10.0 * settings.per_div / 256.0
        levels = np.clip(np.round((y - y_origin) / adc_step), -128, 127)
        codes = levels * (adc_step / y_increment) + y_reference
        codes = np.clip(np.round(codes), low, high)
        if self.waveform_format == "WORD":
            kind = "<u2" if self.unsigned else "<i2"
            if self.byte_order == "MSBF":
                kind = kind.replace("<", ">")
        else:
            kind = "u1" if self.unsigned else "i1"
        payload = codes.astype(kind).tobytes()
        # Binary data travels in a str, one character per byte (transports send latin-1).
        return encode_block(payload).decode("latin-1")
