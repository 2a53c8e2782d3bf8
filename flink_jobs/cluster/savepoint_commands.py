"""`tipoff savepoint`: check, inspect, trigger, stop, list and dispose the savepoints of
the local standalone cluster or of any Flink REST API; restore is in
flink_jobs.cluster.restore."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from flink_jobs.cluster.commands import resolve_job
from flink_jobs.cluster.common import (
    ACTIVE,
    TERMINAL,
    cluster_settings,
    dir_size,
    err,
    fmt_bytes,
    fmt_duration,
    fmt_time,
    local_path,
    rest_url,
    savepoint_location,
)
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.cluster.restore import restore
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import Settings
from udfs.jobs import expand


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
