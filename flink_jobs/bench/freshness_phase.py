"""The freshness phase: tipoff again on empty topics, the simulator live at a fixed rate,
at-least-once and then exactly-once; the latencies from freshness.py.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from flink_jobs.bench import freshness, preload
from flink_jobs.bench.cluster import Cluster
from flink_jobs.bench.options import BenchError, Options
from flink_jobs.bench.tipoff_phase import submit_tipoff
from flink_jobs.bench.watch import cancel, wait_running
from flink_jobs.config import AT_LEAST_ONCE, EXACTLY_ONCE
from flink_jobs.output import Log
from flink_jobs.settings import Settings


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
