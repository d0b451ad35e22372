"""What Lake Shore controllers have in common on the wire: number formats, replies, the base class.

* :func:`decimal_text` writes a number the way the controllers read it
  (plain decimal, no exponent, no trailing zeros).
* :func:`reply_float`, :func:`reply_int`, :func:`reply_fields`,
  :func:`unquote` parse replies such as ``+293.873E+00``, ``007`` or
  ``1,007,003,21,1`` and raise an (unnamed) :class:`InstrumentReplyError`
  for anything else; :class:`drivers.validators.CheckedProperty` names it.
* :class:`LakeShoreInstrument` is the common base of the Model 372 and 336
  drivers: CR LF terminations, the serial settings (57600 baud, 7 data bits,
  odd parity, 1 stop bit), ``includeSCPI=False`` and an ``identity`` query.
* :func:`check_field` and :func:`field_property` handle structured settings
  (``INSET``, ``INTYPE``, ``OUTMODE``...): a dataclass holds all fields, the
  group property reads and writes it whole, and one property per field reads
  or read-modify-writes a single field after validating it.

A structured setting is a frozen dataclass with ``from_reply(reply)``
(class method), ``check(field, value)`` (class method, validates one field)
and ``wire()`` (validates everything, returns the tuple of argument texts);
the group property is built with ``values=<the dataclass>`` and
:func:`structured` as validator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pymeasure.instruments import Instrument

from drivers.errors import SettingOutOfRange
from drivers.validators import bad_reply, instrument_name, measurement, refuse


def decimal_text(value: Any) -> str:
    """Format a number as plain decimal text, e.g. ``0.0125``, ``25000``, ``-3.5``.

    Lake Shore firmware reads plain decimals; exponent notation is avoided.
    The shortest text that round-trips the float is used.

    Args:
        value: a real number.

    Returns:
        The text.
    """
    text = format(Decimal(repr(float(value))).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def reply_float(value: Any) -> float:
    """Parse one numeric reply field (``+293.873E+00``, `` 1.2``).

    Args:
        value: the field, as text or already cast by PyMeasure.

    Returns:
        The number.

    Raises:
        InstrumentReplyError: the field is not a number.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise bad_reply(value, "expected a number") from None


def reply_int(value: Any) -> int:
    """Parse one integer reply field (``007``, ``+01``, ``1.0``).

    Args:
        value: the field.

    Returns:
        The integer.

    Raises:
        InstrumentReplyError: the field is not an integer.
    """
    number = reply_float(value)
    if not number.is_integer():
        raise bad_reply(value, "expected an integer")
    return int(number)


def reply_fields(value: Any, count: int, maximum: int | None = None) -> list[str]:
    """Split a comma-separated reply into stripped text fields and check how many.

    Args:
        value: the whole reply (``str``) or PyMeasure's already split list.
        count: the least number of fields expected.
        maximum: the most fields accepted (default ``count``).

    Returns:
        The fields.

    Raises:
        InstrumentReplyError: wrong number of fields.
    """
    if isinstance(value, str):
        fields = value.strip().split(",")
    elif isinstance(value, Sequence):
        fields = [str(v) for v in value]
    else:
        fields = [str(value)]
    fields = [f.strip() for f in fields]
    top = count if maximum is None else maximum
    if not count <= len(fields) <= top:
        wanted = str(count) if top == count else f"{count} to {top}"
        raise bad_reply(value, f"expected {wanted} comma-separated fields")
    return fields


def unquote(value: Any) -> str:
    """Strip the padding and the optional double quotes around a text field.

    Args:
        value: e.g. ``'"MXC RuOx       "'`` or ``'MXC RuOx   '``.

    Returns:
        ``"MXC RuOx"``.
    """
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text.strip()


def reply_text(value: Any) -> str:
    """Parse a whole text reply (PyMeasure may have split it at commas).

    Args:
        value: the reply as ``str`` or list of pieces.

    Returns:
        The text, unquoted and stripped.
    """
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return unquote(value)


