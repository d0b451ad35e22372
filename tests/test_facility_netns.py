"""One PC per fridge, over real network links: the facility survives losing one fridge's link.

The facility of ``configs/facility.yaml`` runs as it would in the lab: each
fridge's acquisition PC (its daemon and, standing in for its instruments,
its simulated fridge) in a network namespace of its own, joined to the
server's namespace by its own veth pair (``tests/netns.py``); the server
runs the broker, the logger on PostgreSQL (the scale-out store, HDF5 beside
it) and the alarm service when the config has one. The config keeps its
ports (every namespace is a fresh machine, so they are free) and gets the
network's addresses: the server's service address for the bus, the logger
and the alarms, each PC's own address for its control endpoint. Every
endpoint that crosses a link runs CURVE: each host has its own identity key
and a config file of its own that holds only that host's secrets; the
broker admits each PC as a publisher, the logger admits each PC only as its
daemon's name.

One fridge's link is cut for 60 s, then restored. The other three never
pause (a 1 s channel of each keeps arriving at the server, and the logger
keeps acknowledging them), the cut fridge's publisher goes stale on the live
path within two heartbeats, and once the link is back and every daemon
stopped cleanly, PostgreSQL holds every message and sample of all four
fridges exactly once: nothing unaccounted, no gap, one session each. The
figures (samples per fridge, losses, the logger's duplicates, how soon the
cut fridge went stale and how soon it was back) are printed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq.auth

from simulators.config import load_simulation_config
from tests.archive_check_pg import read_archive_pg
from tests.netns import NetnsService, Network, unavailable
from tests.pg_cluster import PostgresCluster, initdb_binary
from tests.procs import ROOT, Service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

FACILITY = ROOT / "configs" / "facility.yaml"
#: The fridge whose link is cut (a fridge without the detector: its PC is the plain case).
CUT = "fridge2"
CUT_S = 60.0
#: Polled every 1 s on every fridge (the LS336's 50 K stage input).
CHANNEL = "t50k"
MAX_GAP_S = 2.5
#: Undisturbed data before the cut, so that the gap check sees before, during and after.
BEFORE_S = 10.0
#: The longest the cut fridge may take to be caught up once its link is back. Nothing in
#: the bus or the reliable path reconnects after a silent outage: each TCP connection
#: resends when the kernel retries, which may be as late as TCP's longest back-off (120 s).
CATCH_UP_S = 150.0
#: A status from after the restore whose oldest unacknowledged message is younger than
#: this: the outage's backlog has been acknowledged by the logger.
CAUGHT_UP_AGE_S = 5.0


@dataclass(frozen=True)
class Key:
    """One CURVE key pair in certificate files."""

    public: str
    secret_file: str


def make_keys(directory: Path, names: list[str]) -> dict[str, Key]:
    """A certificate pair per name (``zmq.auth.create_certificates``)."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in names:
        _, secret_file = zmq.auth.create_certificates(directory, name)
        public, _ = zmq.auth.load_certificate(secret_file)
        keys[name] = Key(public.decode("ascii"), str(secret_file))
    return keys


def _rehost(url: str, host: str) -> str:
    """The same port at another address (``tcp://127.0.0.1:7220`` -> ``tcp://HOST:7220``)."""
    return f"tcp://{host}:{url.rsplit(':', 1)[1]}"


