"""Waiting in end-to-end tests: for a bus message (kept, so a wait can look back) or for a
condition on an outside server's side that sends no event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daq.bus import Subscriber
from daq.messages import Kind, Message


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll ``condition`` until it is true and return its value (no event to wait on)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Feed:
    """A subscriber that keeps everything it received, so a wait can find an earlier message."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.messages: list[Message] = []

    def close(self) -> None:
        self.sub.close()

    def wait(self, predicate: Callable[[Message], bool], timeout_s: float = 30.0,
             what: str = "the expected message", since: Message | None = None) -> Message:
        """The first message (after ``since``) matching ``predicate``, waiting for more."""
        start = 0 if since is None else self.messages.index(since) + 1
        for msg in self.messages[start:]:
            if predicate(msg):
                return msg
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            msg = self.sub.recv(left)
            if msg is None:
                continue
            self.messages.append(msg)
            if predicate(msg):
                return msg
        raise AssertionError(f"never came: {what}; alarm transitions seen: "
                             f"{self.transitions()}")

    def transition(self, alarm: str, transition: str, timeout_s: float = 60.0) -> Message:
        """The first ``alarm/...`` message of ``alarm`` making ``transition``."""
        return self.wait(lambda m: m.kind is Kind.ALARM and m.channel == alarm
                         and m.meta.get("transition") == transition, timeout_s,
                         f"{alarm} {transition}")

    def transitions(self, alarm: str | None = None) -> list[tuple[str, str, str]]:
        """(alarm, transition, state) of every alarm message received so far."""
        return [(m.channel, m.meta["transition"], m.meta["state"]) for m in self.messages
                if m.kind is Kind.ALARM and (alarm is None or m.channel == alarm)]
