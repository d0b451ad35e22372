"""Automated actions: a rule's ``set``/``call`` sent through a daemon's control endpoint.

The alarm service acts like any client of the daemon (:class:`daq.client.Lab`),
so the daemon's limits, roles (with CURVE the service's key needs the
``operator`` role), leases and audit trail apply to it as to a person; the
audit names the alarm that acted. Requests block until the daemon answers,
so they run in this module's own thread (:class:`ActionRunner`), one
:class:`~daq.client.Lab` (one DEALER) per daemon, owned by that thread; the
outcomes come back on :attr:`ActionRunner.results`.

:func:`resolve_daemons` decides at start which daemon each action goes to:
the one the rule names, the only daemon of a single-daemon config, or in a
facility the daemon whose instruments have the target's source.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from daq.alarms.config import ActionOp
from daq.alarms.engine import ActionRequest
from daq.config import LabConfig
from daq.errors import ConfigError, QupdaqError
from daq.failpoints import failpoint

log = logging.getLogger(__name__)


def resolve_daemons(lab: LabConfig) -> dict[str, str | None]:
    """For each rule with an action: the facility daemon (its ``daemons`` key) it goes to,
    None for a single-daemon config.

    Raises:
        ConfigError: the daemon cannot be found (naming the rule's key path).
    """
    assert lab.alarms is not None
    found: dict[str, str | None] = {}
    for i, rule in enumerate(lab.alarms.rules):
        action = rule.action
        if action is None:
            continue
        where = f"alarms.rules[{i}].action"
        if not lab.daemons:
            if action.daemon not in (None, lab.daemon.name):
                raise ConfigError(f"no daemon {action.daemon!r} in this file (it has "
                                  f"{lab.daemon.name})", file=lab.source, key_path=where)
            if not lab.instruments:
                raise ConfigError("an action needs a daemon with instruments",
                                  file=lab.source, key_path=where)
            found[rule.name] = None
            continue
        if action.daemon is not None:
            if action.daemon not in lab.daemons:
                raise ConfigError(f"no daemon {action.daemon!r}; this file has "
                                  f"{', '.join(lab.daemons)}", file=lab.source,
                                  key_path=f"{where}.daemon")
            found[rule.name] = action.daemon
            continue
        source = action.target.split("/", 1)[0]
        owners = [name for name, section in lab.daemons.items()
                  if any(inst.source == source for inst in section.instruments.values())]
        if len(owners) != 1:
            raise ConfigError(f"{'no' if not owners else 'more than one'} daemon has "
                              f"instruments of source {source!r}: name it (daemon: ...)",
                              file=lab.source, key_path=where)
        found[rule.name] = owners[0]
    return found


class ActionRunner:
    """Sends automated actions from its own thread (see the module docstring).

    Args:
        lab: the lab config (daemon endpoints and keys).
        daemons: :func:`resolve_daemons`'s answer.
        service: the alarm service's name (in the audit trail's client name).
        timeout_s: how long to wait for a daemon's answer.
    """

    def __init__(self, lab: LabConfig, daemons: dict[str, str | None], *, service: str,
                 timeout_s: float = 10.0) -> None:
        self.lab = lab
        self.daemons = daemons
        self.service = service
        self.timeout_s = timeout_s
        self.inbox: queue.Queue[ActionRequest | None] = queue.Queue()
        self.results: queue.Queue[tuple[ActionRequest, dict[str, Any]]] = queue.Queue()
        self.last_error = ""
        self.sent = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="alarms-actions", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, request: ActionRequest) -> None:
        """Queue an action (any thread)."""
        self.inbox.put(request)

    def _main(self) -> None:
        from daq.client import Lab  # the client module pulls in the bus; only this thread needs it

        labs: dict[str | None, Lab] = {}
        try:
            while True:
                failpoint("alarms-actions")
                try:
                    request = self.inbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                if request is None:
                    return
                daemon = self.daemons.get(request.alarm)
                try:
                    lab = labs.get(daemon)
                    if lab is None:
                        lab = labs[daemon] = Lab(self.lab, daemon=daemon,
                                                 client=f"alarms {self.service}",
                                                 timeout_s=self.timeout_s)
                    result = self._send(lab, request)
                except QupdaqError as exc:
                    result = {"ok": False, "error": str(exc)}
                self.sent += 1
                if not result.get("ok"):
                    log.error("action of alarm %s (%s %s) failed: %s", request.alarm,
                              request.action.op.value, request.action.target,
                              result.get("error"))
                self.results.put((request, result))
        except BaseException as exc:  # the supervisor sees the thread gone and restarts it
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("action thread died")
            raise
        finally:
            for lab in labs.values():
                lab.close()

    def _send(self, lab: Any, request: ActionRequest) -> dict[str, Any]:
        action = request.action
        client = f"alarm {request.alarm} ({self.service}): {request.reason}"[:100]
        if action.op is ActionOp.SET:
            return dict(lab.request("set", target=action.target, value=action.value,
                                    client=client))
        return dict(lab.request("call", target=action.target, args=dict(action.args),
                                client=client))
