"""SQUID readout electronics: the vendor-neutral :class:`SquidController` interface."""

from drivers.squid.interface import SQUID_SETTINGS, LoopMode, SquidController

__all__ = ["SQUID_SETTINGS", "LoopMode", "SquidController"]
