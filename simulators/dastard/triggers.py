"""When each channel triggers: Poisson photon arrivals on the sample clock, with a hold-off.

Photons arrive at random (a Poisson process of the configured rate per
channel). A channel cannot trigger again within one record of its last
trigger (an edge trigger re-arms only after the record it made), so the
arrivals form a dead-time-modified Poisson process: each gap is the hold-off
plus an exponential wait whose mean is chosen so that the mean rate is still
the configured one. Times are frame indices (samples since the run began).

All channels are drawn together, a few vectorised steps per batch.
"""

from __future__ import annotations

import numpy as np


class TriggerSchedule:
    """Trigger frames of every channel, drawn ahead and handed out in frame order.

    Args:
        channels: number of channels.
        rate_hz: mean triggers per second per channel (0: none).
        holdoff_frames: minimum frames between two triggers of one channel.
        sample_period_s: seconds per frame.
        rng: the random generator.
        start_frame: the first frame of the run.
    """

    def __init__(self, channels: int, rate_hz: float, holdoff_frames: int,
                 sample_period_s: float, rng: np.random.Generator, start_frame: int = 0) -> None:
        self.channels = channels
        self.holdoff = holdoff_frames
        self._rng = rng
        if rate_hz > 0:
            mean_gap_frames = 1.0 / (rate_hz * sample_period_s)
            self._scale = max(mean_gap_frames - holdoff_frames, 1.0)
        else:
            self._scale = float("inf")
        # The first trigger: a plain exponential wait (no previous trigger to hold off from).
        self._next = start_frame + self._draw(channels)

    def _draw(self, n: int) -> np.ndarray:
        if not np.isfinite(self._scale):
            return np.full(n, np.inf)
        return self._rng.exponential(self._scale, n)

    def take(self, until_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Every trigger before ``until_frame`` not yet taken, sorted by frame.

        Returns:
            (channel indices, trigger frames), int64 arrays of equal length.
        """
        chans: list[np.ndarray] = []
        frames: list[np.ndarray] = []
        nxt = self._next
        while True:
            due = np.flatnonzero(nxt < until_frame)
            if due.size == 0:
                break
            chans.append(due)
            frames.append(np.floor(nxt[due]).astype(np.int64))
            nxt[due] += self.holdoff + self._draw(due.size)
        if not chans:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        channel = np.concatenate(chans).astype(np.int64)
        frame = np.concatenate(frames)
        order = np.argsort(frame, kind="stable")
        return channel[order], frame[order]

    def skip(self, lo_frame: int, hi_frame: int) -> None:
        """Frames ``[lo, hi)`` were lost at the source: no trigger can fall in them.

        A Poisson process has no memory, so a channel whose next arrival fell
        in the gap simply waits afresh from ``hi``.
        """
        lost = np.flatnonzero((self._next >= lo_frame) & (self._next < hi_frame))
        self._next[lost] = hi_frame + self._draw(lost.size)
