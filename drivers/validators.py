"""Validated PyMeasure properties that refuse bad settings with a :class:`SettingOutOfRange`.

PyMeasure validators are plain functions ``validator(value, values)`` and
know nothing about the instrument, the property or the unit, so their
``ValueError`` says "Value of 400 is not in range [0,300]" and no more. This
module adds the missing context without changing the PyMeasure style:

* :func:`control`, :func:`setting` and :func:`measurement` take the same
  arguments as ``Instrument.control`` / ``setting`` / ``measurement`` plus a
  ``unit``. They return a :class:`CheckedProperty` that learns its attribute
  name from the class, and, when the validator refuses a value, raises
  :class:`~drivers.errors.SettingOutOfRange` naming the instrument (the
  instrument's ``name``; for a channel, its parent's name plus the channel
  id), the property, the value, the allowed range and the unit. Nothing is
  written to the instrument in that case.
* Validators with PyMeasure's signature that describe what they allow:
  :func:`in_range` (closed float range), :func:`int_in_range` (integers
  only), :func:`in_set` (discrete values, matching floats within 1 % so
  that ``3.16e-3`` finds the 3.16 mA range), :func:`in_discrete_range`
  (range with a resolution). PyMeasure's own ``strict_range`` /
  ``strict_discrete_set`` also work; their errors are converted too.
* :func:`validate_setting` and :func:`allowed_text` run a property's
  validator without sending anything (what the daemon's
  :class:`~drivers.common.ControlSpec` ``validate`` needs), and
  :func:`require_in_range` / :func:`require_in_set` check arguments of
  driver *methods* (a ramp rate, a curve point) the same way.

Usage::

    from pymeasure.instruments import Channel, Instrument

    from drivers import validators as v

    class Output(Channel):
        channel_label = "output"   # used in messages: "LS372 output 0"

        setpoint = v.control(
            "SETP? {ch}", "SETP {ch},%g",
            "Control the setpoint in kelvin (float).",
            validator=v.in_range, values=(0.0, 300.0), unit="K",
        )
        heater_range = v.control(
            "RANGE? {ch}", "RANGE {ch},%d",
            "Control the heater range as full-scale current in amperes.",
            validator=v.in_set, values={0.0: 0, 31.6e-6: 1, 100e-6: 2}, map_values=True,
            unit="A",
        )

    output.setpoint = 400
    # SettingOutOfRange: LS372 output 0 'setpoint': value 400 K is out of range;
    #                    allowed: 0 to 300 K
    v.validate_setting(output, "setpoint", 12.5)   # -> 12.5, nothing sent

The channel label and the instrument name are found by :func:`instrument_name`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments import validators as pm_validators

from drivers.errors import InstrumentReplyError, SettingOutOfRange

__all__ = [
    "CheckedProperty",
    "Validator",
    "allowed_text",
    "bad_reply",
    "control",
    "describe_allowed",
    "format_number",
    "in_discrete_range",
    "in_range",
    "in_set",
    "instrument_name",
    "int_in_range",
    "measurement",
    "refuse",
    "require_in_range",
    "require_in_set",
    "setting",
    "validate_setting",
]

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


# ---- naming ----------------------------------------------------------------------------------


def instrument_name(obj: Any) -> str:
    """Name an instrument or channel for messages.

    An ``Instrument`` is named by its ``name``. A ``Channel`` by its parent's
    name, its class attribute ``channel_label`` (default ``"channel"``) and its
    id, e.g. ``"LakeShore 372 input 5"``. Properties are never read (a channel's
    ``name`` may well be a property that talks to the instrument).

    Args:
        obj: an instrument, a channel, or anything else.

    Returns:
        The name.
    """
    if isinstance(obj, Channel):
        label = getattr(type(obj), "channel_label", "channel")
        return f"{instrument_name(obj.parent)} {label} {obj.id}"
    own = vars(obj).get("name") if hasattr(obj, "__dict__") else None
    return str(own) if own else type(obj).__name__


# ---- properties ------------------------------------------------------------------------------


class CheckedProperty(property):
    """A PyMeasure property whose refusals name the instrument, the property and the unit.

    Built by :func:`control`, :func:`setting` and :func:`measurement`; reading
    and writing behave exactly like the wrapped PyMeasure property.

    Attributes:
        validator: the wrapped validator (PyMeasure signature).
        values: what the validator checks against.
        unit: the unit of the user-facing value ("" if none).
        attr_name: the attribute name, learnt when the class is created.
        after_set: called as ``after_set(obj, value)`` after a successful write
            (e.g. to keep a driver-side model of the instrument in step).
    """

    def __init__(
        self,
        inner: property,
        *,
        validator: Validator | None,
        values: Any,
        unit: str,
        doc: str,
        after_set: Callable[[Any, Any], None] | None = None,
    ) -> None:
        super().__init__(inner.fget, inner.fset, inner.fdel, doc)
        self.__doc__ = doc  # property subclasses otherwise show the class docstring
        self.inner = inner
        self.after_set = after_set
        self.validator = validator
        self.values = values
        self.unit = unit
        self.attr_name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr_name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return self.inner.__get__(obj, objtype)
        except InstrumentReplyError as exc:
            if exc.instrument:
                raise
            raise InstrumentReplyError(
                instrument=instrument_name(obj),
                command=self.attr_name,
                reply=exc.reply,
                why=str(exc)[len(f"unexpected reply {exc.reply!r}: ") :],
            ) from None

    def __set__(self, obj: Any, value: Any) -> None:
        try:
            self.inner.__set__(obj, value)
        except SettingOutOfRange as exc:
            if exc.instrument:
                raise
            raise self.named(obj, exc) from None
        if self.after_set is not None:
            self.after_set(obj, value)

    def named(self, obj: Any, exc: SettingOutOfRange) -> SettingOutOfRange:
        """Return ``exc`` re-issued with the instrument, property and unit filled in.

        Args:
            obj: the instrument or channel the property was set on.
            exc: the anonymous refusal raised by a validator.

        Returns:
            A new, fully named :class:`SettingOutOfRange`.
        """
        command = f"{self.attr_name}.{exc.command}" if exc.command else self.attr_name
        return SettingOutOfRange(
            instrument=instrument_name(obj),
            command=command,
            value=exc.value,
            allowed=exc.allowed,
            unit=exc.unit or self.unit,
        )

    def validate(self, obj: Any, value: Any) -> Any:
        """Run the validator on ``value`` without sending anything.

        Args:
            obj: the instrument or channel (for the message only).
            value: the value a caller wants to set.

        Returns:
            The value as the validator passes it on (e.g. the matching table entry).

        Raises:
            SettingOutOfRange: the value is refused.
            AttributeError: the property cannot be set.
        """
        if self.fset is None or self.validator is None:
            raise AttributeError(f"{instrument_name(obj)}: '{self.attr_name}' cannot be set")
        try:
            return self.validator(value, self.values)
        except SettingOutOfRange as exc:
            raise self.named(obj, exc) from None

    def allowed(self) -> str:
        """Describe the allowed values in words (without the unit).

        Returns:
            e.g. ``"0 to 300"``; ``""`` for read-only properties.
        """
        if self.validator is None:
            return ""
        return describe_allowed(self.validator, self.values)


def _converting(validator: Validator) -> Validator:
    """Wrap any validator so that its ValueError / TypeError becomes SettingOutOfRange."""

    def checked(value: Any, values: Any) -> Any:
        try:
            return validator(value, values)
        except SettingOutOfRange:
            raise
        except (ValueError, TypeError) as exc:
            raise refuse(value, describe_allowed(validator, values)) from exc

    checked.__name__ = getattr(validator, "__name__", "validator")
    checked.__wrapped__ = validator  # type: ignore[attr-defined]
    return checked


def control(
    get_command: str | None,
    set_command: str | None,
    docs: str,
    *,
    validator: Validator = in_range,
    values: Any = (),
    unit: str = "",
    after_set: Callable[[Any, Any], None] | None = None,
    **kwargs: Any,
) -> CheckedProperty:
    """Build a readable and settable property, like ``Instrument.control``, plus a unit.

    Args:
        get_command: query, ``{ch}`` is the channel id in channels.
        set_command: command with one ``%`` placeholder.
        docs: the property's docstring.
        validator: PyMeasure-style validator; its refusals become
            :class:`SettingOutOfRange`. Default :func:`in_range`.
        values: passed to the validator (and used by ``map_values``).
        unit: the unit of the value as the user sees it.
        after_set: optional ``after_set(obj, value)`` hook run after a successful write.
        **kwargs: any other ``Instrument.control`` argument
            (``map_values``, ``get_process``, ``set_process``, ``cast``, ...).
            ``dynamic`` is not supported.

    Returns:
        The property.
    """
    if kwargs.get("dynamic"):
        raise TypeError("dynamic properties are not supported by drivers.validators")
    wrapped = _converting(validator)
    inner = Instrument.control(
        get_command, set_command, docs, validator=wrapped, values=values, **kwargs
    )
    return CheckedProperty(
        inner, validator=wrapped, values=values, unit=unit, doc=docs, after_set=after_set
    )


def setting(
    set_command: str,
    docs: str,
    *,
    validator: Validator = in_range,
    values: Any = (),
    unit: str = "",
    **kwargs: Any,
) -> CheckedProperty:
    """Build a set-only property, like ``Instrument.setting``, plus a unit.

    Args:
        set_command: command with one ``%`` placeholder.
        docs: the property's docstring.
        validator: PyMeasure-style validator. Default :func:`in_range`.
        values: passed to the validator.
        unit: the unit of the value.
        **kwargs: other ``Instrument.control`` arguments (``map_values``, ``set_process``).

    Returns:
        The property.
    """
    return control(None, set_command, docs, validator=validator, values=values, unit=unit, **kwargs)


def measurement(get_command: str, docs: str, *, unit: str = "", **kwargs: Any) -> CheckedProperty:
    """Build a read-only property, like ``Instrument.measurement``, that records its unit.

    Args:
        get_command: query, ``{ch}`` is the channel id in channels.
        docs: the property's docstring.
        unit: the unit of the value.
        **kwargs: other ``Instrument.measurement`` arguments.

    Returns:
        The property.
    """
    inner = Instrument.measurement(get_command, docs, **kwargs)
    return CheckedProperty(inner, validator=None, values=(), unit=unit, doc=docs)


# ---- helpers for callers ---------------------------------------------------------------------


def _checked_property(obj: Any, attr: str) -> CheckedProperty:
    prop = getattr(type(obj), attr, None)
    if not isinstance(prop, CheckedProperty):
        raise AttributeError(f"{type(obj).__name__}.{attr} is not a validated property")
    return prop


def validate_setting(obj: Any, attr: str, value: Any) -> Any:
    """Check ``value`` for property ``attr`` of ``obj`` without sending anything.

    Args:
        obj: an instrument or channel.
        attr: the name of a property built with this module.
        value: the value a caller wants to set.

    Returns:
        The value as it will be passed on.

    Raises:
        SettingOutOfRange: the value is refused.
        AttributeError: ``attr`` is not a validated, settable property.
    """
    return _checked_property(obj, attr).validate(obj, value)


def allowed_text(obj: Any, attr: str, *, with_unit: bool = True) -> str:
    """Describe the allowed values of property ``attr`` of ``obj``.

    Args:
        obj: an instrument or channel.
        attr: the name of a property built with this module.
        with_unit: append the unit.

    Returns:
        e.g. ``"0 to 300 K"``.
    """
    prop = _checked_property(obj, attr)
    text = prop.allowed()
    return f"{text} {prop.unit}" if with_unit and prop.unit and text else text


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