class LakeShoreInstrument(Instrument):
    """Common base of the Lake Shore drivers; the constructor sends nothing.

    Args:
        adapter: VISA resource string (e.g. ``TCPIP::192.168.1.20::7777::SOCKET``)
            or a PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: further adapter settings (``timeout`` in ms, ...).
    """

    def __init__(self, adapter: Any, name: str = "Lake Shore", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\r\n")
        kwargs.setdefault("write_termination", "\r\n")
        kwargs.setdefault("timeout", 2000)
        kwargs.setdefault(
            "asrl", {"baud_rate": 57600, "data_bits": 7, "parity": 1, "stop_bits": 10}
        )
        super().__init__(adapter, name, includeSCPI=False, **kwargs)

    identity = measurement(
        "*IDN?",
        """Get the identity as a list: maker, model, serial number, firmware (list of str).""",
        cast=str,
    )

    def identify(self) -> str:
        """The identity as one line (``LSCI,MODEL372,...``): the daemon's connect check."""
        return ",".join(str(part) for part in self.identity)


def check_field(value: Any, validator: Any, values: Any, *, field: str, unit: str = "") -> Any:
    """Validate one field of a structured setting, naming the field in the refusal.

    Args:
        value: the field's value.
        validator: a validator from :mod:`drivers.validators`.
        values: what the validator checks against.
        field: the field name for the message.
        unit: the field's unit for the message.

    Returns:
        What the validator returns.

    Raises:
        SettingOutOfRange: unnamed; the property or :func:`field_property` names it.
    """
    try:
        return validator(value, values)
    except SettingOutOfRange as exc:
        raise refuse(value, exc.allowed, field=field, unit=unit) from None


def validate_field(obj: Any, group: str, field: str, value: Any, command: str = "") -> Any:
    """Validate a new value for one field of a structured setting, sending nothing.

    Args:
        obj: the instrument or channel.
        group: name of the structured property (e.g. ``"ramp"``).
        field: the field (e.g. ``"rate"``).
        value: the new value.
        command: name for the message (default: the field name).

    Returns:
        The validated value.

    Raises:
        SettingOutOfRange: named after ``obj`` and ``command``.
    """
    prop = getattr(type(obj), group)
    try:
        return prop.values.check(field, value)
    except SettingOutOfRange as exc:
        raise SettingOutOfRange(
            instrument=instrument_name(obj),
            command=command or field,
            value=value,
            allowed=exc.allowed,
            unit=exc.unit,
        ) from None


class FieldProperty(property):
    """A property for one field of a structured setting; knows its own attribute name."""

    attr_name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr_name = name


def field_property(group: str, field: str, doc: str, settable: bool = True) -> property:
    """A property for one field of a structured setting (read-modify-write when set).

    Reading queries the whole group (e.g. ``INSET?``) and returns one field.
    Setting first validates the new field value with the group class's
    ``check(field, value)`` -- nothing is sent if it is refused -- then reads
    the group, replaces the field and writes the group back.

    Args:
        group: name of the structured :class:`~drivers.validators.CheckedProperty`
            on the same class (e.g. ``"scan_settings"``).
        field: the dataclass field (e.g. ``"dwell"``).
        doc: the docstring.
        settable: whether to provide a setter.

    Returns:
        The property.
    """

    prop: FieldProperty

    def fget(self: Any) -> Any:
        return getattr(getattr(self, group), field)

    def fset(self: Any, value: Any) -> None:
        checked = validate_field(self, group, field, value, prop.attr_name)
        current = getattr(self, group)
        setattr(self, group, dataclasses.replace(current, **{field: checked}))

    prop = FieldProperty(fget, fset if settable else None, doc=doc)
    prop.__doc__ = doc  # property subclasses otherwise show the class docstring
    return prop


def structured(value: Any, values: Any) -> tuple[str, ...]:
    """Validator for a structured setting: ``values`` is its dataclass.

    Accepts an instance of the dataclass or a tuple of its fields.

    Args:
        value: the new setting.
        values: the dataclass type.

    Returns:
        The wire argument texts, from ``value.wire()``.

    Raises:
        SettingOutOfRange: unnamed; a field is refused (named in ``command``).
    """
    if isinstance(value, tuple) and not isinstance(value, values):
        try:
            value = values(*value)
        except TypeError:
            raise refuse(value, f"a {values.__name__} or a tuple of its fields") from None
    if not isinstance(value, values):
        raise refuse(value, f"a {values.__name__}")
    result: tuple[str, ...] = value.wire()
    return result


def reply_enum(enum: Any, value: Any) -> Any:
    """Parse an integer reply field into an ``IntEnum`` / ``IntFlag`` member.

    Args:
        enum: the enum class.
        value: the field.

    Returns:
        The member.

    Raises:
        InstrumentReplyError: not an integer, or not a known code.
    """
    try:
        return enum(reply_int(value))
    except ValueError:
        raise bad_reply(value, f"not a {enum.__name__} code") from None


class Structured:
    """Mix-in for the frozen dataclasses of structured settings.

    Subclasses set ``RULES``: ``{field: (validator, values, unit)}``.
    """

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {}

    @classmethod
    def check(cls, field: str, value: Any) -> Any:
        """Validate one field.

        Args:
            field: the field name.
            value: its new value.

        Returns:
            The validated value (e.g. the matching table entry).

        Raises:
            SettingOutOfRange: unnamed, with ``command`` set to the field.
        """
        validator, values, unit = cls.RULES[field]
        return check_field(value, validator, values, field=field, unit=unit)

    def checked(self) -> dict[str, Any]:
        """Validate every field that has a rule.

        Returns:
            ``{field: validated value}``.

        Raises:
            SettingOutOfRange: unnamed, for the first refused field.
        """
        return {name: self.check(name, getattr(self, name)) for name in self.RULES}
