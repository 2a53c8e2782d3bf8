"""The golden savepoints of the previous release (tests/golden/<tag>/, made by that
release's own build with tests/golden/make_golden.py) restore into this build without
--allow-non-restored-state, and the jobs carry on exactly: the release's output before
the savepoint plus this build's after it equal the oracle's over the whole input."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.stack.health import admin
from flink_jobs.tools import schemas, simulate
from tests.golden.plan import PARTITIONS, PREFIX, keep_forever, plan
from tests.support.e2e import ClusterJob, Prior, check_jobs, tipoff, wait_consumed
from tests.support.kafka_io import Values
from tests.support.realstack import RealStack

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# release-1: the first state layout; release-2 (tag release-2, d86a8c7): the layout the
# second-generation engine leaves (docs/savepoints.md).
RELEASES = ("release-1", "release-2")
JOBS = ("user-features", "game-features")


def _fresh_topics(bootstrap: str, topics: list[str]) -> None:
    """The savepoints name these topics: a rerun against the same broker starts them over."""
    client = admin(bootstrap)
    existing = [t for t in topics if t in client.list_topics(timeout=10).topics]
    if existing:
        for fut in client.delete_topics(existing, operation_timeout=30).values():
            fut.result()
        while any(t in client.list_topics(timeout=10).topics for t in existing):
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_release_savepoints_restore_and_carry_on_exactly(
    release: str, flink_cluster: StandaloneCluster, real_stack: RealStack
) -> None:
    golden = GOLDEN / release
    s = replace(real_stack.settings, topics=real_stack.settings.topics.prefixed(PREFIX))
    env = {**real_stack.env, **s.topics.env()}
    _fresh_topics(s.endpoints.bootstrap_servers, s.topics.all())
    schemas.register(s, PARTITIONS, None, log=print)
    keep_forever(s.endpoints.bootstrap_servers, [s.topics.game_events, s.topics.user_interactions])
    cfg, first, second = plan()
    # The input the release read before its savepoints: the same records at the same offsets.
    simulate.run(s, cfg, live=False, log=print, progress=False, schema_version="1", only=first)

    rest = flink_cluster.rest(30)
    jm = rest.url.removeprefix("http://")
    jobs = []
    for job in JOBS:
        check = tipoff(env, "savepoint", "check", str(golden / job), "--job", job)
        print(check.stdout + check.stderr)
        assert check.returncode == 0, check.stdout + check.stderr
        restore = tipoff(
            env,
            "savepoint",
            "restore",
            str(golden / job),
            "--job",
            job,
            "--jobmanager",
            jm,
            "--checkpoint-interval",
            "2000",
        )
        assert restore.returncode == 0, restore.stdout + restore.stderr
        jobs.append(ClusterJob(real_stack, s, rest, job_id=restore.stdout.strip().splitlines()[-1]))
    try:
        simulate.run(
            s, cfg, live=False, log=print, progress=False, schema_version="mixed", only=second
        )

        def alive() -> None:
            for j in jobs:
                j.alive()

        wait_consumed(s, alive)
        for j in jobs:
            j.stop(drain=True)
    finally:
        for j in jobs:
            j.cancel()
    with gzip.open(golden / "outputs.json.gz", "rt") as f:
        before = json.load(f)
    prior = Prior(
        {job: [(k, t, v) for k, t, v in recs] for job, recs in before["features"].items()},
        before["dead_letters"],
    )
    # The release's user job had emitted features; its game job had all its events still
    # waiting (a game_events partition without data held the watermark: unbounded runs
    # count a partition idle only when a later record arrives), so its savepoint carries
    # only pending events, clocks and timers, which this build must apply.
    assert prior.features["user-features"], "the release wrote no user features"
    check_jobs(s, Values(s.endpoints.registry_url), {}, expect_late=False, prior=prior)
