"""`tipoff savepoint`: check, inspect, trigger, stop, list and dispose the savepoints of
the local standalone cluster or of any Flink REST API; restore is in
flink_jobs.cluster.restore."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from flink_jobs.cliopts import JOB_CHOICES, JOBS_TEXT, Subparsers, jobmanager_option, stack_options
from flink_jobs.cluster.commands import resolve_job
from flink_jobs.cluster.common import (
    ACTIVE,
    TERMINAL,
    cluster_settings,
    dir_size,
    fmt_duration,
    fmt_time,
    local_path,
    rest_url,
    savepoint_location,
)
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.cluster.restore import restore
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.config import add_job_options
from flink_jobs.output import err, fmt_bytes
from flink_jobs.settings import Settings
from udfs.jobs import ALL, JOB_NAMES, expand


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


def add_parser(sub: Subparsers) -> None:
    """The `savepoint` command's parser (its handlers: this module and restore.py)."""
    sp = sub.add_parser(
        "savepoint",
        help="trigger, stop with, list, restore and dispose of savepoints",
        description=f"JOB is a job id, an id prefix or a name ({', '.join(JOB_NAMES)}, {ALL}). "
        "Savepoints go "
        "to <state dir>/flink-cluster/savepoints unless --dir is given.",
    )
    spsub = sp.add_subparsers(dest="savepoint_action", required=True, metavar="ACTION")
    for action, text in (
        ("trigger", "take a savepoint; the job keeps running"),
        ("stop", "take a savepoint and stop the job (resume it with `savepoint restore`)"),
    ):
        p = spsub.add_parser(action, help=text, description=text)
        p.add_argument(
            "job",
            metavar="JOB",
            help=f"a job id, an id prefix (4+ characters) or a name: {JOBS_TEXT}",
        )
        if action == "stop":
            p.add_argument(
                "--drain",
                action="store_true",
                help="advance event time to the end first: every pending tick fires (only "
                "when the job will not be resumed)",
            )
        p.add_argument("--dir", help="savepoint folder (default: the cluster's)")
        p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for it (300)")
        jobmanager_option(p)
        stack_options(p)
    ls = spsub.add_parser("list", help="savepoints in the savepoint folder, newest first")
    ls.add_argument("--dir", help="savepoint folder (default: the cluster's)")
    stack_options(ls)
    rs = spsub.add_parser(
        "restore",
        help="submit a job that starts from a savepoint (this build, any parallelism)",
        description="Submit the job with `tipoff submit`'s path, restoring PATH, and wait "
        "until all its tasks run; a failed restore is reported with its cause and cancelled.",
    )
    rs.add_argument("path", metavar="PATH", help="savepoint folder or URI")
    rs.add_argument("--job", required=True, metavar="JOB", choices=JOB_CHOICES, help=JOBS_TEXT)
    rs.add_argument(
        "--allow-non-restored-state",
        action="store_true",
        help="drop savepoint state no operator of this build claims instead of failing",
    )
    rs.add_argument(
        "--wait", type=float, default=180.0, help="seconds to wait for the tasks to run (180)"
    )
    jobmanager_option(rs)
    add_job_options(rs)
    stack_options(rs)
    dp = spsub.add_parser("dispose", help="delete a savepoint through the JobManager")
    dp.add_argument("path", metavar="PATH", help="savepoint folder or URI")
    dp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (120)")
    jobmanager_option(dp)
    stack_options(dp)
    ck = spsub.add_parser(
        "check",
        help="can this build restore PATH? (uids, state names; exit 1 if state would be lost)",
        description="Before a deploy: reads the savepoint's metadata and keyed-state headers, "
        "plans this build's job graph offline (no cluster, registry or Kafka) and compares "
        "operator by operator. FAIL: savepoint state no operator of this build claims (a "
        "renamed or removed uid; restoring would need --allow-non-restored-state and lose "
        "it), a changed key type or max parallelism. WARN: state this build no longer "
        "declares (carried along, unused). NOTE: new state (starts empty). Exit 0 ok, 1 FAIL "
        "(or WARN with --strict), 2 unreadable savepoint.",
    )
    ck.add_argument("path", metavar="PATH", help="savepoint (or retained checkpoint) folder")
    ck.add_argument(
        "--job",
        metavar="JOB",
        choices=JOB_CHOICES,
        help=f"the job the savepoint is restored into: {JOBS_TEXT} (default: the jobs whose "
        "uids it holds)",
    )
    ck.add_argument("--parallelism", type=int, default=1, help="parallelism to restore at (1)")
    ck.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    stack_options(ck)
    ins = spsub.add_parser(
        "inspect",
        help="state size per operator, and keyed state per user / game",
        description="Reads the savepoint's (or retained checkpoint's) metadata: the state "
        "bytes of every operator with state; with --users / --games, the features "
        "operators' keyed state divided by that many active users / games (a mean). With "
        "--per-key, reads the features operators' keyed state itself and attributes each "
        "entry to its user / game: keys, median, p10, p90, p99, max and mean bytes per key, "
        "and each state's share. Exit 2 if the savepoint cannot be read (or, with "
        "--per-key, is not an uncompressed canonical savepoint).",
    )
    ins.add_argument("path", metavar="PATH", help="savepoint (or retained checkpoint) folder")
    ins.add_argument("--users", type=int, metavar="N", help="active users in the input")
    ins.add_argument("--games", type=int, metavar="N", help="active games in the input")
    ins.add_argument(
        "--per-key",
        action="store_true",
        help="bytes per user / game: the distribution over keys (median, p90, ...) and the "
        "share of each state; needs a canonical savepoint (the default format); a key's "
        "bytes are its entries as serialized in the savepoint (key, namespace, value and "
        "length prefixes), without the stream's header and markers",
    )
