"""`tipoff savepoint restore`: submit a job from a savepoint, watch its tasks come up, and
explain a failed restore (its cause and what to do)."""

from __future__ import annotations

import argparse
import time

from flink_jobs.cluster.common import (
    TERMINAL,
    checkpoints_uri,
    host_port,
    savepoint_location,
)
from flink_jobs.cluster.rest import Failure, FlinkRest, FlinkRestError, Job
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.output import Log, err
from flink_jobs.settings import Settings
from udfs.jobs import combined_name, expand

HINTS = (
    (
        "Cannot map checkpoint/savepoint state",
        "the savepoint holds state of an operator this build does not have (a changed or "
        "removed uid, see flink_jobs.pipeline.uid): keep the uid, or drop that state with "
        "--allow-non-restored-state",
    ),
    (
        "StateMigrationException",
        "this build cannot read the savepoint's state (incompatible state serializer): "
        "restore with the build that wrote it, or start the job without state",
    ),
    (
        "maximum parallelism",
        "the new parallelism is above the savepoint's maximum parallelism: lower --parallelism",
    ),
    (
        "NoResourceAvailableException",
        "not enough free slots: `tipoff cluster add-taskmanager`, or a lower --parallelism",
    ),
    (
        "FileNotFoundException",
        "the JobManager cannot read the savepoint: check the path (`tipoff savepoint list`)",
    ),
)


def hint_for(failure: Failure) -> str | None:
    text = failure.trace or failure.name
    return next((hint for needle, hint in HINTS if needle in text), None)


class RestoreFailed(FlinkRestError):
    pass


def restore_failure(job_id: str, state: str, failures: list[Failure], cancelled: bool) -> str:
    first = failures[-1] if failures else None  # the oldest: what went wrong first
    cause = first.summary if first is not None else "no exception recorded"
    hint = hint_for(first) if first is not None else None
    msg = f"restore failed: job {job_id} is {state}: {cause}"
    if hint:
        msg += f"\n  what to do: {hint}"
    if cancelled:
        msg += "\n  the job was cancelled so it does not retry the failing restore"
    return msg + f"\n  details: /jobs/{job_id}/exceptions or `tipoff jobs`"


def watch_restore(rest: FlinkRest, job_id: str, timeout_s: float, log: Log) -> float:
    """Until every task of the new job runs (restore done); seconds taken. A failure on the
    way (the job FAILED, or restarting after an exception) raises with its cause, after
    cancelling the job if it would otherwise keep retrying."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    state = "?"
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        detail = rest.job(job_id)
        state = detail["state"]
        failures = rest.exceptions(job_id)
        if failures or state in TERMINAL:
            cancelled = False
            if state not in TERMINAL:
                rest.cancel(job_id)
                cancelled = True
            raise RestoreFailed(restore_failure(job_id, state, failures, cancelled))
        tasks: dict[str, int] = {}
        for v in detail.get("vertices", []):
            tasks[v["status"]] = tasks.get(v["status"], 0) + 1
        if state == "RUNNING" and set(tasks) == {"RUNNING"}:
            return time.monotonic() - t0
        if tasks != last:
            log(f"restore: job {state}, tasks {dict(sorted(tasks.items()))}")
            last = tasks
        time.sleep(1.0)
    raise RestoreFailed(
        f"job {job_id} still {state} after {timeout_s:.0f}s (tasks {last}); it keeps "
        "trying: watch it with `tipoff jobs`, and check the TaskManager logs "
        "(`tipoff cluster status` shows where)"
    )


def submitted_since(jobs: list[Job], name: str, since_ms: float) -> str | None:
    """The newest job named `name` started at or after `since_ms`."""
    found = [j for j in jobs if j.name == name and j.start_time >= since_ms]
    return max(found, key=lambda j: j.start_time).id if found else None


def restore(a: argparse.Namespace, s: Settings, rest: FlinkRest, cluster: StandaloneCluster) -> int:
    from flink_jobs.config import from_args
    from flink_jobs.submit import SubmitError, submit

    location = savepoint_location(a.path)
    if a.from_savepoint and savepoint_location(a.from_savepoint) != location:
        raise FlinkRestError("give the savepoint once: as PATH, not also as --from-savepoint")
    overview = rest.overview()
    free = int(overview.get("slots-available", 0))
    if free < a.parallelism:
        raise FlinkRestError(
            f"parallelism {a.parallelism} needs {a.parallelism} free slot(s); {rest.url} has "
            f"{free}: add TaskManagers (`tipoff cluster add-taskmanager`), stop a job, or "
            "lower --parallelism"
        )
    a.from_savepoint = location
    if not a.checkpoint_dir:
        a.checkpoint_dir = checkpoints_uri(cluster)
    cfg = from_args(a, expand(a.job), s)
    t0, wall_ms = time.monotonic(), time.time() * 1000
    try:
        job_id = submit(
            cfg,
            a.job,
            host_port(rest.url),
            None,
            log=err,
            allow_non_restored_state=a.allow_non_restored_state,
        )
    except SubmitError as e:
        # A restore that fails while the JobManager builds the job (state that maps to no
        # operator, an unreadable savepoint) fails `flink run` too: report the job's cause.
        name = combined_name(cfg.jobs)
        failed = e.job_id or submitted_since(rest.jobs(), name, wall_ms - 5_000)
        if failed is None:
            raise
        state = rest.job(failed)["state"]
        raise RestoreFailed(restore_failure(failed, state, rest.exceptions(failed), False)) from e
    submitted = time.monotonic() - t0
    err(f"submitted {a.job} as job {job_id} in {submitted:.1f}s; waiting for its tasks to run")
    seconds = watch_restore(rest, job_id, a.wait, err)
    err(
        f"restored: job {job_id} ({a.job}) RUNNING with parallelism {cfg.parallelism} from "
        f"{location} ({submitted + seconds:.1f}s)"
    )
    print(job_id)
    return 0
