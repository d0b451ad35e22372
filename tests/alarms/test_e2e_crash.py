"""The alarm service killed at the two exact steps of a delivery, as real processes.

A notice goes to a real SMTP server (aiosmtpd). The service is killed with
SIGKILL (a failpoint, ``kill:...``, at an exact step of the notification
thread) and started again each time:

1. killed just after the mail server accepted the notice, before anything was
   written down: the restarted service cannot know whether it arrived, and
   sends it once more, marked as a possible repeat (never silently lost);
2. killed just after that repeat was written down in the delivery journal,
   before the evaluation thread heard of it (so the archive never did): the
   restarted service takes the journal's word, sends nothing, and tells the
   archive.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import yaml

from daq.bus import Publisher, Subscriber
from daq.config import load_config
from daq.logger.history import HistoryClient
from daq.messages import scalar
from tests.alarms.receivers import SmtpReceiver
from tests.procs import Service, bus_section, free_port, logger_section, qupdaq
from tests.waiting import Feed, wait_until

NAME = "alarms-crash"


def _config(tmp_path: Path, smtp: SmtpReceiver) -> Path:
    data: dict[str, Any] = {
        "lab": {"name": "crash-lab"},
        "bus": bus_section(),
        "logger": logger_section(tmp_path, "logger-crash", sinks=["sqlite"]),
        "alarms": {
            "name": NAME, "bind": f"tcp://127.0.0.1:{free_port()}",
            "state_dir": str(tmp_path / "state"), "period_s": 0.1, "status_period_s": 1.0,
            # the rule's notice is the only mail (a machine short of disk must not send one)
            "system": {"disk_severity": "warning", "notify_failed_severity": "warning"},
            "notifications": {"routes": {"critical": [smtp.url()]}, "min_interval_s": 0,
                              "retry_s": 0.5, "max_retry_s": 1.0},
            "rules": [{"name": "still_hot", "severity": "critical",
                       "when": {"stream": "f1/still", "above": 1.0},
                       "guidance": "Turn the still heater down."}]},
    }
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _killed_by_its_failpoint(service: Service) -> None:
    status = service.wait_exit(60)
    assert status == -signal.SIGKILL, "\n".join(service.lines[-30:])


def test_a_notice_in_flight_at_a_kill_is_repeated_once_marked_and_a_journalled_one_never(
        tmp_path: Path) -> None:
    with SmtpReceiver() as smtp:
        path = _config(tmp_path, smtp)
        config = load_config(path)
        running: list[Service] = []
        pub: Publisher | None = None
        feed: Feed | None = None
        try:
            for args in (("broker",), ("logger",)):
                running.append(qupdaq(*args, str(path)))
                running[-1].wait_line(f"{args[0]} ready")
            bus = config.bus
            feed = Feed(Subscriber(bus.subscribe_url, [f"alarm/{NAME}/"],
                                   snapshot_url=bus.snapshot_url))

            # 1. killed with the notice accepted by the mail server, nothing written down
            first = qupdaq("alarms", str(path),
                           env={"QUPDAQ_FAILPOINTS": "kill:alarms-notify-sent"})
            running.append(first)
            first.wait_line("alarms ready")
            pub = Publisher(bus.publish_url, name="test-inputs", heartbeat_s=0.5)
            assert pub.wait_for_subscriber("data/f1/still", timeout_s=20)
            pub.publish(scalar("f1", "still", 2.0))
            raised = feed.transition("still_hot", "raised", 30)
            _killed_by_its_failpoint(first)
            assert smtp.subjects() == ["CRITICAL still_hot: f1/still = 2 is above 1"]

            # 2. the restart repeats it, marked; killed once the repeat is journalled
            second = qupdaq("alarms", str(path),
                            env={"QUPDAQ_FAILPOINTS": "kill:alarms-notify-journalled"})
            running.append(second)
            second.wait_line("alarms ready")
            _killed_by_its_failpoint(second)
            [_, repeat] = smtp.mails()
            assert repeat["subject"] == ("CRITICAL still_hot: possibly a repeat: "
                                         "f1/still = 2 is above 1")
            assert "it may have reached you already" in repeat["body"]
            assert "Turn the still heater down." in repeat["body"]

            # 3. the journal knows it was delivered: nothing more is sent
            third = qupdaq("alarms", str(path))
            running.append(third)
            ready = third.wait_line("alarms ready")
            assert "restored=1" in ready
            told = feed.wait(lambda m: m.channel == "still_hot"
                             and m.meta.get("transition") == "notified"
                             and m.meta["detail"].get("from") == "delivery journal", 30,
                             "the journalled delivery published")
            assert told.meta["occurrence"] == raised.meta["occurrence"]
            assert told.meta["state"] == "active_unack"  # still there, still unacknowledged
            assert told.meta["detail"]["url"] == f"mailto://127.0.0.1:{smtp.port}"
            time.sleep(3.0)  # a resend (retry 0.5 s) would have come by now
            assert len(smtp.envelopes) == 2
            assert config.logger is not None
            with HistoryClient(config.logger.history_endpoint) as history:
                events = wait_until(lambda: [
                    e for e in history.events_under(f"alarm/{NAME}/still_hot", kind="alarm")
                    if e["meta"]["detail"].get("from") == "delivery journal"], "the archive")
            assert events[0]["meta"]["delivered"]["raise"]
        finally:
            if pub is not None:
                pub.close()
            if feed is not None:
                feed.close()
            for service in reversed(running):
                service.stop()
