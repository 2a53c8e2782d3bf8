"""A small client of Flink's REST API (the JobManager's, or a local MiniCluster's): jobs,
savepoints, stop-with-savepoint. Errors say what went wrong and what to do."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from flink_jobs.output import Log


class FlinkRestError(RuntimeError):
    pass


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    state: str
    start_time: int
    duration_ms: int


@dataclass(frozen=True)
class SavepointResult:
    job_id: str
    path: str
    seconds: float


class FlinkRest:
    def __init__(self, url: str, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            if e.code == 404:
                raise FlinkRestError(
                    f"{method} {self.url}{path}: not found ({detail}); check the job id with "
                    "`tipoff jobs`"
                ) from e
            raise FlinkRestError(f"{method} {self.url}{path}: HTTP {e.code}: {detail}") from e
        except (OSError, ValueError) as e:
            raise FlinkRestError(
                f"Flink REST API at {self.url} is unreachable ({e}); is the cluster up "
                "(`tipoff cluster status`) and the address right?"
            ) from e

    def jobs(self) -> list[Job]:
        found = self.call("GET", "/jobs/overview")["jobs"]
        return [Job(j["jid"], j["name"], j["state"], j["start-time"], j["duration"]) for j in found]

    def running(self) -> list[Job]:
        return [j for j in self.jobs() if j.state in ("RUNNING", "RESTARTING", "CREATED")]

    def stop(
        self,
        job_id: str,
        directory: str | None = None,
        drain: bool = False,
        timeout_s: float = 300.0,
        log: Log | None = None,
    ) -> SavepointResult:
        """Stop-with-savepoint; `drain` first advances event time to the end (fires every
        timer: use it only when the job will not be resumed)."""
        body: dict[str, Any] = {"drain": drain, "formatType": "CANONICAL"}
        if directory:
            body["targetDirectory"] = directory
        return self._savepoint(job_id, "stop", body, timeout_s, log)

    def trigger(
        self, job_id: str, directory: str | None = None, timeout_s: float = 300.0
    ) -> SavepointResult:
        body: dict[str, Any] = {"cancel-job": False, "formatType": "CANONICAL"}
        if directory:
            body["target-directory"] = directory
        return self._savepoint(job_id, "savepoints", body, timeout_s, None)

    def _savepoint(
        self, job_id: str, endpoint: str, body: dict[str, Any], timeout_s: float, log: Log | None
    ) -> SavepointResult:
        """POST /jobs/:id/<endpoint>, then poll the savepoint it triggered to its path."""
        t0 = time.monotonic()
        trigger = self.call("POST", f"/jobs/{job_id}/{endpoint}", body)["request-id"]
        path = self._await(f"/jobs/{job_id}/savepoints/{trigger}", timeout_s, log)
        return SavepointResult(job_id, path, time.monotonic() - t0)

    def _await(self, path: str, timeout_s: float, log: Log | None, what: str = "savepoint") -> str:
        deadline = time.monotonic() + timeout_s
        pause, logged = 0.1, time.monotonic()
        while time.monotonic() < deadline:
            status = self.call("GET", path)
            if status["status"]["id"] == "COMPLETED":
                op = status.get("operation") or {}
                if "failure-cause" in op:
                    cause = op["failure-cause"].get("stack-trace", "")
                    raise FlinkRestError(f"{what} failed: {summarize_trace(cause)}")
                return str(op.get("location", ""))
            if log is not None and time.monotonic() - logged >= 5:
                log(f"{what} in progress ...")
                logged = time.monotonic()
            time.sleep(pause)
            pause = min(1.0, pause * 2)  # most finish within a second or two
        if what != "savepoint":
            raise FlinkRestError(f"{what} not completed within {timeout_s:.0f}s")
        raise FlinkRestError(
            f"savepoint not completed within {timeout_s:.0f}s; the job keeps running. Check "
            "for a stuck checkpoint (backpressure, a slow sink) and try again, or raise the "
            "timeout"
        )

    def wait_for_state(self, job_id: str, states: set[str], timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        state = "?"
        while time.monotonic() < deadline:
            state = next((j.state for j in self.jobs() if j.id == job_id), "?")
            if state in states:
                return state
            time.sleep(0.5)
        raise FlinkRestError(f"job {job_id} is {state}, not {sorted(states)}, after {timeout_s}s")

    # --- cluster, job details, disposal ---------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """/overview: taskmanagers, slots-total, slots-available, jobs-running, flink-version."""
        found: dict[str, Any] = self.call("GET", "/overview")
        return found

    def taskmanagers(self) -> list[dict[str, Any]]:
        """/taskmanagers: id, slotsNumber, freeSlots, timeSinceLastHeartbeat, ..."""
        found: list[dict[str, Any]] = self.call("GET", "/taskmanagers")["taskmanagers"]
        return found

    def job(self, job_id: str) -> dict[str, Any]:
        """/jobs/:id: state, vertices (each with its status), ..."""
        found: dict[str, Any] = self.call("GET", f"/jobs/{job_id}")
        return found

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        """/jobs/:id/checkpoints: counts and latest completed / savepoint / failed / restored."""
        found: dict[str, Any] = self.call("GET", f"/jobs/{job_id}/checkpoints")
        return found

    def exceptions(self, job_id: str) -> list[Failure]:
        """The job's failures, newest first (/jobs/:id/exceptions)."""
        body = self.call("GET", f"/jobs/{job_id}/exceptions?maxExceptions=10")
        return parse_exceptions(body)

    def cancel(self, job_id: str) -> None:
        self.call("PATCH", f"/jobs/{job_id}?mode=cancel")

    def dispose(self, savepoint: str, timeout_s: float = 120.0) -> float:
        """Dispose a savepoint through the JobManager (/savepoint-disposal); seconds taken."""
        t0 = time.monotonic()
        trigger = self.call("POST", "/savepoint-disposal", {"savepoint-path": savepoint})
        self._await(
            f"/savepoint-disposal/{trigger['request-id']}", timeout_s, None, "savepoint disposal"
        )
        return time.monotonic() - t0


@dataclass(frozen=True)
class Failure:
    timestamp: int
    name: str
    trace: str
    task: str | None

    @property
    def summary(self) -> str:
        return summarize_trace(self.trace) if self.trace else self.name


def parse_exceptions(body: dict[str, Any]) -> list[Failure]:
    """Entries of `exceptionHistory` (Flink 1.13+), else the legacy `root-exception`."""
    entries = (body.get("exceptionHistory") or {}).get("entries") or []
    found = [
        Failure(
            int(e.get("timestamp") or 0),
            str(e.get("exceptionName") or "?"),
            str(e.get("stacktrace") or ""),
            e.get("taskName"),
        )
        for e in entries
    ]
    if not found and body.get("root-exception"):
        root = str(body["root-exception"])
        found.append(Failure(int(body.get("timestamp") or 0), root.splitlines()[0], root, None))
    return sorted(found, key=lambda f: f.timestamp, reverse=True)


def summarize_trace(trace: str) -> str:
    """A Java stack trace in one line: its first line, and the root cause when different."""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    if not lines:
        return "unknown cause"
    first = lines[0]
    causes = [ln.removeprefix("Caused by: ") for ln in lines if ln.startswith("Caused by: ")]
    if causes and causes[-1] != first:
        return f"{first} (root cause: {causes[-1]})"
    return first
