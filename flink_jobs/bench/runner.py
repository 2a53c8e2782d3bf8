"""`tipoff bench`: one invocation, one cluster, one preloaded topic; every job measured the
same way so the ratios compare like with like.

1. the local standalone cluster (started if it is not running, stopped again after);
2. N simulated events preloaded into fresh bench topics;
3. the JVM jobs, one after another, bounded: copy (I/O ceiling), tumble (reference), over;
4. tipoff (both jobs, exactly-once, unbounded) from the earliest offset until it has
   consumed everything; a savepoint then gives the state bytes per active user;
5. freshness: tipoff again on empty topics, the simulator live at a fixed rate (default:
   half of what tipoff sustained in 4), at-least-once and then exactly-once;
6. the table, the JSON result and the chart.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flink_jobs.bench import freshness, jvm_jobs, measure, preload, report
from flink_jobs.bench.options import BenchError, Options, memory_bytes, options_from_args
from flink_jobs.cluster.home import JOBMANAGER, Layout
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.config import AT_LEAST_ONCE, EXACTLY_ONCE, JOBS, add_job_options, from_args
from flink_jobs.settings import Settings
from udfs.jobs import JOB, JOB_NAMES

Log = Callable[[str], None]
TERMINAL = ("FINISHED", "FAILED", "CANCELED", "SUSPENDED")


# --- the cluster ---------------------------------------------------------------------------


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


# --- running and watching jobs -------------------------------------------------------------


def _failure(rest: FlinkRest, job_id: str) -> str:
    try:
        failures = rest.exceptions(job_id)
    except FlinkRestError:
        return "no exception history"
    return failures[0].summary if failures else "no exception history"


def _state(rest: FlinkRest, job_id: str) -> str:
    return str(rest.job(job_id).get("state", "?"))


def wait_running(rest: FlinkRest, job_id: str, timeout_s: float) -> None:
    """Until the job and every one of its vertices are RUNNING."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = rest.job(job_id)
        if job["state"] in TERMINAL:
            raise BenchError(f"job {job_id} is {job['state']}: {_failure(rest, job_id)}")
        if job["state"] == "RUNNING" and all(
            v.get("status") == "RUNNING" for v in job.get("vertices", [])
        ):
            return
        time.sleep(0.5)
    raise BenchError(f"job {job_id} not running after {timeout_s:.0f}s")


def cancel(rest: FlinkRest, job_id: str, log: Log) -> None:
    try:
        if _state(rest, job_id) not in TERMINAL:
            rest.cancel(job_id)
            rest.wait_for_state(job_id, {"CANCELED", "FAILED", "FINISHED"}, 120)
    except FlinkRestError as e:
        log(f"note: cancelling {job_id}: {e}")


def _throughput_row(
    name: str,
    job_id: str,
    sampler: measure.Sampler,
    totals: dict[str, int],
    records: int,
    opts: Options,
    wall_s: float,
    finish: tuple[float, float] | None = None,
    start: tuple[float, float] | None = None,
    sources: int = 1,
) -> dict[str, Any]:
    samples = sampler.samples
    points = [
        (s.t, measure.progress(s.consumed, totals, records, sources), s.cpu_s) for s in samples
    ]
    rate = measure.sustained(points, records, opts.warmup_fraction, finish, start)
    if rate is None:
        raise BenchError(f"{name}: no progress sampled for job {job_id}; is the input empty?")
    end = rate.start + rate.window_s
    return {
        "job_id": job_id,
        "events": records,
        "events_per_s": rate.events_per_s,
        "window_s": rate.window_s,
        "window_events": rate.events,
        "basis": rate.basis,
        "cpu_s_per_million": rate.cpu_s_per_million,
        "peak_rss_bytes": max((s.rss for s in samples), default=0),
        "wall_s": wall_s,
        "samples": len(samples),
        # where the Flink processes' CPU went in the window, by thread (names cut at 15
        # characters by Linux; task threads are named after their operator chain)
        "cpu_s_per_million_by_thread": {
            k: round(v, 2)
            for k, v in measure.thread_breakdown(
                sampler.threads, rate.start, end, rate.events
            ).items()
        },
        # (seconds since the first sample, input events consumed, Flink CPU seconds, RSS MiB)
        "series": [
            [
                round(s.t - samples[0].t, 2),
                round(p[1]),
                round(s.cpu_s - samples[0].cpu_s, 2),
                round(s.rss / 2**20),
            ]
            for s, p in zip(samples, points, strict=True)
        ],
    }


