"""How fast a job consumes its input, and what it costs the Flink processes.

Progress comes from the Kafka sources' own metrics over the REST API:
`<source>.KafkaSourceReader.topic.<topic>.partition.<n>.currentOffset` (the offset of the
last record the reader emitted) summed over partitions, per source operator and topic.
The preloaded topics are written without transactions, so offsets count records. The
JobManager refreshes metrics at most every `metrics.fetcher.update-interval` (tipoff's
cluster sets 1 s; Flink's default is 10 s): a sample is up to that old, which is why rates
are taken over many seconds between two interior samples.

CPU time (utime + stime) and resident memory come from /proc for the cluster's processes
(JobManager and TaskManagers; thread-mode Python runs inside the TaskManager JVMs).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flink_jobs.cluster.rest import FlinkRest, FlinkRestError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_OFFSET_METRIC = re.compile(
    r"^(?P<op>.+)\.KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<p>\d+)\.currentOffset$"
)


def metric_topic(topic: str) -> str:
    """How a topic name appears inside a metric id (dots separate metric groups)."""
    return topic.replace(".", "_")


# --- /proc ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14, 15 of stat


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


_THREAD_SUFFIX = re.compile(r"[-#\s]*\d*$")


def thread_group(comm: str) -> str:
    """A thread's name without its number: "GC Thread#3" -> "GC Thread". Linux keeps 15
    characters of a name; Flink names task threads after their operator chain."""
    return _THREAD_SUFFIX.sub("", comm).strip() or comm


def thread_cpu(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds so far of every thread of `pids`, summed by thread_group."""
    out: dict[str, float] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            group = thread_group(comm)
            out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def thread_breakdown(
    snapshots: Sequence[tuple[float, dict[str, float]]], start: float, end: float, events: float
) -> dict[str, float]:
    """CPU seconds per million events by thread group, between the snapshots nearest inside
    [start, end] (largest first); {} without two such snapshots."""
    inside = [s for s in snapshots if start - 1e-6 <= s[0] <= end + 1e-6]
    if len(inside) < 2 or events <= 0:
        return {}
    (t0, a), (t1, b) = inside[0], inside[-1]
    scale = 1e6 / (events * (t1 - t0) / (end - start)) if end > start else 0.0
    delta = {k: (b.get(k, 0.0) - a.get(k, 0.0)) * scale for k in b}
    return dict(sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1]))


# --- progress ------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # wall clock, epoch seconds
    consumed: dict[str, int]  # "<source operator>|<topic>" -> records emitted by the reader
    cpu_s: float  # CPU seconds of the Flink processes so far
    rss: int  # their resident memory now, bytes


@dataclass
class SourceProgress:
    """Reads the per-partition offsets of every Kafka source of a job."""

    rest: FlinkRest
    job_id: str
    topics: Sequence[str]
    _ids: dict[str, list[str]] = field(default_factory=dict)  # vertex id -> offset metrics
    _reads: int = 0

    def _discover(self) -> None:
        wanted = {metric_topic(t) for t in self.topics}
        for v in self.rest.job(self.job_id).get("vertices", []):
            listed = self.rest.call(
                "GET", f"/jobs/{self.job_id}/vertices/{v['id']}/subtasks/metrics"
            )
            ids = [m["id"] for m in listed]
            found = [i for i in ids if (m := _OFFSET_METRIC.match(i)) and m["topic"] in wanted]
            if found:
                self._ids[v["id"]] = sorted(found)

    def read(self) -> dict[str, int]:
        """ "<operator>|<topic>" -> records consumed so far (partitions not yet reporting
        count 0). Lists the metric ids until every wanted topic has a source reading it,
        then every 20th read (a partition assigned late)."""
        wanted = {metric_topic(t) for t in self.topics}
        found = {
            m["topic"] for ids in self._ids.values() for i in ids if (m := _OFFSET_METRIC.match(i))
        }
        self._reads += 1
        if not wanted <= found or self._reads % 20 == 0:
            self._discover()
        consumed: dict[str, int] = {}
        for vertex, ids in self._ids.items():
            query = urllib.parse.quote(",".join(ids), safe=",")
            values = self.rest.call(
                "GET", f"/jobs/{self.job_id}/vertices/{vertex}/subtasks/metrics?get={query}&agg=sum"
            )
            for item in values:
                m = _OFFSET_METRIC.match(item["id"])
                if m is None:
                    continue
                key = f"{m['op']}|{m['topic']}"
                # Partitions of one subtask report once each; the sum over subtasks is that
                # one value. -1 (nothing read yet) counts as 0 records.
                consumed[key] = consumed.get(key, 0) + max(0, int(float(item["sum"])) + 1)
        return consumed


def progress(
    consumed: Mapping[str, int], totals: Mapping[str, int], records: int, sources: int = 1
) -> float:
    """Input records fully consumed, as the slowest source sees it: `records` times the
    smallest fraction any (source, topic) has read; 0 until `sources` (source, topic)
    pairs report. `totals`: metric topic -> records."""
    if len(consumed) < sources:
        return 0.0
    fractions = []
    for key, n in consumed.items():
        topic = key.split("|", 1)[1]
        if totals.get(topic):
            fractions.append(min(1.0, n / totals[topic]))
    if not fractions:
        return 0.0
    return records * min(fractions)


