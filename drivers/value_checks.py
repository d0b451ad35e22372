"""Plain validators with PyMeasure's signature that refuse with :class:`SettingOutOfRange`.

``validator(value, values) -> value to send``, as PyMeasure expects, but the
refusal is a :class:`~drivers.errors.SettingOutOfRange` that says what is
allowed. :mod:`drivers.validators` re-exports everything here and adds the
properties that give these messages the instrument, property and unit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from pymeasure.instruments import validators as pm_validators

from drivers.errors import InstrumentReplyError, SettingOutOfRange

Validator = Callable[[Any, Any], Any]
"""PyMeasure's validator signature: ``validator(value, values) -> value to send``."""

#: Relative tolerance with which :func:`in_set` matches a float to a table entry.
SET_MATCH_REL_TOL = 1e-2


# ---- formatting ------------------------------------------------------------------------------


def format_number(value: Any) -> str:
    """Format a number compactly for messages (``3.16e-05``, ``300``, ``0.5``).

    Args:
        value: anything; numbers use ``:g``, other values ``str()``.

    Returns:
        The text.
    """
    if isinstance(value, Enum):
        return f"{value.name.lower()} ({value.value})"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):g}"


def _keys(values: Any) -> list[Any]:
    return list(values.keys()) if isinstance(values, Mapping) else list(values)


def describe_allowed(validator: Validator | None, values: Any) -> str:
    """Describe in words what ``validator`` accepts from ``values``.

    Args:
        validator: the validator function (ours or PyMeasure's), or None.
        values: the ``values`` the property passes to it.

    Returns:
        e.g. ``"0 to 300"``, ``"integers 1 to 22"`` or ``"one of 0, 1, 2"``.
    """
    validator = getattr(validator, "__wrapped__", validator)
    rangey = (in_range, pm_validators.strict_range, pm_validators.truncated_range)
    if validator in rangey:
        return f"{format_number(min(values))} to {format_number(max(values))}"
    if validator is int_in_range:
        return f"integers {format_number(min(values))} to {format_number(max(values))}"
    if validator in (in_discrete_range, pm_validators.strict_discrete_range):
        return f"{format_number(min(values))} to {format_number(max(values))}"
    if isinstance(values, type):
        # Structured settings pass their dataclass as ``values``; a ``RULES`` table
        # ({field: (validator, values, unit)}) describes each field.
        rules = getattr(values, "RULES", None)
        if not rules:
            return f"a valid {values.__name__}"
        parts = []
        for field, (field_validator, field_values, unit) in rules.items():
            text = describe_allowed(field_validator, field_values)
            parts.append(f"{field} {text}{' ' + unit if unit else ''}")
        return "; ".join(parts)
    keys = _keys(values)
    return "one of " + ", ".join(format_number(k) for k in keys)


# ---- validators (PyMeasure signature) --------------------------------------------------------


def refuse(value: Any, allowed: str, *, field: str = "", unit: str = "") -> SettingOutOfRange:
    """Build the anonymous refusal a validator raises; :class:`CheckedProperty` names it.

    Validators of structured values (a PID triple, an input set-up) name the
    offending ``field`` and its ``unit``; the property then reports
    ``'<property>.<field>'``.

    Args:
        value: the refused value.
        allowed: what is allowed, in words, without the unit.
        field: the refused field of a structured value, if any.
        unit: the field's unit, if it differs from the property's.

    Returns:
        The exception, to be raised by the caller.
    """
    return SettingOutOfRange(instrument="", command=field, value=value, allowed=allowed, unit=unit)


def bad_reply(reply: Any, why: str) -> InstrumentReplyError:
    """Build the anonymous reply error a reply parser raises; :class:`CheckedProperty` names it.

    Args:
        reply: what the instrument answered.
        why: what is wrong with it.

    Returns:
        The exception, to be raised by the caller.
    """
    return InstrumentReplyError(instrument="", command="", reply=reply, why=why)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def in_range(value: Any, values: Any) -> Any:
    """Accept a real number within ``min(values) .. max(values)``, both included.

    Args:
        value: the value to check; NaN and non-numbers are refused.
        values: at least the two bounds, e.g. ``(0.0, 300.0)``.

    Returns:
        ``value`` unchanged.

    Raises:
        SettingOutOfRange: otherwise.
    """
    low, high = min(values), max(values)
    if _is_real(value) and low <= value <= high:
        return value
    raise refuse(value, describe_allowed(in_range, values))