def run_jvm_job(
    kind: str,
    cluster: Cluster,
    bs: Settings,
    prefix: str,
    feed: preload.Feed,
    opts: Options,
    run_id: str,
    log: Log,
) -> dict[str, Any]:
    """Submit one JVM job over the preloaded interactions and watch it to the end."""
    topic = bs.topics.user_interactions
    ep = jvm_jobs.Endpoints(bs.endpoints.bootstrap_servers, bs.endpoints.registry_url)
    jvm_jobs.create_output_topics(
        ep.bootstrap_servers, [jvm_jobs.output_topic(kind, prefix)], opts.partitions
    )
    jars = tuple(str(p) for p in sorted(bs.stack.flink_jars_dir.glob("*.jar")))
    job = jvm_jobs.build(
        kind,
        ep,
        topic,
        prefix,
        run_id=run_id,
        parallelism=cluster.parallelism,
        checkpoint_interval_ms=opts.checkpoint_interval_ms,
        jars=jars,
        out_of_orderness_ms=opts.out_of_orderness_ms,
    )
    t0 = time.monotonic()
    job_id = jvm_jobs.submit(job, cluster.jobmanager, log)
    records = feed.per_topic[topic]
    sampler = measure.Sampler(
        measure.SourceProgress(cluster.rest, job_id, [topic]), cluster.pids(), on_error=log
    )
    sampler.start()
    # The OVER job is context, and slow on the full feed: measured for at most this long.
    cap = opts.over_max_s if kind == "over" else None
    try:
        deadline = time.monotonic() + opts.job_timeout_s
        while (state := _state(cluster.rest, job_id)) not in TERMINAL:
            if cap is not None and time.monotonic() - t0 > cap:
                state = "CAPPED"
                log(f"bench: {job.name}: measured for {cap:.0f}s (--over-seconds); cancelling")
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{job.name}: not finished after {opts.job_timeout_s:.0f}s")
            time.sleep(0.5)
    finally:
        samples = sampler.stop()
        if _state(cluster.rest, job_id) not in TERMINAL:
            cancel(cluster.rest, job_id, log)
    if state not in ("FINISHED", "CAPPED"):
        raise BenchError(f"{job.name}: job {job_id} {state}: {_failure(cluster.rest, job_id)}")
    wall = time.monotonic() - t0
    finish = start = None
    window = None if state == "CAPPED" else measure.vertex_window(cluster.rest.job(job_id))
    if window is not None:
        finish = (window[1], _cpu_at(samples, window[1]))
        start = (window[0], _cpu_at(samples, window[0]))
    row = _throughput_row(
        f"jvm {kind}",
        job_id,
        sampler,
        {measure.metric_topic(topic): records},
        records,
        opts,
        wall,
        finish,
        start,
    )
    row["name"] = job.name
    if state == "CAPPED":
        totals = {measure.metric_topic(topic): records}
        done = max(measure.progress(x.consumed, totals, records) for x in samples)
        row["events"] = round(done)
        row["basis"] += f"; the first {cap:.0f} s only ({done:,.0f} of {records:,} events)"
    row["records_out"] = sum(
        int(v["metrics"].get("write-records", 0))
        for v in cluster.rest.job(job_id)["vertices"]
        if "Writer" in v["name"]
    )
    log(f"bench: {job.name}: {row['events_per_s']:,.0f} events/s ({row['basis']})")
    return row


def _cpu_at(samples: list[measure.Sample], t: float) -> float:
    """CPU seconds of the first sample at or after `t` (the last one if none)."""
    after = [s for s in samples if s.t >= t]
    return after[0].cpu_s if after else samples[-1].cpu_s


def tipoff_config(bs: Settings, cluster: Cluster, opts: Options, guarantee: str) -> Any:
    p = argparse.ArgumentParser()
    add_job_options(p)
    a = p.parse_args(
        [
            "--parallelism",
            str(cluster.parallelism),
            "--checkpoint-interval",
            str(opts.checkpoint_interval_ms),
            "--delivery-guarantee",
            guarantee,
            "--checkpoint-dir",
            cluster.checkpoints_uri,
            "--tick-ms",
            str(opts.tick_ms),
            "--out-of-orderness-ms",
            str(opts.out_of_orderness_ms),
            "--state-backend",
            opts.state_backend,
        ]
    )
    return from_args(a, JOBS, bs)


