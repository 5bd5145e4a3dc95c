"""Capacity planning: how many instances the peak needs, from a measured stress run."""

from __future__ import annotations

import math
import warnings

_ROUNDING = 1e-9


def _instances(peak: float, per_instance: float, what: str, safety_factor: float,
               min_instances: int, zones: int) -> int:
    for name, value in ((f"peak {what}", peak), (f"{what} per instance", per_instance),
                        ("safety_factor", safety_factor)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise TypeError(f"{name} must be a number, got {value!r}")
    if peak < 0 or math.isinf(peak):
        raise ValueError(f"peak {what} must be a finite number >= 0, got {peak}")
    if per_instance <= 0:
        raise ValueError(f"{what} per instance must be > 0, got {per_instance}: the instance "
                         "meets the SLO at no load at all, so no number of instances is enough")
    if safety_factor <= 0 or math.isinf(safety_factor):
        raise ValueError(f"safety_factor must be a finite number > 0, got {safety_factor}")
    if isinstance(min_instances, bool) or not isinstance(min_instances, int) or min_instances < 0:
        raise ValueError(f"min_instances must be an integer >= 0, got {min_instances!r}")
    if isinstance(zones, bool) or not isinstance(zones, int) or zones < 1:
        raise ValueError(f"zones must be an integer >= 1, got {zones!r}")
    if safety_factor < 1:
        warnings.warn(
            f"safety_factor {safety_factor:g} < 1 plans for less than the peak: every instance "
            "would run beyond its measured sustainable load",
            UserWarning,
            stacklevel=3,
        )
    raw = peak * safety_factor / per_instance
    if zones > 1:
        # Survive the loss of one zone: the other zones - 1 must carry the whole load.
        raw *= zones / (zones - 1)
    # Forgive float noise (100 x 1.1 / 110 is 1.0000000000000002, not 2 instances).
    needed = math.ceil(raw * (1 - _ROUNDING)) if raw > 0 else 0
    if zones > 1:
        needed = math.ceil(needed / zones) * zones
    return max(needed, min_instances)


def instances_needed(
    peak_users: float,
    users_per_instance: float,
    *,
    safety_factor: float = 1.5,
    min_instances: int = 1,
    zones: int = 1,
) -> int:
    """Instances for a peak of concurrent users: ``ceil(peak x safety / users per instance)``.

    ``users_per_instance`` should be a *measured sustainable* load (the highest load at which the
    SLO still held), not the peak throughput; pass its lower confidence bound to be safe.

    Args:
        peak_users: expected peak concurrent users (>= 0).
        users_per_instance: users one instance serves within the SLO (> 0).
        safety_factor: head-room multiplier, typically 1.2 - 1.5; below 1 warns.
        min_instances: floor on the answer (>= 0).
        zones: spread over this many zones and survive losing one: the load is multiplied by
            ``zones / (zones - 1)`` and the count rounded up to a multiple of ``zones``.

    Returns:
        The number of instances.

    Raises:
        ValueError: negative peak, ``users_per_instance <= 0``, ``safety_factor <= 0``, bad
            ``min_instances`` or ``zones``.
        TypeError: a non-numeric or NaN input.

    Example:
        >>> instances_needed(10000, 450, safety_factor=1.3)
        29
    """
    return _instances(peak_users, users_per_instance, "users", safety_factor, min_instances, zones)


def instances_for_rps(
    target_rps: float,
    rps_per_instance: float,
    *,
    safety_factor: float = 1.5,
    min_instances: int = 1,
    zones: int = 1,
) -> int:
    """Instances for a target request rate: ``ceil(target rps x safety / rps per instance)``.

    Same rules and errors as :func:`instances_needed`, with throughput at the SLO in place of
    users.

    Example:
        >>> instances_for_rps(1200, 95, safety_factor=1.2)
        16
    """
    return _instances(target_rps, rps_per_instance, "rps", safety_factor, min_instances, zones)