def int_in_range(value: Any, values: Any) -> int:
    """Accept an integer (or integral float) within ``min(values) .. max(values)``.

    Args:
        value: the value to check.
        values: the bounds, e.g. ``(1, 200)`` or ``range(1, 201)``.

    Returns:
        ``value`` as ``int``.

    Raises:
        SettingOutOfRange: for non-integers and values outside the bounds.
    """
    low, high = min(values), max(values)
    integral = _is_real(value) and math.isfinite(value) and float(value).is_integer()
    if integral and low <= value <= high:
        return int(value)
    raise refuse(value, describe_allowed(int_in_range, values))


def in_set(value: Any, values: Any) -> Any:
    """Accept one of ``values`` (the keys if it is a mapping).

    Floats match an entry within a relative 1 %, so ``0.00316`` and
    ``3.1623e-3`` both select the ``3.16e-3`` entry of a range table; the
    table's own entry is returned, which is what ``map_values`` then looks up.

    Args:
        value: the value to check.
        values: a sequence, set or mapping of allowed values.

    Returns:
        The matching entry of ``values``.

    Raises:
        SettingOutOfRange: when nothing matches.
    """
    keys = _keys(values)
    for key in keys:
        if type(value) is type(key) and value == key:
            return key
    for key in keys:
        if key == value and not isinstance(value, bool):
            return key
    if _is_real(value) and math.isfinite(value):
        for key in keys:
            if _is_real(key) and math.isclose(key, value, rel_tol=SET_MATCH_REL_TOL):
                return key
    raise refuse(value, describe_allowed(in_set, values))


def in_discrete_range(value: Any, values: Any) -> Any:
    """Accept a value within the bounds that is a multiple of the resolution.

    Args:
        value: the value to check.
        values: ``(low, high, step)``.

    Returns:
        ``value`` unchanged.

    Raises:
        SettingOutOfRange: outside the bounds or off the grid.
    """
    low, high, step = values
    on_grid = (
        _is_real(value) and math.isfinite(value) and Decimal(str(value)) % Decimal(str(step)) == 0
    )
    if on_grid and low <= value <= high:
        return value
    raise refuse(value, f"{format_number(low)} to {format_number(high)} in steps of {step}")


def require_in_range(
    value: Any,
    low: float,
    high: float,
    *,
    instrument: str,
    command: str,
    unit: str = "",
    integer: bool = False,
) -> Any:
    """Check an argument of a driver method; for code that is not a property.

    Args:
        value: the value to check.
        low: smallest allowed value.
        high: largest allowed value.
        instrument: instrument name for the message (see :func:`instrument_name`).
        command: method or argument name for the message.
        unit: unit for the message.
        integer: also require an integer (returned as ``int``).

    Returns:
        The value (as ``int`` when ``integer``).

    Raises:
        SettingOutOfRange: the value is refused.
    """
    validator = int_in_range if integer else in_range
    try:
        return validator(value, (low, high))
    except SettingOutOfRange as exc:
        raise SettingOutOfRange(
            instrument=instrument, command=command, value=value, allowed=exc.allowed, unit=unit
        ) from None


def require_in_set(
    value: Any,
    values: Iterable[Any] | Mapping[Any, Any],
    *,
    instrument: str,
    command: str,
    unit: str = "",
) -> Any:
    """Check that an argument of a driver method is one of ``values``.

    Args:
        value: the value to check.
        values: allowed values (keys, for a mapping).
        instrument: instrument name for the message.
        command: method or argument name for the message.
        unit: unit for the message.

    Returns:
        The matching entry (see :func:`in_set`).

    Raises:
        SettingOutOfRange: the value is refused.
    """
    table = values if isinstance(values, Mapping) else list(values)
    try:
        return in_set(value, table)
    except SettingOutOfRange as exc:
        raise SettingOutOfRange(
            instrument=instrument, command=command, value=value, allowed=exc.allowed, unit=unit
        ) from None