def submit_tipoff(bs: Settings, cluster: Cluster, opts: Options, guarantee: str, log: Log) -> str:
    """`tipoff submit all` (detached: returns once the cluster has the job)."""
    from flink_jobs.submit import submit

    cfg = tipoff_config(bs, cluster, opts, guarantee)
    t0 = time.monotonic()
    job_id = submit(cfg, "all", cluster.jobmanager, None, log=log)
    log(f"bench: tipoff ({guarantee}) job {job_id} submitted in {time.monotonic() - t0:.0f}s")
    return job_id


def run_tipoff(
    cluster: Cluster, bs: Settings, feed: preload.Feed, opts: Options, log: Log
) -> tuple[dict[str, Any], dict[str, Any]]:
    """tipoff over the preloaded input until consumed; then a savepoint for the state size."""
    topics = [bs.topics.user_interactions, bs.topics.game_events]
    totals = {measure.metric_topic(t): feed.per_topic[t] for t in topics}
    t0 = time.monotonic()
    job_id = submit_tipoff(bs, cluster, opts, EXACTLY_ONCE, log)
    # Sampling starts before the tasks run: the first records are read within a second.
    sampler = measure.Sampler(
        measure.SourceProgress(cluster.rest, job_id, topics), cluster.pids(), on_error=log
    )
    sampler.start()
    try:
        wait_running(cluster.rest, job_id, 300)
        deadline = time.monotonic() + opts.job_timeout_s
        last_log = time.monotonic()
        while True:
            state = _state(cluster.rest, job_id)
            if state in TERMINAL or state == "RESTARTING":
                raise BenchError(f"tipoff job {job_id} {state}: {_failure(cluster.rest, job_id)}")
            done = sampler.samples[-1] if sampler.samples else None
            p = measure.progress(done.consumed, totals, feed.records, 3) if done else 0.0
            if p >= feed.records:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"tipoff: input not consumed after {opts.job_timeout_s:.0f}s")
            if time.monotonic() - last_log > 15:
                log(f"bench: tipoff consumed {p:,.0f}/{feed.records:,}")
                last_log = time.monotonic()
            time.sleep(0.5)
        sampler.stop()
        row = _throughput_row(
            "tipoff",
            job_id,
            sampler,
            totals,
            feed.records,
            opts,
            time.monotonic() - t0,
            sources=sum(len(JOB[j].inputs) for j in JOB_NAMES),  # Kafka sources
        )
        row["name"] = f"tipoff {' + '.join(JOB_NAMES)} (one Flink job), exactly-once"
        log(f"bench: tipoff: {row['events_per_s']:,.0f} events/s ({row['basis']})")
        sizes = state_size(cluster, job_id, feed, opts, log)
    finally:
        if sampler.is_alive():
            sampler.stop()
        cancel(cluster.rest, job_id, log)
    return row, sizes


def state_size(
    cluster: Cluster, job_id: str, feed: preload.Feed, opts: Options, log: Log
) -> dict[str, Any]:
    """The keyed state of both features operators from a canonical savepoint: total (so
    the mean per active user) and per key (median, p10/p90/p99, max, state shares; see
    flink_jobs/cluster/keysizes.py for what a key's bytes include)."""
    from flink_jobs.cluster import keysizes, savepoints, statesize

    result = cluster.rest.trigger(job_id, cluster.savepoints.resolve().as_uri(), timeout_s=600)
    info = savepoints.inspect(result.path)
    size = statesize.measure(info, users=feed.users, games=feed.games)
    per = {op.entity: op for op in size.operators if op.entity}
    user, game = per.get("user"), per.get("game")
    out: dict[str, Any] = {
        "savepoint": result.path,
        "savepoint_bytes": size.total,
        "users": feed.users,
        "games": feed.games,
        "user_keyed_bytes": user.keyed_bytes if user else None,
        "bytes_per_active_user": user.keyed_per_entity if user else None,
        "game_keyed_bytes": game.keyed_bytes if game else None,
        "bytes_per_game": game.keyed_per_entity if game else None,
        "kind": "keyed state bytes in a canonical savepoint "
        f"({opts.state_backend} backend): bytes_per_* = keyed bytes / active entities (a "
        "mean); *_median_bytes etc. = per key, each key's serialized entries",
    }
    t0 = time.monotonic()
    try:
        by_uid = keysizes.measure_keys(result.path, list(statesize.ENTITIES))
    except savepoints.SavepointCheckError as e:
        log(f"note: no per-key state sizes: {e}")
        out["per_key_error"] = str(e)[:500]
        by_uid = {}
    for op_uid, sizes in by_uid.items():
        out.update(sizes.summary(statesize.ENTITIES[op_uid]))
    if by_uid:
        median = out.get("user_median_bytes")
        log(
            f"bench: per-key state read in {time.monotonic() - t0:.1f}s: median "
            f"{report._num(median)} B per user ({report._num(out.get('user_keys'))} keys), "
            f"mean {report._num(out.get('bytes_per_active_user'))} B per active user"
        )
    try:
        cluster.rest.dispose(result.path)
    except FlinkRestError as e:
        log(f"note: savepoint {result.path} not disposed: {e}")
    return out


