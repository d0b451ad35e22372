"""Bluefors dilution refrigerators: a reader for the vendor software's log directory.

``BlueforsLogReader`` (:mod:`drivers.bluefors.logreader`) follows the daily
log files and returns typed :class:`~drivers.bluefors.parsing.Sample` s; the
line formats live in :mod:`drivers.bluefors.parsing`.
"""

from drivers.bluefors.logreader import BlueforsLogReader, Cursor
from drivers.bluefors.parsing import Sample

__all__ = ["BlueforsLogReader", "Cursor", "Sample"]