def host_configs(facility: dict[str, Any], net: Network, keys: dict[str, Key],
                 dsn: str, tmp_path: Path) -> dict[str, Path]:
    """The facility on the network: one config file per host.

    Hosts: ``server`` (broker, logger, alarms), each fridge (its daemon) and
    ``observer`` (the test's own view from the server). Each file has its
    host's identity, and the server secret of an endpoint only where that
    endpoint runs (everywhere else its public key): no PC holds a key it does
    not need.
    """
    server = net.service_address
    fridges = list(facility["daemons"])
    daemon_names = {f: facility["daemons"][f]["daemon"]["name"] for f in fridges}
    alarms_name = facility["alarms"].get("name", "alarms") if facility.get("alarms") else None
    paths = {}
    for host in ("server", *fridges, "observer"):
        data = copy.deepcopy(facility)

        def curve(endpoint: str, runs_on: str, clients: dict[str, str],
                  host: str = host) -> dict[str, Any]:
            key = keys[endpoint]
            section: dict[str, Any] = {"clients": {keys[k].public: role
                                                   for k, role in clients.items()}}
            if host == runs_on:
                section["server_secret_file"] = key.secret_file
            else:
                section["server_public"] = key.public
            return section

        data["lab"]["data_dir"] = str(tmp_path / host)  # each machine its own disk
        data["identity"] = {"public_key": keys[host].public,
                            "secret_key_file": keys[host].secret_file}
        bus = data["bus"]
        bus["host"] = server
        bus["curve"] = curve("broker", "server", {"server": "publisher", "observer": "subscriber",
                                                  **{f: "publisher" for f in fridges}})
        logger = data["logger"]
        logger["endpoint"] = _rehost(logger["endpoint"], server)
        logger["history_endpoint"] = _rehost(logger["history_endpoint"], server)
        logger["directory"] = str(tmp_path / "server" / "archive")
        logger["sinks"] = ["postgresql", "hdf5"]
        logger["postgresql_dsn"] = dsn
        # Each PC may archive only as its own daemon; the server's key is the alarm service's.
        logger["curve"] = curve("logger", "server", {
            **{f: daemon_names[f] for f in fridges}, "observer": "reader",
            "server": alarms_name or "reader"})
        if alarms_name is not None:
            alarms = data["alarms"]
            alarms["bind"] = _rehost(alarms.get("bind", "tcp://127.0.0.1:7130"), server)
            alarms["curve"] = curve("alarms", "server", {f: "daemon" for f in fridges})
        for fridge in fridges:
            daemon = data["daemons"][fridge]["daemon"]
            daemon["logger_url"] = logger["endpoint"]
            if alarms_name is not None:
                daemon["alarms_url"] = data["alarms"]["bind"]
            control = daemon.setdefault("control", {})
            control["bind"] = _rehost(control.get("bind", "tcp://127.0.0.1:7110"),
                                      net.links[fridge].host_address)
            control["curve"] = curve(f"{fridge}-control", fridge, {"server": "operator"})
        path = tmp_path / f"{host}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        paths[host] = path
    return paths


def sim_configs(tmp_path: Path, fridges: list[str]) -> dict[str, Path]:
    """Each fridge's simulated instruments alone (``SimulationConfig.lab``), for its own PC."""
    facility = load_simulation_config(FACILITY)
    paths = {}
    for fridge in fridges:
        path = tmp_path / f"sim-{fridge}.yaml"
        path.write_text(yaml.safe_dump({"simulation": dataclasses.asdict(facility.lab(fridge))}))
        paths[fridge] = path
    return paths


class NetFacility:
    """The namespaces, the database on the server and every process started; :meth:`close`
    takes them all down (processes, then the database, then the namespaces)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.facility: dict[str, Any] = yaml.safe_load(FACILITY.read_text())
        self.fridges = list(self.facility["daemons"])
        self.network = Network(self.fridges)
        self.cluster: PostgresCluster | None = None
        self.services: list[Service] = []

    def start(self) -> NetFacility:
        self.network.create()
        self.cluster = PostgresCluster(self.network.exec_prefix(None))
        self.cluster.start()
        return self

    def run(self, host: str | None, *args: str, name: str) -> NetnsService:
        """Start ``python ARGS`` on ``host`` (None: the server)."""
        service = NetnsService(self.network.exec_prefix(host), *args, name=name)
        self.services.append(service)
        return service

    def close(self) -> None:
        try:
            for service in reversed(self.services):
                service.stop(timeout_s=20)
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop()
            finally:
                errors = self.network.delete()
                assert not errors, f"namespaces left behind: {errors}"


@pytest.fixture
def net_facility(tmp_path: Path) -> Iterator[NetFacility]:
    """The facility's hosts and database, torn down whatever the test did."""
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    if initdb_binary() is None:
        pytest.skip("no PostgreSQL initdb binary (apt-get install -y postgresql)")
    facility = NetFacility(tmp_path)
    try:
        yield facility.start()
    finally:
        facility.close()


def find_line(service: Service, prefix: str, accept: Callable[[list[str]], bool],
              timeout_s: float) -> list[str]:
    """The fields of the first line, printed so far or to come, that starts with ``prefix``
    and that ``accept`` takes."""
    end = time.monotonic() + timeout_s
    while True:
        for line in list(service.lines):
            if line.startswith(prefix) and accept(fields := line.split()):
                return fields
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{service.name}: no accepted {prefix!r} line within "
                                 f"{timeout_s} s:\n" + "\n".join(service.lines[-30:]))
        service.wait_line(prefix, left)  # returns once another such line has come


