"""Keithley source-measure units (2400, 2450), thin wrappers of PyMeasure's drivers."""
