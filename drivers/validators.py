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

from collections.abc import Callable
from typing import Any

from pymeasure.instruments import Channel, Instrument

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.value_checks import (
    Validator,
    bad_reply,
    describe_allowed,
    format_number,
    in_discrete_range,
    in_range,
    in_set,
    int_in_range,
    refuse,
    require_in_range,
    require_in_set,
)

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
