"""Failure recovery and rescaling on a real standalone cluster (JobManager + TaskManager
processes): kill -9 of a TaskManager or of the Kafka broker while the simulator writes,
and stop-with-savepoint at parallelism 1 restored at 2. Each run ends with
stop-with-savepoint --drain, and the read_committed output must equal the oracle's on the
accepted events exactly: nothing lost, nothing twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig
from flink_jobs.tools import schemas, simreport, simulate
from tests.support.e2e import ClusterJob, check_jobs
from tests.support.kafka_io import Values
from tests.support.realstack import RealStack

JOB_ARGS = ("--checkpoint-interval", "2000")


def _plan(seed: int, events: int, rate: float) -> SimConfig:
    cfg = SimConfig(seed=seed, users=600, games=6, late_share=0.004, duplicate_share=0.01)
    return simulate.plan(cfg, rate, int(time.time() * 1000), None, events)


class Simulator(threading.Thread):
    """`tipoff simulate` in live mode (event time = wall clock) beside the test."""

    def __init__(self, s: Settings, cfg: SimConfig) -> None:
        super().__init__(daemon=True)
        self.s, self.cfg = s, cfg
        self.report: simreport.SendReport | None = None

    def run(self) -> None:
        self.report = simulate.run(self.s, self.cfg, live=True, log=print, progress=False)


def _free_slot_for(cluster: StandaloneCluster) -> None:
    """A standalone cluster does not replace a lost TaskManager: start one when no slot is
    free, as an operator (or Kubernetes) would."""
    if int(cluster.rest().overview().get("slots-available", 0)) == 0:
        print(f"replacement TaskManager {cluster.add_taskmanager()}")


def _busy_taskmanager(cluster: StandaloneCluster) -> str:
    busy = [tm["id"] for tm in cluster.rest().taskmanagers() if tm["freeSlots"] == 0]
    assert busy, cluster.rest().taskmanagers()
    return str(busy[0])


def _finish(job: ClusterJob, s: Settings, tmp_path: Path) -> None:
    job.wait_consumed()
    job.stop(drain=True, savepoints=tmp_path / "savepoints")
    # A restart resets the watermark (it is not state): late sends after one may be accepted.
    check_jobs(s, Values(s.endpoints.registry_url), {}, expect_late=False)


@pytest.mark.slow
def test_taskmanager_killed_mid_stream(
    flink_cluster: StandaloneCluster, real_stack: RealStack, tmp_path: Path
) -> None:
    s = real_stack.fresh()
    schemas.register(s, 3, None, log=print)
    _free_slot_for(flink_cluster)
    job = ClusterJob(real_stack, s, flink_cluster.rest(30), JOB_ARGS).submit()
    try:
        sim = Simulator(s, _plan(61, 5_000, rate=400))
        sim.start()
        time.sleep(8)  # a few checkpoints in, well before the feed ends
        victim = _busy_taskmanager(flink_cluster)
        name, pid = flink_cluster.kill_taskmanager(victim)
        print(f"kill -9 {name} (pid {pid}) while the simulator writes")
        _free_slot_for(flink_cluster)
        sim.join(120)
        assert sim.report is not None and not sim.report.failed
        job.rest.wait_for_state(job.job_id, {"RUNNING"}, 180)
        _finish(job, s, tmp_path)
        assert job.failures(), "the job never noticed the lost TaskManager"
    finally:
        job.cancel()


@pytest.mark.slow
def test_kafka_broker_killed_mid_stream(
    flink_cluster: StandaloneCluster, real_stack: RealStack, tmp_path: Path
) -> None:
    if real_stack.stack is None:
        pytest.skip("external services: the test does not kill what it did not start")
    s = real_stack.fresh()
    schemas.register(s, 3, None, log=print)
    _free_slot_for(flink_cluster)
    job = ClusterJob(real_stack, s, flink_cluster.rest(30), JOB_ARGS).submit()
    try:
        sim = Simulator(s, _plan(62, 5_000, rate=400))
        sim.start()
        time.sleep(6)
        pid = real_stack.stack.kill("kafka")
        print(f"kill -9 Kafka broker (pid {pid}) while the simulator writes")
        time.sleep(10)
        real_stack.stack.up(real_stack.env)
        sim.join(300)
        assert sim.report is not None and not sim.report.failed, sim.report
        job.rest.wait_for_state(job.job_id, {"RUNNING"}, 300)
        _finish(job, s, tmp_path)
    finally:
        job.cancel()


@pytest.mark.slow
def test_stop_with_savepoint_then_restore_at_parallelism_2(
    flink_cluster: StandaloneCluster, real_stack: RealStack, tmp_path: Path
) -> None:
    s = real_stack.fresh()
    schemas.register(s, 4, None, log=print)
    cfg = _plan(63, 8_000, rate=0)
    simulate.run(s, cfg, live=False, log=print, progress=False, only=slice(0, 4_000))
    _free_slot_for(flink_cluster)
    first = ClusterJob(real_stack, s, flink_cluster.rest(30), JOB_ARGS).submit()
    try:
        first.wait_consumed()
        savepoint = first.stop(drain=False, savepoints=tmp_path / "savepoints")
    finally:
        first.cancel()
    simulate.run(s, cfg, live=False, log=print, progress=False, only=slice(4_000, None))
    while int(flink_cluster.rest().overview().get("slots-available", 0)) < 2:
        print(f"TaskManager {flink_cluster.add_taskmanager()} for parallelism 2")
    second = ClusterJob(
        real_stack,
        s,
        flink_cluster.rest(30),
        ("--from-savepoint", savepoint, "--parallelism", "2", *JOB_ARGS),
    ).submit()
    try:
        vertices = second.rest.job(second.job_id)["vertices"]
        assert {v["parallelism"] for v in vertices} >= {2}, vertices
        _finish(second, s, tmp_path)
    finally:
        second.cancel()
