"""Simulated time shared by every model of one simulated lab.

Interface:

* :class:`SimClock` ``(time_scale=1.0, start_s=0.0)``: ``now()`` returns the
  simulated seconds since the clock was made, ``time_scale`` times the wall
  seconds elapsed (plus any manual :meth:`SimClock.advance`). A scale of
  1000 runs a cool-down a thousand times faster than real time; a scale of 0
  freezes the clock so that a test moves it only with ``advance``.

Physics models are not stepped by a thread: a server that needs the state
asks the model to catch up to ``clock.now()`` under the model's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """Simulated seconds that run ``time_scale`` times faster than the wall clock.

    Args:
        time_scale: simulated seconds per wall second; 0 freezes the clock.
        start_s: the simulated time at creation.
        wall: the monotonic wall clock (replaceable in tests).

    Raises:
        ValueError: a negative or non-finite time scale.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_scale(time_scale)
        self._wall = wall
        self._lock = threading.Lock()
        self._scale = float(time_scale)
        self._anchor_wall = wall()
        self._anchor_sim = float(start_s)

    @property
    def time_scale(self) -> float:
        """Simulated seconds per wall second."""
        return self._scale

    def now(self) -> float:
        """The simulated time in seconds; never decreases."""
        with self._lock:
            return self._anchor_sim + self._scale * (self._wall() - self._anchor_wall)

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed from now on; simulated time stays continuous.

        Args:
            time_scale: simulated seconds per wall second; 0 freezes the clock.
        """
        _check_scale(time_scale)
        with self._lock:
            wall = self._wall()
            self._anchor_sim += self._scale * (wall - self._anchor_wall)
            self._anchor_wall = wall
            self._scale = float(time_scale)

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward (a frozen clock moves only this way).

        Args:
            seconds: how far to jump; must not be negative.

        Returns:
            The new simulated time.
        """
        if not seconds >= 0:
            raise ValueError(f"SimClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._anchor_sim += float(seconds)
            return self._anchor_sim + self._scale * (self._wall() - self._anchor_wall)


def _check_scale(time_scale: float) -> None:
    if not (time_scale >= 0 and time_scale < float("inf")):
        raise ValueError(
            f"SimClock: time_scale {time_scale!r} is out of range; allowed: 0 or more (finite)"
        )
