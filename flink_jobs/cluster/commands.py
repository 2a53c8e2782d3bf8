"""`tipoff cluster` and `tipoff jobs`: the local standalone cluster and the jobs of any
Flink REST API (default: that cluster's). `tipoff savepoint` is in
flink_jobs.cluster.savepoint_commands."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from flink_jobs.cliopts import Subparsers, jobmanager_option, stack_options
from flink_jobs.cluster.common import (
    ACTIVE,
    cluster_settings,
    fmt_duration,
    fmt_time,
    rest_url,
)
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError, Job
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.output import err, fmt_bytes
from flink_jobs.settings import Settings
from udfs.jobs import ALL, JOB_NAMES, combined_name, expand

# --- tipoff cluster -----------------------------------------------------------------------


def cluster_cmd(a: argparse.Namespace, s: Settings) -> int:
    cluster = StandaloneCluster(cluster_settings(a, s), log=err)
    if a.action == "up":
        res = cluster.up(a.taskmanagers, timeout_s=a.timeout)
        if res.started:
            also = res.already_running
            err(
                f"cluster up in {res.seconds:.1f}s: started {', '.join(res.started)}"
                + (f"; already running: {', '.join(also)}" if also else "")
            )
        else:
            err(f"already running: {', '.join(res.already_running)}")
        err(
            f"{res.slots} slot(s); checkpoints in {cluster.lay.checkpoints}, savepoints in "
            f"{cluster.lay.savepoints}, logs in {cluster.lay.logs}"
        )
        err("web UI and REST API:")
        print(res.url)
        return 0
    if a.action == "add-taskmanager":
        t0 = time.monotonic()
        name = cluster.add_taskmanager(timeout_s=a.timeout)
        err(f"{name} registered in {time.monotonic() - t0:.1f}s")
        print(name)
        return 0
    if a.action == "down":
        stopped = cluster.down()
        err(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    return print_status(cluster)


def print_status(cluster: StandaloneCluster) -> int:
    st = cluster.status()
    if not st.rows:
        print(f"not running (state in {cluster.lay.home}); start it with `tipoff cluster up`")
        return 1
    print(f"{'NAME':<11} {'ROLE':<12} {'PID':<8} HEALTH")
    for r in st.rows:
        print(f"{r.name:<11} {r.role:<12} {r.pid or '-'!s:<8} {r.health}")
    for tm in st.unmanaged:
        print(f"{tm:<11} {'taskmanager':<12} {'?':<8} registered, not started by tipoff")
    if st.overview is not None:
        print(
            f"slots: {st.overview.get('slots-total', 0)} total, "
            f"{st.overview.get('slots-available', 0)} free; web UI and REST API {st.url}"
        )
    print(f"logs: {cluster.lay.logs}")
    return 0 if st.ok else 1


# --- tipoff jobs --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointSummary:
    id: int
    at_ms: int
    size: int
    duration_ms: int
    path: str
    is_savepoint: bool


def last_checkpoint(body: dict[str, Any]) -> CheckpointSummary | None:
    done = (body.get("latest") or {}).get("completed")
    if not done:
        return None
    return CheckpointSummary(
        int(done.get("id", 0)),
        int(done.get("latest_ack_timestamp") or done.get("trigger_timestamp") or 0),
        int(done.get("state_size") or done.get("checkpointed_size") or 0),
        int(done.get("end_to_end_duration") or 0),
        str(done.get("external_path") or "-"),
        bool(done.get("is_savepoint")),
    )


def _checkpoint_line(label: str, cp: CheckpointSummary) -> str:
    return (
        f"    {label} #{cp.id} at {fmt_time(cp.at_ms)[11:]}: {fmt_bytes(cp.size)}, "
        f"took {fmt_duration(cp.duration_ms / 1000)}, {cp.path}"
    )


def job_lines(job: Job, checkpoints: dict[str, Any] | None, name_width: int = 24) -> list[str]:
    duration = fmt_duration(job.duration_ms / 1000) if job.duration_ms >= 0 else "-"
    started = fmt_time(job.start_time)
    lines = [f"{job.id}  {job.state:<11} {job.name:<{name_width}} {started:<19}  {duration}"]
    if checkpoints is None:
        lines.append("    checkpoints: not available")
        return lines
    latest = checkpoints.get("latest") or {}
    counts = checkpoints.get("counts") or {}
    cp = last_checkpoint(checkpoints)
    if cp is None:
        lines.append("    no completed checkpoint yet")
    else:
        lines.append(_checkpoint_line("last checkpoint", cp))
    sp = last_checkpoint({"latest": {"completed": latest.get("savepoint")}})
    if sp is not None:
        lines.append(_checkpoint_line("last savepoint", sp))
    failed = latest.get("failed")
    newest_ok = max(cp.at_ms if cp else 0, sp.at_ms if sp else 0)
    if failed and int(failed.get("failure_timestamp") or 0) > newest_ok:
        lines.append(
            f"    checkpoint #{failed.get('id')} failed at "
            f"{fmt_time(int(failed.get('failure_timestamp') or 0))[11:]}: "
            f"{failed.get('failure_message') or 'no message'}"
        )
    if counts:
        lines.append(
            f"    checkpoints: {counts.get('completed', 0)} completed, "
            f"{counts.get('failed', 0)} failed, {counts.get('in_progress', 0)} in progress"
        )
    restored = latest.get("restored")
    if restored and restored.get("external_path"):
        kind = "savepoint" if restored.get("is_savepoint") else "checkpoint"
        lines.append(f"    restored from {kind} {restored['external_path']}")
    return lines


def jobs_cmd(a: argparse.Namespace, s: Settings) -> int:
    cluster = StandaloneCluster(cluster_settings(a, s), log=err)
    rest = FlinkRest(rest_url(a.jobmanager, cluster))
    jobs = rest.jobs()
    if a.running:
        jobs = [j for j in jobs if j.state in ACTIVE]
    if not jobs:
        print(f"no {'running ' if a.running else ''}jobs on {rest.url}")
        return 0
    jobs.sort(key=lambda j: (j.state not in ACTIVE, -j.start_time))
    width = max(24, *(len(j.name) for j in jobs))
    print(f"{'JOB ID':<32}  {'STATE':<11} {'NAME':<{width}} {'STARTED':<19}  DURATION")
    for job in jobs:
        try:
            checkpoints: dict[str, Any] | None = rest.checkpoints(job.id)
        except FlinkRestError:
            checkpoints = None
        for line in job_lines(job, checkpoints, width):
            print(line)
    return 0


class JobNotFound(FlinkRestError):
    pass


def resolve_job(jobs: list[Job], ref: str, url: str) -> Job:
    """A job by full id, id prefix (4+ characters) or name: a JOB argument of `tipoff
    run/submit` (a job of udfs.jobs, or `all`) or the Flink job's own name (`tipoff <job>`,
    `tipoff <job>+<job>`); running jobs win over finished ones of the same name."""
    ref = ref.strip()
    exact = [j for j in jobs if j.id == ref.lower()]
    if exact:
        return exact[0]
    found = [j for j in jobs if len(ref) >= 4 and j.id.startswith(ref.lower())]
    if not found:
        names = {ref, f"tipoff {ref}"}
        if ref in (*JOB_NAMES, ALL):
            names.add(combined_name(expand(ref)))
        named = [j for j in jobs if j.name in names]
        found = [j for j in named if j.state in ACTIVE] or sorted(
            named, key=lambda j: -j.start_time
        )[:1]
    if len(found) == 1:
        return found[0]
    if not found:
        raise JobNotFound(
            f"no job {ref!r} on {url}; `tipoff jobs` lists the jobs there (use an id, an id "
            f"prefix or a name: {', '.join((*JOB_NAMES, ALL))})"
        )
    listed = ", ".join(f"{j.id} ({j.name}, {j.state})" for j in found)
    raise JobNotFound(f"{ref!r} matches several jobs: {listed}; give the full job id")


def add_parsers(sub: Subparsers) -> None:
    """The `cluster` and `jobs` commands' parsers (their handlers are below)."""
    cl = sub.add_parser(
        "cluster",
        help="start/stop/inspect a local standalone Flink session cluster",
        description="A JobManager and N TaskManagers (one slot each) as local processes, "
        "from the Flink distribution inside apache-flink, on 127.0.0.1. Data, logs and pids "
        "under <state dir>/flink-cluster. up: start what is not running, wait until every "
        "TaskManager is registered, print the REST/web URL. add-taskmanager: one more.",
    )
    cl.add_argument("action", choices=["up", "down", "status", "add-taskmanager"])
    cl.add_argument(
        "--taskmanagers", type=int, metavar="N", help="up: TaskManagers to run (default 2)"
    )
    cl.add_argument(
        "--rest-port", type=int, help="REST API and web UI port on 127.0.0.1 (default 8081)"
    )
    cl.add_argument("--rpc-port", type=int, help="JobManager RPC port (default 6123)")
    cl.add_argument(
        "--jobmanager-memory", metavar="SIZE", help="JobManager process size (default 1024m)"
    )
    cl.add_argument(
        "--taskmanager-memory",
        metavar="SIZE",
        help="process size of each TaskManager (default 1536m)",
    )
    cl.add_argument(
        "--heartbeat-timeout",
        type=float,
        metavar="S",
        help="seconds before a silent TaskManager is dropped and its jobs fail over (10)",
    )
    cl.add_argument(
        "--prometheus-ports",
        metavar="FROM-TO",
        help="expose every process's metrics (tipoff's and Flink's) for Prometheus on the "
        "first free port of this range, e.g. 9249-9259; Flink's reporter listens on all "
        "interfaces (default: off; or TIPOFF_FLINK_PROMETHEUS_PORTS)",
    )
    cl.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for registration (180)"
    )
    stack_options(cl)

    jb = sub.add_parser(
        "jobs",
        help="list a Flink cluster's jobs with their last checkpoint",
        description="Jobs over the REST API (running first): id, state, name, start, "
        "duration, and the last completed checkpoint (path, size, duration).",
    )
    jb.add_argument("--running", action="store_true", help="only jobs that are not finished")
    jobmanager_option(jb)
    stack_options(jb)
