"""The terminal progress bar of a run: steps done, the step being done, ETA, pauses shown.

A thin wrapper around ``tqdm`` writing to stderr (stdout stays for the
run's one-line results). The ETA is the engine's own (time per completed
step, pauses excluded, PyMeasure-style), not tqdm's rate, so a pause does
not make the estimate jump.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from daq.runs.documents import Phase, Progress


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """A progress bar, or nothing when disabled (tests, services).

    Args:
        enabled: draw it.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: tqdm | None = None

    def reset(self, total: int) -> None:
        """(Re)start with ``total`` steps."""
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {postfix}")
        else:
            self._bar.total = total
            self._bar.refresh()

    def update(self, progress: Progress) -> None:
        """Show ``progress``."""
        if self._bar is None:
            return
        self._bar.n = progress.done
        state = "PAUSED " if progress.phase is Phase.PAUSED else ""
        self._bar.set_description_str(f"{state}{progress.step[:40]}", refresh=False)
        self._bar.set_postfix_str(f"elapsed {_clock(progress.elapsed_s)} "
                                  f"ETA {_clock(progress.eta_s)}", refresh=False)
        self._bar.refresh()

    def close(self, status: str) -> None:
        """Finish the bar with the run's status."""
        if self._bar is not None:
            self._bar.set_description_str(status, refresh=False)
            self._bar.close()
            self._bar = None
