"""A small client of Flink's REST API (the JobManager's, or a local MiniCluster's): jobs,
savepoints, stop-with-savepoint. Errors say what went wrong and what to do."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Log = Callable[[str], None]


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
        t0 = time.monotonic()
        trigger = self.call("POST", f"/jobs/{job_id}/stop", body)["request-id"]
        path = self._await(f"/jobs/{job_id}/savepoints/{trigger}", timeout_s, log)
        return SavepointResult(job_id, path, time.monotonic() - t0)

    def trigger(
        self, job_id: str, directory: str | None = None, timeout_s: float = 300.0
    ) -> SavepointResult:
        body: dict[str, Any] = {"cancel-job": False, "formatType": "CANONICAL"}
        if directory:
            body["target-directory"] = directory
        t0 = time.monotonic()
        trigger = self.call("POST", f"/jobs/{job_id}/savepoints", body)["request-id"]
        path = self._await(f"/jobs/{job_id}/savepoints/{trigger}", timeout_s, None)
        return SavepointResult(job_id, path, time.monotonic() - t0)

    def _await(self, path: str, timeout_s: float, log: Log | None) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.call("GET", path)
            if status["status"]["id"] == "COMPLETED":
                op = status.get("operation") or {}
                if "failure-cause" in op:
                    cause = op["failure-cause"].get("stack-trace", "")
                    first = cause.splitlines()[0] if cause else "unknown cause"
                    raise FlinkRestError(f"savepoint failed: {first}")
                return str(op["location"])
            if log is not None:
                log("savepoint in progress ...")
            time.sleep(1.0)
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
