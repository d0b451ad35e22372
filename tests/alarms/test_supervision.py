"""The alarm service under supervision: a dead delivery thread is restarted, a dead
evaluation thread ends the process non-zero with the reason, and the next start knows the
last stop was not clean."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from daq.bus import Subscriber
from daq.config import load_config
from daq.supervisor import EXIT_FAILED
from tests.procs import bus_section, free_port, qupdaq


def test_failed_threads_restart_or_end_the_process_with_the_reason(tmp_path: Path) -> None:
    data = {"bus": bus_section(),
            "alarms": {"name": "alarms-sup", "bind": f"tcp://127.0.0.1:{free_port()}",
                       "state_dir": str(tmp_path / "state"), "period_s": 0.1,
                       "status_period_s": 0.5}}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    broker = qupdaq("broker", str(path))
    try:
        broker.wait_line("broker ready")
        doomed = qupdaq("alarms", str(path),
                        env={"QUPDAQ_FAILPOINTS": "alarms-notify@0.5,alarms-eval@3"})
        doomed.wait_line("alarms ready")
        assert doomed.proc.wait(timeout=30) == EXIT_FAILED
        text = "\n".join(doomed.lines)
        assert "the notify thread died (FailpointError" in text and "was restarted" in text
        assert ("alarms failed: alarms alarms-sup: evaluation died (FailpointError: failpoint "
                "'alarms-eval' fired (injected fault)) and cannot be restarted in place") in text
        marker = json.loads((tmp_path / "state" / "alarms-sup" / "alarms.run").read_text())
        assert marker["state"] == "failed" and "evaluation died" in marker["reason"]
        again = qupdaq("alarms", str(path))
        again.wait_line("alarms ready")
        sub = Subscriber(config.bus.subscribe_url, ["status/alarms-sup/"],
                         snapshot_url=config.bus.snapshot_url)
        try:
            msg = sub.recv(10)
            assert msg is not None and msg.meta["last_stop"].startswith("not clean")
            assert "evaluation died" in msg.meta["last_stop"]
        finally:
            sub.close()
        assert again.stop() == 0 and again.lines[-1] == "alarms stopped"
    finally:
        broker.stop()
