"""`tipoff cluster`, `tipoff jobs` and `tipoff savepoint`: the local standalone cluster and
the jobs and savepoints of any Flink REST API (default: that cluster's)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.cluster.home import ClusterSettings, Layout
from flink_jobs.cluster.rest import Failure, FlinkRest, FlinkRestError, Job
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import Settings
from udfs.jobs import ALL, JOB_NAMES, combined_name, expand

Log = Callable[[str], None]
ACTIVE = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "CANCELLING")
TERMINAL = ("FINISHED", "FAILED", "CANCELED", "SUSPENDED")


def err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- where things are ---------------------------------------------------------------------


def cluster_settings(a: argparse.Namespace, s: Settings) -> ClusterSettings:
    return ClusterSettings.from_env(
        os.environ,
        s.stack,
        rest_port=getattr(a, "rest_port", None),
        rpc_port=getattr(a, "rpc_port", None),
        taskmanagers=getattr(a, "taskmanagers", None),
        jobmanager_memory=getattr(a, "jobmanager_memory", None),
        taskmanager_memory=getattr(a, "taskmanager_memory", None),
        heartbeat_timeout_s=getattr(a, "heartbeat_timeout", None),
        prometheus_ports=getattr(a, "prometheus_ports", None),
    )


def rest_url(jobmanager: str | None, cluster: StandaloneCluster) -> str:
    """--jobmanager as HOST:PORT or URL; default: tipoff's local cluster."""
    if not jobmanager:
        return cluster.url
    url = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
    return url.rstrip("/")


def checkpoints_uri(cluster: StandaloneCluster) -> str:
    """The local cluster's checkpoint folder, beside its savepoints."""
    return Layout(cluster.s.home).checkpoints.resolve().as_uri()


def host_port(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 80}"


