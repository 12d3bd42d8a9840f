"""Physics of an unintentional island: the home bus fed only by a grid-following EVSE.

A grid-following inverter is a current source in phase with the voltage it sees: it pushes its
power into whatever the island holds. The island's voltage settles where the load absorbs that
power (V = sqrt(P / G), or I_max / G once the inverter's current limit binds). Its frequency moves
until the load's reactive power matches what the inverter supplies (none, at unity power factor):
an RLC load pulls it to its resonance, a load with uncompensated Q makes it drift away. That is why
a balanced RLC load (IEEE 1547.1 5.10, IEC 62116) holds voltage and frequency at nominal and only an
active method detects the island.
"""

from __future__ import annotations

import math

#: How fast the inverter's phase-locked loop chases the load's phase angle, per second and per unit
#: of reactive mismatch; an RLC island with quality factor Qf settles with the time constant
#: 1 / (2 K Qf), 50 ms at Qf 1 (a few cycles).
FREQUENCY_RESPONSE_PER_S = 10.0

#: The converter cannot drive the island above this voltage (its DC link), per unit.
VOLTAGE_CEILING_PU = 1.5

#: The PLL loses lock outside this frequency range, per unit of nominal; the frequency stops there.
FREQUENCY_LIMITS_PU = (0.5, 1.5)


def island_voltage(
    inject_w: float, conductance_s: float, current_limit_a: float, v_ceiling: float
) -> float:
    """Voltage at which the island's load absorbs the injected power (per phase quantities)."""
    if inject_w <= 0.0:
        return 0.0
    if conductance_s <= 0.0:
        return v_ceiling
    v = math.sqrt(inject_w / conductance_s)
    if v * conductance_s > current_limit_a:  # the inverter's current limit binds: I = V G
        v = current_limit_a / conductance_s
    return min(v, v_ceiling)


def frequency_rate(f_hz: float, q_load_var: float, p_load_w: float) -> float:
    """df/dt of the island: rises while the load draws inductive Q the inverter does not supply."""
    p_ref = max(abs(p_load_w), 100.0)
    return FREQUENCY_RESPONSE_PER_S * f_hz * q_load_var / p_ref
