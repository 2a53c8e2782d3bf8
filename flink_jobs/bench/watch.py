"""Running and watching jobs on the bench cluster: until their tasks run, their state and
failure, cancelling them; and a job's throughput row from a sampler's samples.
"""

from __future__ import annotations

import time
from typing import Any

from flink_jobs.bench import measure
from flink_jobs.bench.options import BenchError, Options
from flink_jobs.cluster.common import TERMINAL
from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.output import Log


def job_failure(rest: FlinkRest, job_id: str) -> str:
    try:
        failures = rest.exceptions(job_id)
    except FlinkRestError:
        return "no exception history"
    return failures[0].summary if failures else "no exception history"


def job_state(rest: FlinkRest, job_id: str) -> str:
    return str(rest.job(job_id).get("state", "?"))


def wait_running(rest: FlinkRest, job_id: str, timeout_s: float) -> None:
    """Until the job and every one of its vertices are RUNNING."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = rest.job(job_id)
        if job["state"] in TERMINAL:
            raise BenchError(f"job {job_id} is {job['state']}: {job_failure(rest, job_id)}")
        if job["state"] == "RUNNING" and all(
            v.get("status") == "RUNNING" for v in job.get("vertices", [])
        ):
            return
        time.sleep(0.5)
    raise BenchError(f"job {job_id} not running after {timeout_s:.0f}s")


def cancel(rest: FlinkRest, job_id: str, log: Log) -> None:
    try:
        if job_state(rest, job_id) not in TERMINAL:
            rest.cancel(job_id)
            rest.wait_for_state(job_id, {"CANCELED", "FAILED", "FINISHED"}, 120)
    except FlinkRestError as e:
        log(f"note: cancelling {job_id}: {e}")


def throughput_row(
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
