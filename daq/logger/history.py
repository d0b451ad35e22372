"""History queries against a running logger: the protocol and the client the dashboard uses.

The logger's history endpoint is a ROUTER; a client (DEALER or REQ) sends
``[b"", request JSON]`` and gets ``[b"", reply JSON, *payload frames]``.
Requests are JSON objects with an ``op`` and, optionally, an ``id`` echoed
in the reply::

    {"op": "query", "stream": "data/fridge1/mxc", "t0": ns, "t1": ns, "max_points": 2000}
        -> {"ok": true, "n": N, "raw_count": M, "decimated": bool}
           + two frames: times (N int64, ns since the epoch) and values (N float64),
             raw little-endian numpy buffers: plot-ready without parsing lists
    {"op": "streams"}                       -> {"ok": true, "streams": [{stream, kind, units}]}
    {"op": "runs"}                          -> {"ok": true, "runs": [{run, stream, t_start, ...}]}
    {"op": "run", "run": "R42"}             -> {"ok": true, "run": {..., events, files, streams}}
    {"op": "gaps", "stream": optional}      -> {"ok": true, "gaps": [{stream, epoch, first, last,
                                                                    reason}]}
    {"op": "events", "stream"?, "kind"?, "t0"?, "t1"?, "limit"?} -> {"ok": true, "events": [...]}
        also "prefix": streams under it (``alarm/alarms/``), "latest": true: each stream's
        newest event only; every event is {stream, kind, t, epoch, seq, quality, units, meta}
    {"op": "records", "stream": s, "t0": ns, "t1": ns} -> {"ok": true, "records": [{path, row,
                                                                    epoch, seq, t0, length}]}
    {"op": "run_index", "procedure"?, "sample"?, "status"?, "t0"?, "t1"?, "limit"?}
        -> {"ok": true, "runs": [{run, procedure, recipe, sample, operator, status, t_start,
                                  t_stop, path, points, pauses, summary}], "directory": storage}
           measurement runs (daq.runs), oldest first; path is relative to the storage directory
    {"op": "run_entry", "run": id}          -> {"ok": true, "run": {...as above}, "file": the
                                               run's HDF5 file (absolute, on the logger's host)}
    {"op": "status"}                        -> {"ok": true, "status": {counters of the logger}}

A refused request gets ``{"ok": false, "error": "..."}``. ``query``
decimates server-side, keeping each bucket's minimum and maximum
(:mod:`daq.logger.decimate`), so a one-sample spike survives.
"""

from __future__ import annotations

import itertools
import json
import time
from types import TracebackType
from typing import Any

import numpy as np
import zmq

from daq.errors import BusError, QupdaqError
from daq.links import keep_alive
from daq.messages import now_ns
from daq.names import stream_name
from daq.security import ClientKeys, arm_client


class HistoryError(QupdaqError):
    """The logger refused a history request (unknown op, bad field, store unavailable)."""