def max_gap(times: list[float], start: float, end: float) -> float:
    """The longest wait between consecutive arrivals in [start, end] (edges included)."""
    inside = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(inside, inside[1:], strict=False))


def test_a_cut_link_stalls_only_its_fridge_and_the_archive_is_whole(
        net_facility: NetFacility, tmp_path: Path) -> None:
    fac = net_facility
    fridges = fac.fridges
    assert CUT in fridges
    assert fac.cluster is not None
    keys = make_keys(tmp_path / "keys", ["broker", "logger", "alarms", "server", "observer",
                                         *fridges, *(f"{f}-control" for f in fridges)])
    configs = host_configs(fac.facility, fac.network, keys, fac.cluster.tcp_dsn, tmp_path)
    sims = sim_configs(tmp_path, fridges)
    cli = ("-m", "daq.cli")
    daemon_names = {f: fac.facility["daemons"][f]["daemon"]["name"] for f in fridges}
    heartbeat_s = float(fac.facility["bus"].get("heartbeat_s", 1.0))

    # The server first, then each PC's instruments and daemon, then the alarm service (it
    # rebuilds its state from the logger and watches the daemons), then our own view.
    fac.run(None, *cli, "broker", str(configs["server"]), name="broker").wait_line("broker ready")
    logger = fac.run(None, *cli, "logger", str(configs["server"]), name="logger")
    assert logger.wait_line("logger ready").endswith("store=ok")
    started = [fac.run(f, *cli, "sim", str(sims[f]), name=f"sim-{f}") for f in fridges]
    for sim in started:
        sim.wait_line("sim ready")
    daemons = {f: fac.run(f, *cli, "daemon", str(configs[f]), "--daemon", f,
                          name=daemon_names[f]) for f in fridges}
    for daemon in daemons.values():
        daemon.wait_line("daemon ready")
    alarms = None
    if fac.facility.get("alarms"):
        alarms = fac.run(None, *cli, "alarms", str(configs["server"]), name="alarms")
        alarms.wait_line("alarms ready")
    watch = fac.run(None, "-m", "tests.netns_watch", "watch", str(configs["observer"]),
                    CHANNEL, *fridges, name="watch")
    watch.wait_line("watch ready")
    t_start = time.monotonic()

    time.sleep(BEFORE_S)  # deliberate: undisturbed data before the cut
    t_cut = time.monotonic()
    fac.network.cut(CUT)
    time.sleep(CUT_S)  # deliberate: the outage
    fac.network.restore(CUT)
    t_restore = time.monotonic()
    restore_ns = time.time_ns()

    # Caught up: the cut daemon's live heartbeats are back, and a status it published after
    # the restore says the logger has acknowledged the outage's backlog.
    cut_pub = daemon_names[CUT]
    fresh = find_line(watch, f"fresh {cut_pub} ", lambda f: float(f[2]) > t_restore,
                      CATCH_UP_S)
    t_live_back = float(fresh[2])
    backlog = find_line(watch, f"backlog {cut_pub} ",
                        lambda f: int(f[3]) > restore_ns and 0 <= float(f[5]) < CAUGHT_UP_AGE_S,
                        CATCH_UP_S - (time.monotonic() - t_restore))
    t_caught_up = float(backlog[2])
    t_end = time.monotonic()

    # A clean stop, as `qupdaq up` does it: the alarm service before the daemons (no
    # "daemon lost" for a planned stop), every daemon handing its last data to the logger.
    if alarms is not None:
        assert alarms.stop() == 0, alarms.lines[-20:]
    for daemon in daemons.values():
        daemon.proc.send_signal(signal.SIGTERM)
    for fridge, daemon in daemons.items():
        assert daemon.wait_exit(timeout_s=30) == 0, (fridge, daemon.lines[-20:])
        assert "daemon stopped" in daemon.lines, (fridge, daemon.lines[-20:])
    probe = fac.run(None, "-m", "tests.netns_watch", "logger-status", str(configs["observer"]),
                    name="logger-status")
    counters = json.loads(probe.wait_line("{"))
    assert logger.stop() == 0, logger.lines[-20:]
    watch.stop()
    live_gaps = json.loads(watch.wait_line("watch stopped").split("live_gaps=", 1)[1])

    # The live path, as the server saw it.
    arrivals: dict[str, list[float]] = {f: [] for f in fridges}
    stale: list[tuple[str, float]] = []
    raised: list[str] = []  # what the alarm service made of it (shown, not asserted)
    # The archive path of each daemon while the link was cut and after: how old its oldest
    # message not yet acknowledged by the logger got (each of its status messages says).
    lag = {name: 0.0 for name in daemon_names.values()}
    for line in list(watch.lines):
        fields = line.split()
        if fields[:1] == ["sample"]:
            arrivals[fields[1]].append(float(fields[2]))
        elif fields[:1] == ["backlog"] and fields[1] in lag and t_cut <= float(fields[2]) <= t_end:
            lag[fields[1]] = max(lag[fields[1]], float(fields[5]))
        elif fields[:1] == ["stale"]:
            stale.append((fields[1], float(fields[2])))
        elif fields[:1] == ["alarm"] and t_cut <= float(fields[3]) <= t_end:
            raised.append(f"{fields[1]} {fields[2]} at +{float(fields[3]) - t_cut:.0f} s")
    gaps = {f: max_gap(arrivals[f], t_start, t_end) for f in fridges}
    went_stale = [t for name, t in stale if name == cut_pub and t_cut <= t <= t_restore]
    others_stale = [(name, round(t - t_cut, 1)) for name, t in stale
                    if t_start <= t <= t_end and name in daemon_names.values()
                    and name != cut_pub]

    # The archive, straight from PostgreSQL.
    archive = read_archive_pg(fac.cluster.socket_dsn)
    report = []
    problems: dict[str, Any] = {}
    for fridge in fridges:
        sessions = archive.of(daemon_names[fridge])
        messages = sum(len(s.stored) for s in sessions)
        samples = sum(s.samples_stored for s in sessions)
        lost = sum(len(s.unaccounted()) for s in sessions) + sum(
            last - first + 1 for s in sessions for first, last, _ in s.gaps)
        report.append(f"  {fridge}: {messages} messages, {samples} samples, "
                      f"{len({s.epoch for s in sessions})} session(s), lost {lost}; "
                      f"live: {len(arrivals[fridge])} {CHANNEL} arrivals, "
                      f"longest wait {gaps[fridge]:.2f} s; "
                      f"archive lag {lag[daemon_names[fridge]]:.1f} s")
        problems[fridge] = {
            "sessions": sorted({s.epoch for s in sessions}),
            "unaccounted": {s.stream: sorted(s.unaccounted())[:5] for s in sessions
                            if s.unaccounted()},
            "gaps": {s.stream: s.gaps for s in sessions if s.gaps},
            "gaps over stored": {s.stream: sorted(s.gaps_over_stored())[:5] for s in sessions
                                 if s.gaps_over_stored()},
            "samples (expected, stored)": {s.stream: (s.samples_expected, s.samples_stored)
                                           for s in sessions
                                           if s.samples_expected != s.samples_stored},
            "duplicate sample rows": {s.stream: s.duplicate_rows for s in sessions
                                      if s.duplicate_rows},
        }
    stale_s = went_stale[0] - t_cut if went_stale else float("nan")
    print(f"\nfacility over network namespaces: {CUT}'s link cut for {CUT_S:.0f} s, "
          f"{t_end - t_start:.0f} s observed")
    print("\n".join(report))
    print(f"  {CUT}: stale on the live path {stale_s:.2f} s after the cut; live again "
          f"{t_live_back - t_restore:.1f} s and caught up in the archive "
          f"{t_caught_up - t_restore:.1f} s after the link came back")
    print(f"  logger: {counters.get('duplicates')} duplicates (resent, stored once), "
          f"{counters.get('received')} received; live-path losses: {live_gaps or 'none'}")
    if alarms is not None:
        print(f"  alarms after the cut: {'; '.join(raised) or 'none'}")

    for fridge in fridges:
        if fridge != CUT:
            assert gaps[fridge] < MAX_GAP_S, (fridge, gaps[fridge])
            assert lag[daemon_names[fridge]] < CAUGHT_UP_AGE_S, (fridge, lag)
    assert not others_stale, others_stale
    assert went_stale, f"{cut_pub} never went stale: {stale}"
    assert stale_s <= 3 * heartbeat_s + 1.0, stale_s
    for fridge in fridges:
        found = problems[fridge]
        assert len(found["sessions"]) == 1, (fridge, found)  # no restart, nothing unowned
        assert not any(value for key, value in found.items() if key != "sessions"), \
            (fridge, found)