def run_freshness(
    cluster: Cluster,
    s: Settings,
    run_id: str,
    rate: float,
    opts: Options,
    env: dict[str, str],
    log: Log,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rate": rate,
        "duration_s": opts.freshness_duration_s,
        "warmup_s": opts.freshness_warmup_s,
        "checkpoint_interval_ms": opts.checkpoint_interval_ms,
    }
    base = opts.tick_ms + opts.out_of_orderness_ms + 500
    for guarantee, target in (
        (AT_LEAST_ONCE, base),
        (EXACTLY_ONCE, base + opts.checkpoint_interval_ms),
    ):
        prefix = f"bench.{run_id}.{'alo' if guarantee == AT_LEAST_ONCE else 'eo'}."
        bs = preload.bench_settings(s, prefix)
        preload.create(bs, opts.partitions, log)
        job_id = submit_tipoff(bs, cluster, opts, guarantee, log)
        wait_running(cluster.rest, job_id, 300)
        consumer = freshness.LatencyConsumer(
            bs.endpoints.bootstrap_servers, [bs.topics.user_features, bs.topics.game_features]
        )
        consumer.start()
        try:
            processes = freshness.processes_for(rate, opts.partitions)
            log(
                f"bench: freshness {guarantee}: simulator live at {rate:,.0f} events/s for "
                f"{opts.freshness_duration_s:.0f}s ({processes} producer processes)"
            )
            feed = freshness.simulate_live(
                {**env, **bs.topics.env()},
                rate,
                opts.freshness_duration_s,
                opts.users,
                opts.games,
                opts.seed,
                processes,
            )
            if feed.behind:
                log(f"bench: freshness {guarantee}: {feed.warning}")
            # the last ticks of the steady part need the watermark, then a commit
            time.sleep((opts.tick_ms + opts.out_of_orderness_ms) / 1000 + 2)
            if guarantee == EXACTLY_ONCE:
                time.sleep(opts.checkpoint_interval_ms / 1000 + 2)
        finally:
            seen = consumer.stop()
            cancel(cluster.rest, job_id, log)
        if consumer.error is not None:
            raise BenchError(f"freshness consumer failed: {consumer.error}")
        first = feed.start_ms + int(opts.freshness_warmup_s * 1000)
        # The timeline ends `duration` after the simulator started (a little after
        # start_ms); ticks after the last events' watermark fire only with later input.
        last = (
            feed.start_ms
            + int(opts.freshness_duration_s * 1000)
            - opts.tick_ms
            - opts.out_of_orderness_ms
        )
        lat = freshness.latencies(seen, first, last)
        if lat.records == 0:
            raise BenchError(f"freshness {guarantee}: no feature records in the measured window")
        out[guarantee] = {
            **asdict(lat),
            "sent": feed.sent,
            # Records/s the simulator kept over its timeline (the rate actually sent) and
            # the rate its schedule asked (`rate` events/s plus duplicates).
            "sent_rate": feed.achieved_rate,
            "scheduled_rate": feed.scheduled_rate,
            "sender_behind": feed.behind,
            "sender_max_lag_s": feed.max_lag_s,
            "sender_processes": feed.processes,
            "sender_seconds": feed.seconds,  # includes duplicates sent up to 10 s after
            "target_p99_ms": target,
            "job_id": job_id,
        }
        log(
            f"bench: freshness {guarantee}: p50 {lat.p50_ms:,.0f} ms, p99 {lat.p99_ms:,.0f} ms "
            f"over {lat.records:,} records"
        )
    return out


