"""The cluster a bench runs on: the local standalone cluster, started if it is not running
(the runner stops it again after), checked for free slots and for TaskManagers smaller
than the run asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from flink_jobs.bench.options import BenchError, Options, memory_bytes
from flink_jobs.cluster.home import JOBMANAGER, Layout
from flink_jobs.cluster.rest import FlinkRest
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.output import Log


@dataclass
class Cluster:
    local: StandaloneCluster
    rest: FlinkRest
    started: bool
    taskmanagers: int
    parallelism: int
    taskmanager_bytes: list[int]
    # set when the TaskManagers are smaller than the run asks for (small_taskmanagers)
    memory_note: str | None = None

    @property
    def jobmanager(self) -> str:
        return self.rest.url.removeprefix("http://")

    def pids(self) -> list[int]:
        procs = self.local.processes()
        return [int(p["pid"]) for n, p in procs.items() if self.local.alive(n)]

    @property
    def savepoints(self) -> Path:
        return Layout(self.local.s.home).savepoints

    @property
    def checkpoints_uri(self) -> str:
        return Layout(self.local.s.home).checkpoints.resolve().as_uri()


def open_cluster(local: StandaloneCluster, opts: Options, log: Log) -> Cluster:
    started = False
    if not local.alive(JOBMANAGER):
        log(
            f"bench: starting a local cluster with {opts.taskmanagers} TaskManager(s) of "
            f"{opts.taskmanager_memory}"
        )
        local = StandaloneCluster(
            replace(local.s, taskmanager_memory=opts.taskmanager_memory), local.log, local.env
        )
        local.up(taskmanagers=opts.taskmanagers)
        started = True
    try:
        return _checked(local, opts, started, log)
    except BaseException:
        if started:
            local.down()
        raise


def _checked(local: StandaloneCluster, opts: Options, started: bool, log: Log) -> Cluster:
    rest = local.rest(timeout_s=15)
    overview = rest.overview()
    tms = int(overview.get("taskmanagers", 0))
    parallelism = opts.parallelism or tms
    free = int(overview.get("slots-available", 0))
    if parallelism < 1 or free < parallelism:
        raise BenchError(
            f"parallelism {parallelism} needs {parallelism} free slot(s); {rest.url} has {free} "
            f"of {overview.get('slots-total')}: stop running jobs (`tipoff jobs --running`) or "
            "add TaskManagers (`tipoff cluster add-taskmanager`)"
        )
    slots = int(overview.get("slots-total", 0))
    if slots != tms:
        log(f"note: {slots} slots on {tms} TaskManagers; thread-mode Python shares a GIL per TM")
    sizes = taskmanager_sizes(rest)
    return Cluster(local, rest, started, tms, parallelism, sizes, small_taskmanagers(sizes, opts))


def taskmanager_sizes(rest: FlinkRest) -> list[int]:
    """Each TaskManager's process size in bytes (0: not reported)."""
    return [
        int(tm.get("memoryConfiguration", {}).get("totalProcessMemory", 0))
        for tm in rest.taskmanagers()
    ]


def small_taskmanagers(sizes: list[int], opts: Options) -> str | None:
    """A note when the cluster's TaskManagers are smaller than the run asks for: on the
    full feed their heaps fill and tipoff slows down (GC), which the numbers would show."""
    want = memory_bytes(opts.taskmanager_memory)
    small = [b for b in sizes if 0 < b < want]
    if not small:
        return None
    return (
        f"{len(small)} of {len(sizes)} TaskManagers have less than --taskmanager-memory "
        f"{opts.taskmanager_memory} (smallest {min(small) / 2**20:,.0f} MiB): tipoff's heap "
        "state may fill them (GC slows it down); for a measurement: tipoff cluster down && "
        f"tipoff cluster up --taskmanager-memory {opts.taskmanager_memory}"
    )
