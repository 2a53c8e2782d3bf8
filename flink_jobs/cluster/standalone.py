"""A local standalone Flink session cluster: one JobManager and N TaskManagers as separate
processes, started from the Flink distribution inside apache-flink.

`up` assembles the cluster's FLINK_HOME (flink_jobs/cluster/home.py), starts
`jobmanager.sh start-foreground` and one `taskmanager.sh start-foreground` per TaskManager
under tipoff's own process management (each its own session, pid recorded in
`cluster.json`; the scripts `exec` the JVM, so the recorded pid is the JVM's), and waits
until the REST API lists them all. Everything binds to 127.0.0.1. `down` stops only the
recorded pids.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.cluster.home import (
    JOBMANAGER,
    ClusterError,
    ClusterSettings,
    Layout,
    build_home,
    process_command,
    process_env,
    read_json,
)
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.output import Log
from flink_jobs.stack import artifacts
from flink_jobs.stack import processes as proc
from flink_jobs.stack.java import find_java

FLINK_VERSION = "2.2.1"
# Flink 2.2 runs on Java 11, 17 and 21; 17 is what the `flink` client (`tipoff submit`)
# and the MiniCluster (`tipoff run`) use on these machines.
JAVA_MINIMUM = 17

REST_OPTION = "--rest-port / TIPOFF_FLINK_REST_PORT"
RPC_OPTION = "--rpc-port / TIPOFF_FLINK_RPC_PORT"


def heartbeat_age_s(value: float, now_s: float) -> float:
    """Seconds since a TaskManager's last heartbeat. Despite its name, the REST API's
    `timeSinceLastHeartbeat` holds the epoch milliseconds of that heartbeat."""
    if value > 1e12:
        return max(0.0, now_s - value / 1000)
    return max(0.0, value / 1000)


@dataclass(frozen=True)
class UpResult:
    started: list[str]
    already_running: list[str]
    url: str
    seconds: float
    slots: int


@dataclass(frozen=True)
class ProcessRow:
    name: str
    role: str  # jobmanager | taskmanager
    pid: int | None
    health: str
    ok: bool
    log: str | None


@dataclass(frozen=True)
class Status:
    url: str
    rows: list[ProcessRow]
    overview: dict[str, Any] | None  # /overview, None when the REST API does not answer
    unmanaged: list[str]  # registered TaskManagers tipoff did not start

    @property
    def ok(self) -> bool:
        return self.overview is not None and bool(self.rows) and all(r.ok for r in self.rows)


class StandaloneCluster:
    def __init__(
        self, settings: ClusterSettings, log: Log = print, env: Mapping[str, str] | None = None
    ) -> None:
        self.s = settings
        self.log = log
        self.env = dict(os.environ) if env is None else dict(env)
        self.lay = Layout(settings.home)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- state file -------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        return read_json(self.lay.state_file)

    def _write(self, data: dict[str, Any]) -> None:
        self.lay.home.mkdir(parents=True, exist_ok=True)
        tmp = self.lay.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.lay.state_file)

    @property
    def marker(self) -> str:
        # Both the script (bash .../dist/bin/...) and the JVM (--configDir .../conf) carry
        # the home path on their command line: guards against a reused pid.
        return str(self.lay.home)

    def processes(self) -> dict[str, dict[str, Any]]:
        procs: dict[str, dict[str, Any]] = self._read().get("processes", {})
        return procs

    def alive(self, name: str) -> bool:
        pid = self.processes().get(name, {}).get("pid")
        return proc.alive(int(pid) if pid else None, self.marker)

    def taskmanagers(self) -> list[str]:
        """Recorded TaskManager names, oldest first."""
        procs = self.processes()
        names = [n for n, p in procs.items() if p.get("role") == "taskmanager"]
        return sorted(names, key=lambda n: procs[n].get("started_at", 0))

    def running_taskmanagers(self) -> list[str]:
        return [n for n in self.taskmanagers() if self.alive(n)]

    @property
    def url(self) -> str:
        port = self._read().get("rest_port") if self.alive(JOBMANAGER) else None
        return f"http://127.0.0.1:{port}" if port else self.s.rest_url

    def rest(self, timeout_s: float = 5.0) -> FlinkRest:
        return FlinkRest(self.url, timeout_s)

    # --- up ---------------------------------------------------------------------------
    def up(self, taskmanagers: int | None = None, timeout_s: float = 180.0) -> UpResult:
        """Start what is not running: the JobManager, and TaskManagers up to `taskmanagers`
        (default: the setting). Waits until the REST API lists every TaskManager."""
        want = self.s.taskmanagers if taskmanagers is None else taskmanagers
        if want < 1:
            raise ClusterError(f"--taskmanagers must be at least 1, not {want}")
        t0 = time.monotonic()
        data = self._read()
        jm_running = self.alive(JOBMANAGER)
        # Dead processes leave the record; their names are not reused.
        live = {n: p for n, p in data.get("processes", {}).items() if self.alive(n)}
        started: list[str] = []
        already = sorted(live, key=lambda n: (n != JOBMANAGER, live[n].get("started_at", 0)))
        if not jm_running:
            if live:  # TaskManagers of a JobManager that died: they would not re-register
                self.log(f"stopping {', '.join(live)} (their JobManager is gone)")
                for p in live.values():
                    proc.stop(int(p["pid"]), self.marker, grace_s=15)
                live, already = {}, []
            for port, what, option in (
                (self.s.rest_port, "Flink REST API", REST_OPTION),
                (self.s.rpc_port, "Flink JobManager RPC", RPC_OPTION),
            ):
                if not proc.port_free(port):
                    raise proc.PortInUse(port, what, option)
            jars = artifacts.flink_jars(self.s.flink_jars_dir, self.log)
            build_home(self.s, jars)
            for stale in self.lay.run.glob("*.pid"):
                stale.unlink()
            data = {
                "rest_port": self.s.rest_port,
                "rpc_port": self.s.rpc_port,
                "flink_version": FLINK_VERSION,
                "next_tm": data.get("next_tm", 1),
                "processes": {},
            }
        java, major = find_java(JAVA_MINIMUM, self.env, self.s.cache_dir, self.log)
        data["java"] = f"{java} ({major})"
        data["processes"] = live
        if not jm_running:
            self.log(
                f"starting Flink {FLINK_VERSION} JobManager (Java {major}) on "
                f"127.0.0.1:{self.s.rpc_port}, REST {self.s.rest_url}"
            )
            live[JOBMANAGER] = self._spawn(JOBMANAGER, java)
            started.append(JOBMANAGER)
            self._write(data)
        n_running = len([n for n in live if n != JOBMANAGER])
        for _ in range(max(0, want - n_running)):
            name = f"tm-{data['next_tm']}"
            data["next_tm"] += 1
            live[name] = self._spawn(name, java)
            started.append(name)
            self._write(data)
        if started:
            self.log(f"started {', '.join(started)}; waiting for the REST API to list them")
        names = [n for n in live if n != JOBMANAGER]
        overview = self._wait_registered(names, timeout_s - (time.monotonic() - t0))
        return UpResult(
            started,
            already,
            self.url,
            time.monotonic() - t0,
            int(overview.get("slots-total", 0)),
        )

    def _spawn(self, name: str, java: Path) -> dict[str, Any]:
        out = self.lay.logs / f"{name}.out"
        child = proc.spawn(
            process_command(self.s, name),
            self.lay.home,
            out,
            process_env(self.s, java, name, self.env),
        )
        self._children[child.pid] = child
        return {
            "pid": child.pid,
            "role": JOBMANAGER if name == JOBMANAGER else "taskmanager",
            "out": str(out),
            "started_at": time.time(),
        }

    def _wait_registered(self, names: list[str], timeout_s: float) -> dict[str, Any]:
        """Until /overview answers and /taskmanagers lists every name; fails early (with
        the log's last lines) if a process exits."""
        rest = FlinkRest(self.url, timeout_s=3)
        deadline = time.monotonic() + max(timeout_s, 1.0)
        missing = list(names)
        while True:
            dead = [n for n in [JOBMANAGER, *names] if not self._still_running(n)]
            if dead:
                raise ClusterError(self._died(dead[0]))
            try:
                overview: dict[str, Any] = rest.call("GET", "/overview")
                registered = {tm["id"] for tm in rest.taskmanagers()}
                missing = [n for n in names if n not in registered]
                if not missing:
                    return overview
            except FlinkRestError:
                overview = {}
            if time.monotonic() > deadline:
                what = (
                    f"TaskManager(s) {', '.join(missing)} did not register"
                    if overview
                    else f"the REST API did not answer on {self.url}"
                )
                log = self.log_file(missing[0] if overview and missing else JOBMANAGER)
                raise ClusterError(
                    f"{what} within {timeout_s:.0f}s; last lines of {log}:\n{proc.log_tail(log)}"
                )
            time.sleep(0.5)

    def _still_running(self, name: str) -> bool:
        pid = self.processes().get(name, {}).get("pid")
        child = self._children.get(int(pid)) if pid else None
        if child is not None:  # right after exec /proc's command line can read empty
            return child.poll() is None
        return self.alive(name)

    def _died(self, name: str) -> str:
        log = self.log_file(name)
        return (
            f"{name} exited during start; last lines of {log}:\n{proc.log_tail(log, 30)}\n"
            f"(its console output: {self.lay.logs / (name + '.out')})"
        )

    def log_file(self, name: str) -> Path:
        """The Flink log of a process (log/flink-<name>-<service>-<n>-<host>.log), else its
        console output."""
        found = sorted(self.lay.logs.glob(f"flink-{name}-*.log"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else self.lay.logs / f"{name}.out"

    # --- TaskManagers one by one --------------------------------------------------------
    def add_taskmanager(self, timeout_s: float = 120.0) -> str:
        """Start one more TaskManager and wait until it is registered; its name."""
        if not self.alive(JOBMANAGER):
            raise ClusterError("the cluster is not up: start it with `tipoff cluster up`")
        data = self._read()
        # A replacement: records of TaskManagers that died leave (names are not reused).
        data["processes"] = {n: p for n, p in data.get("processes", {}).items() if self.alive(n)}
        java, _ = find_java(JAVA_MINIMUM, self.env, self.s.cache_dir, self.log)
        name = f"tm-{data.get('next_tm', 1)}"
        data["next_tm"] = data.get("next_tm", 1) + 1
        data.setdefault("processes", {})[name] = self._spawn(name, java)
        self._write(data)
        self._wait_registered([name], timeout_s)
        return name

    def kill_taskmanager(self, name: str | None = None) -> tuple[str, int]:
        """SIGKILL one TaskManager (default: the oldest running), as a crash would; returns
        its name and pid. The JobManager notices after the heartbeat timeout."""
        running = self.running_taskmanagers()
        if name is None:
            if not running:
                raise ClusterError("no TaskManager is running")
            name = running[0]
        elif name not in running:
            raise ClusterError(f"TaskManager {name} is not running (running: {running})")
        pid = int(self.processes()[name]["pid"])
        os.kill(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait(30)
        while proc.alive(pid, self.marker):
            time.sleep(0.05)
        return name, pid

    # --- down / status ----------------------------------------------------------------
    def down(self, grace_s: float = 30.0) -> list[str]:
        """Stop every recorded process, TaskManagers first; returns what was stopped."""
        data = self._read()
        procs = data.get("processes", {})
        order = [*self.taskmanagers(), JOBMANAGER]
        running = [n for n in order if n in procs and self.alive(n)]
        for name in running:  # SIGTERM all first: they shut down in parallel
            pid = int(procs[name]["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        stopped = []
        for name in running:
            pid = int(procs[name]["pid"])
            proc.stop(pid, self.marker, grace_s)
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait(30)
            stopped.append(name)
        if data:
            data["processes"] = {}
            self._write(data)
        return stopped

    def status(self) -> Status:
        procs = self.processes()
        rest = self.rest(timeout_s=3)
        overview: dict[str, Any] | None
        registered: dict[str, dict[str, Any]] = {}
        try:
            overview = rest.call("GET", "/overview")
            registered = {tm["id"]: tm for tm in rest.taskmanagers()}
        except FlinkRestError:
            overview = None
        rows = []
        if JOBMANAGER in procs:
            up = self.alive(JOBMANAGER)
            if overview is not None and up:
                health = (
                    f"UP: Flink {overview.get('flink-version', '?')}, "
                    f"{overview.get('taskmanagers', 0)} TaskManager(s), slots "
                    f"{overview.get('slots-total', 0)} ({overview.get('slots-available', 0)} "
                    f"free), jobs {overview.get('jobs-running', 0)} running"
                )
            elif up:
                health = f"STARTING or UNHEALTHY: process runs, REST API {self.url} does not answer"
            else:
                health = "DOWN: process gone"
            rows.append(
                ProcessRow(
                    JOBMANAGER,
                    JOBMANAGER,
                    procs[JOBMANAGER].get("pid") if up else None,
                    health,
                    up and overview is not None,
                    str(self.log_file(JOBMANAGER)),
                )
            )
        for name in self.taskmanagers():
            up = self.alive(name)
            tm = registered.get(name)
            if up and tm is not None:
                ago = heartbeat_age_s(tm.get("timeSinceLastHeartbeat", 0), time.time())
                health = (
                    f"registered, slots {tm.get('slotsNumber', 0)} ({tm.get('freeSlots', 0)} "
                    f"free), last heartbeat {ago:.0f}s ago"
                )
            elif up:
                health = "process runs, not registered (starting, or lost its JobManager)"
            elif tm is not None:
                health = "DOWN: process gone, still listed until the heartbeat timeout"
            else:
                health = "DOWN: process gone"
            rows.append(
                ProcessRow(
                    name,
                    "taskmanager",
                    procs[name].get("pid") if up else None,
                    health,
                    up and tm is not None,
                    str(self.log_file(name)),
                )
            )
        unmanaged = sorted(set(registered) - set(procs))
        return Status(self.url, rows, overview, unmanaged)

    def registered(self) -> list[str]:
        """TaskManager ids the REST API lists now."""
        return sorted(tm["id"] for tm in self.rest(timeout_s=3).taskmanagers())
