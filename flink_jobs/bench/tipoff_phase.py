"""The tipoff phase: both jobs as one Flink job, exactly-once, unbounded, from the earliest
offset until it has consumed the preloaded input; then its state (state_phase.py).
`submit_tipoff` also starts the freshness phase's jobs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from flink_jobs.bench import measure, preload
from flink_jobs.bench.cluster import Cluster
from flink_jobs.bench.options import BenchError, Options
from flink_jobs.bench.state_phase import state_size
from flink_jobs.bench.watch import cancel, job_failure, job_state, throughput_row, wait_running
from flink_jobs.cluster.common import TERMINAL
from flink_jobs.config import EXACTLY_ONCE, JOBS, add_job_options, from_args
from flink_jobs.output import Log
from flink_jobs.settings import Settings
from udfs.jobs import JOB, JOB_NAMES


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
            state = job_state(cluster.rest, job_id)
            if state in TERMINAL or state == "RESTARTING":
                raise BenchError(
                    f"tipoff job {job_id} {state}: {job_failure(cluster.rest, job_id)}"
                )
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
        row = throughput_row(
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
