"""Keysight instruments: InfiniiVision oscilloscopes used as waveform digitizers."""
