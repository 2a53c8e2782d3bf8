"""The JVM jobs phase: each Flink SQL job of jvm_jobs.py (copy: the I/O ceiling; tumble: the
reference; over: context), one after another, bounded, over the preloaded interactions.
"""

from __future__ import annotations

import time
from typing import Any

from flink_jobs.bench import jvm_jobs, measure, preload
from flink_jobs.bench.cluster import Cluster
from flink_jobs.bench.options import BenchError, Options
from flink_jobs.bench.watch import cancel, job_failure, job_state, throughput_row
from flink_jobs.cluster.common import TERMINAL
from flink_jobs.output import Log
from flink_jobs.settings import Settings


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
        while (state := job_state(cluster.rest, job_id)) not in TERMINAL:
            if cap is not None and time.monotonic() - t0 > cap:
                state = "CAPPED"
                log(f"bench: {job.name}: measured for {cap:.0f}s (--over-seconds); cancelling")
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{job.name}: not finished after {opts.job_timeout_s:.0f}s")
            time.sleep(0.5)
    finally:
        samples = sampler.stop()
        if job_state(cluster.rest, job_id) not in TERMINAL:
            cancel(cluster.rest, job_id, log)
    if state not in ("FINISHED", "CAPPED"):
        raise BenchError(f"{job.name}: job {job_id} {state}: {job_failure(cluster.rest, job_id)}")
    wall = time.monotonic() - t0
    finish = start = None
    window = None if state == "CAPPED" else measure.vertex_window(cluster.rest.job(job_id))
    if window is not None:
        finish = (window[1], _cpu_at(samples, window[1]))
        start = (window[0], _cpu_at(samples, window[0]))
    row = throughput_row(
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