def local_path(location: str) -> Path | None:
    """The local folder of a `file:` URI or plain path; None for remote file systems."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" and location:
        return Path(location).expanduser().resolve()
    return None


def dir_size(path: Path) -> tuple[int, int]:
    """Bytes and number of files under `path`."""
    total = files = 0
    for f in path.rglob("*"):
        if f.is_file():
            total += f.stat().st_size
            files += 1
    return total, files


# --- formatting ---------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def fmt_duration(seconds: float) -> str:
    if seconds < 0:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def fmt_time(epoch_ms: float) -> str:
    if epoch_ms <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000))


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


# --- tipoff savepoint ---------------------------------------------------------------------


def check_savepoint(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.cluster import restorecheck, savepoints

    jobs = None if a.job is None else expand(a.job)
    jars = sorted(str(p) for p in Path(s.stack.flink_jars_dir).glob("*.jar")) or None
    try:
        report = restorecheck.check(a.path, jobs=jobs, parallelism=a.parallelism, jars=jars)
    except savepoints.SavepointCheckError as e:
        err(f"tipoff: error: {e}")
        return 2
    for line in report.render():
        print(line)
    return report.exit_code(a.strict)


def savepoint_cmd(a: argparse.Namespace, s: Settings) -> int:
    cluster = StandaloneCluster(cluster_settings(a, s), log=err)
    action = a.savepoint_action
    if action == "check":
        return check_savepoint(a, s)
    if action == "inspect":
        from flink_jobs.cluster.statesize import inspect_cmd

        return inspect_cmd(a)
    if action == "list":
        return list_savepoints(Path(a.dir) if a.dir else cluster.lay.savepoints, cluster)
    rest = FlinkRest(rest_url(a.jobmanager, cluster))
    if action in ("trigger", "stop"):
        return take_savepoint(a, rest, cluster)
    if action == "dispose":
        return dispose(a, rest)
    return restore(a, s, rest, cluster)


def take_savepoint(a: argparse.Namespace, rest: FlinkRest, cluster: StandaloneCluster) -> int:
    job = resolve_job(rest.jobs(), a.job, rest.url)
    if job.state != "RUNNING":
        hint = (
            "wait until it runs again (`tipoff jobs`)"
            if job.state in ACTIVE
            else "restore one of its savepoints (`tipoff savepoint list`) instead"
        )
        raise FlinkRestError(
            f"job {job.id} ({job.name}) is {job.state}: only a RUNNING job can take a "
            f"savepoint; {hint}"
        )
    target = Path(a.dir).resolve() if a.dir else cluster.lay.savepoints
    target.mkdir(parents=True, exist_ok=True)
    if a.savepoint_action == "stop":
        what = "stop with savepoint" + (" (drain: all pending ticks fire)" if a.drain else "")
        err(f"{what}: job {job.id} ({job.name}) -> {target}")
        t0, since = time.monotonic(), time.time() - 1
        try:
            res = rest.stop(job.id, target.as_uri(), drain=a.drain, timeout_s=a.timeout)
            path, seconds = res.path, res.seconds
        except FlinkRestError as e:
            # `tipoff run`'s local cluster exits with its job, often before the savepoint's
            # status can be read: the savepoint is then the job's newest complete one.
            written = savepoint_written_since(target, job.id, since)
            if "unreachable" not in str(e) or written is None:
                raise
            path, seconds = written.as_uri(), time.monotonic() - t0
        state = _final_state(rest, job.id)
    else:
        err(f"savepoint: job {job.id} ({job.name}) -> {target}")
        res = rest.trigger(job.id, target.as_uri(), timeout_s=a.timeout)
        path, seconds, state = res.path, res.seconds, "RUNNING (keeps running)"
    print_savepoint(path, seconds, f"{job.id} {job.name}: {state}")
    return 0


def savepoint_written_since(folder: Path, job_id: str, since_s: float) -> Path | None:
    """The newest complete savepoint of `job_id` in `folder` written after `since_s`."""
    for sp in find_savepoints(folder):
        if sp.complete and sp.job_prefix == job_id[:6] and sp.created >= since_s:
            return sp.path
    return None


def _final_state(rest: FlinkRest, job_id: str) -> str:
    try:
        state = rest.wait_for_state(job_id, set(TERMINAL), 30)
    except FlinkRestError as e:
        if "unreachable" in str(e):
            return "FINISHED (its cluster exited with it, as `tipoff run` does)"
        return "stopping"
    return f"{state} (stopped with the savepoint)" if state == "FINISHED" else state


def print_savepoint(location: str, seconds: float, job: str) -> None:
    local = local_path(location)
    if local is not None and local.is_dir():
        size, files = dir_size(local)
        on_disk = f"{fmt_bytes(size)} on disk ({files} file(s))"
    else:
        on_disk = "unknown (not on local disk)"
    print(f"savepoint  {location}")
    print(f"size       {on_disk}")
    print(f"took       {fmt_duration(seconds)}")
    print(f"job        {job}")


@dataclass(frozen=True)
class SavepointDir:
    path: Path
    created: float
    size: int
    complete: bool

    @property
    def job_prefix(self) -> str:
        # savepoint-<first 6 hex of the job id>-<random>
        parts = self.path.name.split("-")
        return parts[1] if len(parts) >= 3 else "?"


def find_savepoints(folder: Path) -> list[SavepointDir]:
    """Savepoints in `folder`, newest first; complete ones have their `_metadata`."""
    found = []
    for d in folder.glob("savepoint-*"):
        if not d.is_dir():
            continue
        meta = d / "_metadata"
        created = (meta if meta.is_file() else d).stat().st_mtime
        found.append(SavepointDir(d, created, dir_size(d)[0], meta.is_file()))
    return sorted(found, key=lambda sp: sp.created, reverse=True)


def list_savepoints(folder: Path, cluster: StandaloneCluster) -> int:
    found = find_savepoints(folder) if folder.is_dir() else []
    if not found:
        print(f"no savepoints in {folder}")
        return 0
    names: dict[str, str] = {}
    try:  # best effort: name the jobs the cluster still knows
        for j in FlinkRest(cluster.url, timeout_s=2).jobs():
            names.setdefault(j.id[:6], j.name)
    except FlinkRestError:
        pass
    print(f"{'CREATED':<19}  {'SIZE':>9}  {'JOB':<30} PATH")
    for sp in found:
        job = sp.job_prefix + (f" ({names[sp.job_prefix]})" if sp.job_prefix in names else "")
        note = "" if sp.complete else "  (incomplete: no _metadata)"
        print(
            f"{fmt_time(sp.created * 1000):<19}  {fmt_bytes(sp.size):>9}  {job:<30} {sp.path}{note}"
        )
    return 0


def savepoint_location(path: str) -> str:
    """A savepoint argument as the URI the JobManager reads; local ones must be complete."""
    local = local_path(path)
    if local is None:
        return path  # a remote file system: the JobManager checks
    if local.name == "_metadata":
        local = local.parent
    if not (local / "_metadata").is_file():
        problem = "does not exist" if not local.exists() else "has no _metadata (incomplete?)"
        raise FlinkRestError(
            f"savepoint {local} {problem}; `tipoff savepoint list` shows the savepoints"
        )
    return local.resolve().as_uri()


def dispose(a: argparse.Namespace, rest: FlinkRest) -> int:
    location = savepoint_location(a.path)
    local = local_path(location)
    size = dir_size(local)[0] if local is not None else 0
    seconds = rest.dispose(location, timeout_s=a.timeout)
    left = local is not None and local.exists() and any(local.iterdir())
    if local is not None and local.exists() and not left:
        local.rmdir()  # the JobManager deletes the files, not always the empty folder
    print(f"disposed   {location}")
    print(f"freed      {fmt_bytes(size)}" + (" (some files remain)" if left else ""))
    print(f"took       {fmt_duration(seconds)}")
    return 0


# --- restore ------------------------------------------------------------------------------

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
