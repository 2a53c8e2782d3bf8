"""Both feature jobs end to end on the real stack and a Flink MiniCluster, against the oracle.

The simulator writes an out-of-order, late and duplicated feed in Avro schema versions 1
and 2 at once; malformed records of every kind are interleaved. Every feature record read
back with read_committed must equal the oracle's on the accepted events, and every dead
letter must carry the right reason and the original bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig
from flink_jobs.tools import schemas, simreport, simulate
from tests.support.e2e import Interleaver, LiveJob, check_jobs, hostile_batches, run_bounded
from tests.support.kafka_io import Values, produce
from tests.support.realstack import RealStack


def _plan(seed: int, events: int) -> SimConfig:
    cfg = SimConfig(seed=seed, users=1_500, games=10, late_share=0.004, duplicate_share=0.01)
    return simulate.plan(cfg, 0, int(time.time() * 1000), 1_800, events)


def _simulate(s: Settings, cfg: SimConfig) -> simreport.SendReport:
    events = cfg.total_events
    report = simulate.run(s, cfg, live=False, log=print, progress=False, schema_version="mixed")
    assert not report.failed and report.late > 0 and report.duplicates > 0
    assert min(report.per_version.values()) > events // 5, report.per_version  # both versions
    return report


@pytest.mark.slow
def test_bounded_run_equals_oracle_parallelism_1(real_stack: RealStack) -> None:
    """Bounded at parallelism 1: mixed v1/v2 input, a few hundred malformed records of every
    kind; every feature record equals the oracle's, every bad input is a dead letter."""
    s = real_stack.fresh()
    schemas.register(s, 3, None, log=print)
    cfg = _plan(21, 20_000)
    _simulate(s, cfg)
    values = Values(s.endpoints.registry_url)
    for topic, records in hostile_batches(s, cfg, 150, seed=5):
        produce(s.endpoints.bootstrap_servers, topic, records)
    run_bounded(real_stack, s, "--parallelism", "1", "--checkpoint-interval", "2000")
    check_jobs(s, values, {})


@pytest.mark.slow
def test_live_mixed_versions_and_hostile_input_parallelism_2(
    real_stack: RealStack, tmp_path: Path
) -> None:
    """While the jobs run (unbounded, parallelism 2, no restarts allowed), the simulator
    writes v1 and v2 records to both inputs and 5,000+ malformed records of every kind are
    interleaved with them. The jobs never fail or restart; every malformed record is a dead
    letter with its reason; the features equal the oracle's on the good records. The run
    ends with stop-with-savepoint --drain, which fires every pending tick like a bounded
    run's end."""
    s = real_stack.fresh()
    schemas.register(s, 3, None, log=print)
    values = Values(s.endpoints.registry_url)
    cfg = _plan(32, 16_000)
    job = LiveJob(
        real_stack,
        s,
        tmp_path,
        ("--parallelism", "2", "--checkpoint-interval", "2000", "--restart-attempts", "0"),
    ).start()
    try:
        hostile = Interleaver(s.endpoints.bootstrap_servers, hostile_batches(s, cfg, 2_600, seed=6))
        hostile.start()
        _simulate(s, cfg)
        hostile.join(300)
        assert hostile.error is None and not hostile.is_alive()
        job.wait_consumed()
        assert (
            job.rest.call("GET", f"/jobs/{job.job_id}/exceptions")["exceptionHistory"]["entries"]
            == []
        ), "the job failed over"
        job.stop(drain=True, savepoints=tmp_path / "savepoints")
    finally:
        job.kill()
    reasons = check_jobs(s, values, {})
    bad = sum(
        n
        for job_reasons in reasons.values()
        for r, n in job_reasons.items()
        if r in ("DECODE_ERROR", "UNKNOWN_SCHEMA", "INVALID")
    )
    assert bad >= 5_000