# --- the whole run -------------------------------------------------------------------------


def machine(cluster: Cluster | None) -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    java = shutil.which("java")
    java_version = ""
    if java:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        java_version = (proc.stderr.splitlines() or [""])[0]
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java_version,
        "flink": (cluster.rest.overview().get("flink-version") if cluster else None),
        "taskmanagers": cluster.taskmanagers if cluster else None,
        "taskmanager_process_bytes": cluster.taskmanager_bytes if cluster else None,
        "load_average_at_start": list(load),
        "metrics_fetch_interval_ms": _fetch_interval(cluster),
    }


def _fetch_interval(cluster: Cluster | None) -> int | None:
    """The cluster's metrics.fetcher.update-interval: how stale a sampled offset can be."""
    if cluster is None:
        return None
    try:
        conf = cluster.rest.call("GET", "/jobmanager/config")
    except FlinkRestError:
        return None
    value = next((c["value"] for c in conf if c["key"] == "metrics.fetcher.update-interval"), None)
    return int(value) if value is not None and str(value).isdigit() else 10_000


def targets(r: dict[str, Any], opts: Options) -> dict[str, Any]:
    tp = r["throughput"]
    tip = (tp.get("tipoff") or {}).get("events_per_s")
    ref = (tp.get("jvm_tumble") or {}).get("events_per_s")
    out: dict[str, Any] = {}
    if tip and ref:
        out["throughput vs reference"] = {
            "met": tip >= 0.5 * ref,
            "threshold": 0.5 * ref,
            "detail": f"tipoff {tip:,.0f}/s is {tip / ref:.1%} of the reference {ref:,.0f}/s "
            "(target >= 50%)",
        }
    else:
        out["throughput vs reference"] = {"met": None, "detail": "not measured"}
    out["throughput >= 100,000 events/s"] = {
        "met": None if not tip else tip >= 100_000,
        "threshold": 100_000,
        "detail": f"tipoff {tip:,.0f}/s" if tip else "not measured",
    }
    for mode in report.MODES:
        m = (r["freshness"] or {}).get(mode)
        name = f"freshness p99 {mode}"
        if not m:
            out[name] = {"met": None, "detail": "not measured"}
            continue
        out[name] = {
            "met": m["p99_ms"] < m["target_p99_ms"],
            "threshold": m["target_p99_ms"],
            "detail": f"p99 {m['p99_ms']:,.0f} ms (target < {m['target_p99_ms']:,} ms = tick + "
            "bound + 500 ms" + (" + checkpoint interval)" if mode == EXACTLY_ONCE else ")"),
        }
    out["state per active user < 2 KiB"] = state_target(r["state"] or {}, opts.state_backend)
    return out


def state_target(st: dict[str, Any], backend: str) -> dict[str, Any]:
    """product.md: the *median* keyed state per active user under 2 KiB on the heap
    backend, here in a canonical savepoint's serialized bytes; the mean beside it."""
    median, mean = st.get("user_median_bytes"), st.get("bytes_per_active_user")
    mean_text = f"mean {mean:,.0f} B per active user" if mean is not None else "no mean"
    if median is None:
        if mean is None and not st.get("per_key_error"):
            return {"met": None, "threshold": 2048, "detail": "not measured"}
        why = f" ({st['per_key_error']})" if st.get("per_key_error") else ""
        return {"met": None, "threshold": 2048, "detail": f"median not measured{why}; {mean_text}"}
    return {
        "met": median < 2048,
        "threshold": 2048,
        "detail": f"median {median:,.0f} B per user with state (p90 "
        f"{st.get('user_p90_bytes') or 0:,.0f} B, max {st.get('user_max_bytes') or 0:,} B, "
        f"{st.get('user_keys') or 0:,} users); {mean_text}; serialized bytes in a canonical "
        f"savepoint, {backend} backend",
    }


