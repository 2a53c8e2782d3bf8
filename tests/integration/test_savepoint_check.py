"""`tipoff savepoint check` against the real build: the job graph flink_jobs.pipeline plans
(Kafka sources and sinks need the connector jar, fetched like `tipoff stack up` does), and
any golden savepoint under tests/golden/.

No broker or registry is needed: the plan is made offline, in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flink_jobs.cluster import buildplan, restorecheck, savepoints
from flink_jobs.cluster.buildplan import Build
from flink_jobs.cluster.savepoints import SavepointInfo, SavepointOperator
from flink_jobs.config import JOBS
from flink_jobs.pipeline import uid
from flink_jobs.settings import Settings
from flink_jobs.stack import artifacts
from udfs.flink.state import (
    BODY_STATE,
    CLOCK_STATE,
    FEATURE_STATE,
    PENDING_STATE,
    SEEN_STATE,
    TICK_STATE,
    TILES_STATE,
    WAITING_STATE,
)

GOLDEN = Path(__file__).parent.parent / "golden"
# What this build's features function declares: the v2 layout and release 2's (read to
# convert a key).
FEATURES = {
    BODY_STATE: "VALUE",
    TICK_STATE: "VALUE",
    WAITING_STATE: "LIST",
    TILES_STATE: "MAP",
    SEEN_STATE: "MAP",
    CLOCK_STATE: "VALUE",
    FEATURE_STATE: "VALUE",
    PENDING_STATE: "LIST",
}
# `tipoff run all`'s stateful planner operators: Kafka sources (split + enumerator state),
# sink writers and committers (transactions). Their uids are positions in the plan:
# when this list changes, savepoints of the previous build lose that state.
PLANNER_STATEFUL = {
    "1_source",
    "4_source",
    "6_source",
    *(f"{prefix}{n}_sink" for n in (12, 15, 18, 21) for prefix in ("", "Sink Committer: ")),
}


@pytest.fixture(scope="module")
def jars() -> list[str]:
    return [str(p) for p in artifacts.flink_jars(Settings.load().stack.flink_jars_dir, print)]


@pytest.fixture(scope="module")
def build(jars: list[str]) -> Build:
    return buildplan.expected_operators(JOBS, 1, jars)


def test_the_build_has_the_documented_uids_and_state(build: Build) -> None:
    by_uid = {op.uid: op for op in build.operators if op.uid}
    for job in JOBS:
        for op in ("decode", "watermarks", "unwrap", "features"):
            assert uid(job, op) in by_uid, sorted(u for u in by_uid)
        features = by_uid[uid(job, "features")]
        assert features.keyed_states == FEATURES
        assert features.key_serializer
    # Flink's id of an explicit uid: murmur3_128(uid)
    assert by_uid[uid("user-features", "features")].operator_id == (
        "9bebcb4b1d10f15237799cea20c47e18"
    )
    missing = PLANNER_STATEFUL - set(by_uid)
    assert not missing, (
        f"planner uids {sorted(missing)} are gone: the Table API part of the plan changed "
        "shape, and savepoints of the previous build would lose their Kafka source / sink "
        f"state. Planner uids now: {sorted(u for u in by_uid if u[0].isdigit() or ':' in u)}"
    )


def _as_savepoint(build: Build) -> SavepointInfo:
    """What a savepoint of `build` holds: every operator, state where tipoff keeps some."""
    ops = []
    for op in build.operators:
        stateful = op.uid in PLANNER_STATEFUL or bool(op.keyed_states)
        ops.append(
            SavepointOperator(
                operator_id=op.operator_id,
                uid=op.uid,
                name=op.name,
                parallelism=1,
                max_parallelism=128,
                keyed_bytes=1000 if op.keyed_states else 0,
                operator_bytes=300 if stateful and not op.keyed_states else 0,
                has_state=stateful,
                keyed_states=tuple(savepoints.KeyedState(n, k) for n, k in op.keyed_states.items()),
                key_serializer=op.key_serializer,
            )
        )
    return SavepointInfo("file:/made-up", 1, "Suspend Savepoint (CANONICAL)", tuple(ops))


def test_the_same_build_restores_and_a_renamed_uid_fails(build: Build, jars: list[str]) -> None:
    assert restorecheck.compare(_as_savepoint(build), build).ok
    # A second plan, in another process, is the same graph (ids, uids, key serializers).
    assert buildplan.expected_operators(JOBS, 1, jars) == build
    renamed = _renamed_plan(jars)
    report = restorecheck.compare(_as_savepoint(build), renamed)
    assert not report.ok
    (fail,) = report.failures
    assert uid("game-features", "features") in fail.text and "would be dropped" in fail.text


def test_a_renamed_uid_fails_the_check_of_a_real_golden_savepoint(jars: list[str]) -> None:
    """The release-1 game-features savepoint against this build with its features uid
    renamed: the check fails and names the operator whose state would be lost."""
    path = GOLDEN / "release-1" / "game-features"
    if not (path / "_metadata").exists():
        pytest.skip("no golden game-features savepoint")
    report = restorecheck.compare(savepoints.inspect(path), _renamed_plan(jars, ("game-features",)))
    print("\n".join(report.render()))
    assert not report.ok
    assert any(
        uid("game-features", "features") in f.text and "would be dropped" in f.text
        for f in report.failures
    ), report.render()


def _renamed_plan(
    jars: list[str],
    jobs: list[str] = ["user-features", "game-features"],  # noqa: B006
) -> Build:
    """This build with the game job's features uid renamed (flink_jobs.pipeline.uid patched
    in the planning process)."""
    code = (
        "import sys\n"
        "from unittest import mock\n"
        "from flink_jobs import pipeline\n"
        "from flink_jobs.cluster import buildplan\n"
        "real = pipeline.uid\n"
        "def uid(job, op):\n"
        "    return 'tipoff.game-features.machine' if (job, op) == ('game-features', "
        "'features') else real(job, op)\n"
        "with mock.patch.object(pipeline, 'uid', uid):\n"
        f"    build = buildplan._plan({list(jobs)!r}, 1, sys.argv[1:])\n"
        "print(build.to_json())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *jars], capture_output=True, text=True, check=True
    ).stdout
    build = Build.from_json(out.strip().splitlines()[-1])
    renamed = next(op for op in build.operators if op.uid == "tipoff.game-features.machine")
    assert renamed.keyed_states == FEATURES  # recorded under the uid the pipeline gives
    return build


GOLDEN_SAVEPOINTS = sorted(p.parent for p in GOLDEN.glob("**/_metadata"))


@pytest.mark.skipif(not GOLDEN_SAVEPOINTS, reason="no golden savepoint under tests/golden/")
@pytest.mark.parametrize("path", GOLDEN_SAVEPOINTS, ids=lambda p: p.name)
def test_golden_savepoints_restore(path: Path, jars: list[str]) -> None:
    report = restorecheck.check(path, jars=jars)
    print("\n".join(report.render()))
    assert report.ok, "\n".join(report.render())