class Sampler(threading.Thread):
    """Samples a job's progress and the Flink processes' CPU and RSS every `interval_s`."""

    def __init__(
        self,
        source: SourceProgress | None,
        pids: Sequence[int],
        interval_s: float = 0.25,
        on_error: Callable[[str], None] | None = None,
        threads_every_s: float = 1.0,
    ) -> None:
        super().__init__(daemon=True)
        self.source, self.pids, self.interval_s = source, list(pids), interval_s
        self.samples: list[Sample] = []
        # per-thread CPU, less often (a few hundred threads to read)
        self.threads: list[tuple[float, dict[str, float]]] = []
        self.threads_every_s = threads_every_s
        self.on_error = on_error
        self._halt = threading.Event()
        self._errors = 0

    def sample(self) -> Sample:
        consumed: dict[str, int] = {}
        if self.source is not None:
            try:
                consumed = self.source.read()
            except (FlinkRestError, KeyError, ValueError) as e:
                self._errors += 1
                if self.on_error is not None and self._errors in (1, 10, 100):
                    self.on_error(f"progress sample failed ({self._errors}x): {e}")
        return Sample(
            time.time(),
            consumed,
            sum(cpu_seconds(p) for p in self.pids),
            sum(rss_bytes(p) for p in self.pids),
        )

    def run(self) -> None:
        next_threads = 0.0
        while not self._halt.is_set():
            t0 = time.monotonic()
            self.samples.append(self.sample())
            if t0 >= next_threads:
                self.threads.append((time.time(), thread_cpu(self.pids)))
                next_threads = t0 + self.threads_every_s
            self._halt.wait(max(0.0, self.interval_s - (time.monotonic() - t0)))

    def stop(self) -> list[Sample]:
        self._halt.set()
        self.join(30)
        self.samples.append(self.sample())  # CPU and RSS at the end
        return self.samples


# --- rates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    start: float  # epoch seconds where the window starts
    events_per_s: float
    window_s: float  # seconds of the measured window
    events: float  # events consumed in it
    cpu_s: float  # Flink CPU seconds spent in it
    basis: str  # how the window was chosen

    @property
    def cpu_s_per_million(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events > 0 else 0.0


def fresh(points: Sequence[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """The samples that saw a new progress value (the first sample after each metric
    refresh): repeats of a stale value carry no timing information."""
    out: list[tuple[float, float, float]] = []
    for p in sorted(points, key=lambda p: p[0]):
        if p[1] > 0 and (not out or p[1] != out[-1][1]):
            out.append(p)
    return out


def sustained(
    points: Sequence[tuple[float, float, float]],
    total: float,
    warmup_fraction: float = 0.1,
    finish: tuple[float, float] | None = None,
    start: tuple[float, float] | None = None,
    min_window_s: float = 5.0,
) -> Rate | None:
    """Events/s after warm-up from (time, progress, cpu seconds) samples.

    Only samples that saw a new value count (`fresh`). The window starts at the first past
    `warmup_fraction` of `total` (start-up, JIT and the first fetches behind it) and ends at
    the last still below `total` (the end of input and what follows it left out). A metric
    value is up to one refresh interval old, so for a bounded job (`finish` given: time and
    cpu seconds when its sources finished, exact) a window shorter than `min_window_s` is
    not trusted: the window then ends at `finish`, from the first fresh sample past warm-up
    (or any); when no sample saw progress before the end, it spans `start` (the sources'
    deployment) to `finish`, start-up included. None if nothing usable was sampled."""
    moving = fresh(points)
    interior = [p for p in moving if p[1] < total]
    started = [p for p in interior if p[1] >= warmup_fraction * total] or interior
    long_enough = len(started) >= 2 and started[-1][0] > started[0][0]
    if long_enough and (finish is None or started[-1][0] - started[0][0] >= min_window_s):
        a, b = started[0], started[-1]
        return Rate(
            a[0],
            (b[1] - a[1]) / (b[0] - a[0]),
            b[0] - a[0],
            b[1] - a[1],
            b[2] - a[2],
            "after warm-up",
        )
    if finish is not None and started and finish[0] > started[0][0]:
        a = started[0]
        return Rate(
            a[0],
            (total - a[1]) / (finish[0] - a[0]),
            finish[0] - a[0],
            total - a[1],
            finish[1] - a[2],
            "after warm-up to sources finished",
        )
    if finish is not None and start is not None and finish[0] > start[0]:
        return Rate(
            start[0],
            total / (finish[0] - start[0]),
            finish[0] - start[0],
            total,
            finish[1] - start[1],
            "sources' start to finish, start-up included (too fast to sample)",
        )
    return None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil
    return float(sorted_values[int(min(rank, len(sorted_values))) - 1])


def vertex_window(job: dict[str, Any], source_prefix: str = "Source") -> tuple[float, float] | None:
    """(start, end) in epoch seconds of a finished job's source vertices, from /jobs/:id."""
    vs = [v for v in job.get("vertices", []) if str(v.get("name", "")).startswith(source_prefix)]
    if not vs or any(int(v.get("end-time", -1)) <= 0 for v in vs):
        return None
    return min(v["start-time"] for v in vs) / 1000, max(v["end-time"] for v in vs) / 1000