def run(
    local: StandaloneCluster, s: Settings, opts: Options, env: dict[str, str], log: Log
) -> dict[str, Any]:
    started = datetime.now(UTC).replace(microsecond=0)
    run_id = started.strftime("%Y%m%d%H%M%S")
    prefix = f"bench.{run_id}."
    t0 = time.monotonic()
    cluster = open_cluster(local, opts, log)
    try:
        return _run(cluster, s, opts, env, log, started, run_id, prefix, t0)
    finally:
        if not opts.keep_topics:
            preload.delete_topics(s, prefix, log)
        if cluster.started:
            log("bench: stopping the cluster it started")
            cluster.local.down()


def _run(
    cluster: Cluster,
    s: Settings,
    opts: Options,
    env: dict[str, str],
    log: Log,
    started: datetime,
    run_id: str,
    prefix: str,
    t0: float,
) -> dict[str, Any]:
    """The phases, on an open cluster; `run` cleans up after them."""
    r: dict[str, Any] = {
        "version": 1,
        "started": started.isoformat().replace("+00:00", "Z"),
        "command": "tipoff bench" + (" --quick" if opts.quick else ""),
        "options": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "parallelism": cluster.parallelism,
        },
        "machine": machine(cluster),
        "notes": [],
    }
    if cluster.memory_note:
        log(f"note: {cluster.memory_note}")
        r["notes"].append(cluster.memory_note)
    if (r["machine"]["metrics_fetch_interval_ms"] or 0) > 1_000:
        r["notes"].append(
            "the cluster refreshes metrics every "
            f"{r['machine']['metrics_fetch_interval_ms']} ms: short jobs are timed coarsely "
            "(tipoff cluster up sets 500 ms)"
        )
    bs = preload.bench_settings(s, prefix)
    preload.create(bs, opts.partitions, log)
    feed = preload.preload(
        bs,
        opts.events,
        users=opts.users,
        games=opts.games,
        event_rate=opts.event_rate,
        seed=opts.seed,
        log=log,
    )
    r["input"] = {
        "records": feed.records,
        "interactions": feed.per_topic[bs.topics.user_interactions],
        "game_events": feed.per_topic[bs.topics.game_events],
        "users": feed.users,
        "games": feed.games,
        "event_time_s": feed.event_time_s,
        "preload_s": feed.seconds,
        "topic_prefix": prefix,
    }
    tp: dict[str, Any] = {}
    for kind in jvm_jobs.JOBS:
        if kind in opts.skip:
            continue
        try:
            tp[f"jvm_{kind}"] = run_jvm_job(kind, cluster, bs, prefix, feed, opts, run_id, log)
        except BenchError as e:
            if kind != "over":  # the ceiling and the reference are what the ratios need
                raise
            log(f"bench: the OVER job (context only) failed; going on without it: {e}")
            r["notes"].append(f"jvm over failed: {e}"[:500])
    state: dict[str, Any] = {}
    if "tipoff" not in opts.skip:
        tp["tipoff"], state = run_tipoff(cluster, bs, feed, opts, log)
    r["throughput"], r["state"] = tp, state
    ceiling = (tp.get("jvm_copy") or {}).get("events_per_s")
    reference = (tp.get("jvm_tumble") or {}).get("events_per_s")
    r["ratios"] = {
        f"{k}_vs_{name}": v["events_per_s"] / base
        for name, base in (("ceiling", ceiling), ("reference", reference))
        if base
        for k, v in tp.items()
    }
    r["freshness"] = {}
    if "freshness" not in opts.skip:
        tip = (tp.get("tipoff") or {}).get("events_per_s")
        rate = opts.freshness_rate or (tip / 2 if tip else None)
        if rate is None:
            raise BenchError("freshness needs --rate when the tipoff phase is skipped")
        r["freshness"] = run_freshness(cluster, s, run_id, rate, opts, env, log)
    r["targets"] = targets(r, opts)
    r["seconds"] = time.monotonic() - t0
    if opts.quick:
        r["notes"].append("quick run: small input and short phases; not a measurement")
    return r


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # so `finally` cancels jobs and stops what the bench started


def main(a: argparse.Namespace, s: Settings, local: StandaloneCluster, log: Log) -> int:
    opts = options_from_args(a)
    signal.signal(signal.SIGTERM, _interrupt)
    r = run(local, s, opts, dict(os.environ), log)
    json_path, png = report.write(r, opts.results_dir, chart=opts.chart)
    print("\n".join(report.render_table(r)))
    print(f"\nresult {json_path}" + (f"\nchart  {png}" if png else ""))
    return 0