class HistoryClient:
    """Asks a logger's history endpoint; one instance per thread.

    Args:
        url: the logger's history endpoint (its ready line's ``history=``).
        timeout_s: how long to wait for each reply.
        context: zmq context (the process-wide instance by default).
        curve: client keys when the logger runs CURVE (``LabConfig.keys_for("logger")``).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0,
                 context: zmq.Context | None = None, curve: ClientKeys | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        ctx = context or zmq.Context.instance()
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        keep_alive(self._sock)
        arm_client(self._sock, curve)
        self._sock.connect(url)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> HistoryClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def request(self, op: str, **fields: Any) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request; return the reply header and its payload frames.

        Raises:
            BusError: no reply within ``timeout_s``.
            HistoryError: the logger refused the request.
        """
        rid = next(self._ids)
        self._sock.send_multipart([b"", json.dumps({"op": op, "id": rid, **fields}).encode()])
        end = time.monotonic() + self.timeout_s
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                raise BusError(f"history {self.url}: no reply to {op!r} within "
                               f"{self.timeout_s} s (is the logger running?)")
            frames = self._sock.recv_multipart()
            if len(frames) < 2:
                continue
            try:
                header = json.loads(frames[1])
            except ValueError:
                continue
            if not isinstance(header, dict) or header.get("id") != rid:
                continue  # a late reply to an earlier, timed-out request
            if not header.get("ok"):
                raise HistoryError(f"history {self.url}: {op}: {header.get('error', '?')}")
            return header, frames[2:]

    def query(self, stream: str, t0_ns: int | None = None, t1_ns: int | None = None,
              max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Plot-ready history of a scalar stream: ``(times_ns int64, values float64)``.

        ``t1_ns`` defaults to now and ``t0_ns`` to one hour before it. At
        most ``max_points`` points come back, min/max decimated.
        """
        return self.query_info(stream, t0_ns, t1_ns, max_points)[1]

    def query_info(self, stream: str, t0_ns: int | None = None, t1_ns: int | None = None,
                   max_points: int = 2000) -> tuple[dict[str, Any],
                                                    tuple[np.ndarray, np.ndarray]]:
        """Like :meth:`query`, also returning the reply header (raw_count, decimated)."""
        t1 = now_ns() if t1_ns is None else int(t1_ns)
        t0 = t1 - 3600 * 10**9 if t0_ns is None else int(t0_ns)
        header, frames = self.request("query", stream=stream_name(stream), t0=t0, t1=t1,
                                      max_points=int(max_points))
        if len(frames) != 2:
            raise HistoryError(f"history {self.url}: query reply has {len(frames)} payload "
                               "frames, expected 2")
        times = np.frombuffer(frames[0], dtype="<i8")
        values = np.frombuffer(frames[1], dtype="<f8")
        return header, (times, values)

    def streams(self) -> list[dict[str, Any]]:
        """Every stream the archive knows."""
        return list(self.request("streams")[0]["streams"])

    def runs(self) -> list[dict[str, Any]]:
        """Every run."""
        return list(self.request("runs")[0]["runs"])

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with its events, record files and streams."""
        return dict(self.request("run", run=run_id)[0]["run"])

    def run_index(self, *, procedure: str | None = None, sample: str | None = None,
                  status: str | None = None, t0_ns: int | None = None,
                  t1_ns: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Measurement runs (one row each: procedure, sample, status, file, points, result's
        numbers), oldest first, filtered by the fields given."""
        fields: dict[str, Any] = {"limit": int(limit)}
        for key, value in (("procedure", procedure), ("sample", sample), ("status", status),
                           ("t0", t0_ns), ("t1", t1_ns)):
            if value is not None:
                fields[key] = value
        return list(self.request("run_index", **fields)[0]["runs"])

    def run_entry(self, run_id: str) -> tuple[dict[str, Any], str]:
        """One measurement run's index row and its HDF5 file's path on the logger's host
        (open it with :func:`daq.runs.open_run`)."""
        header = self.request("run_entry", run=run_id)[0]
        return dict(header["run"]), str(header["file"])

    def gaps(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Recorded gaps (optionally of one stream)."""
        fields = {} if stream is None else {"stream": stream_name(stream)}
        return list(self.request("gaps", **fields)[0]["gaps"])

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Events filtered by ``stream``, ``kind``, ``t0``, ``t1``, ``limit``."""
        return list(self.request("events", **filters)[0]["events"])

    def events_under(self, prefix: str, *, kind: str | None = None, t0_ns: int | None = None,
                     t1_ns: int | None = None, latest: bool = False,
                     limit: int = 1000) -> list[dict[str, Any]]:
        """Stored events of the streams under ``prefix`` (``alarm/alarms/``) in [t0, t1],
        oldest first; with ``latest`` only the newest event of each stream."""
        fields: dict[str, Any] = {"prefix": prefix, "latest": latest, "limit": int(limit)}
        for key, value in (("kind", kind), ("t0", t0_ns), ("t1", t1_ns)):
            if value is not None:
                fields[key] = value
        return list(self.request("events", **fields)[0]["events"])

    def records(self, stream: str, t0_ns: int, t1_ns: int) -> list[dict[str, Any]]:
        """Index entries (file path, row, seq, t0) of a waveform stream's records."""
        return list(self.request("records", stream=stream_name(stream), t0=t0_ns,
                                 t1=t1_ns)[0]["records"])

    def status(self) -> dict[str, Any]:
        """The logger's counters (received, stored, duplicates, malformed, errors, ...)."""
        return dict(self.request("status")[0]["status"])
