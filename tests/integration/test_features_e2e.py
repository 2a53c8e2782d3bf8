"""Both feature jobs end to end on the real stack and a Flink MiniCluster, against the oracle.

Simulated feed (out-of-order, late, duplicated) plus malformed records -> `tipoff run all
--bounded` -> read features.user / features.game with read_committed and compare record by
record with the oracle on each job's accepted events; check every dead letter.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter

import pytest
from compare import differences
from kafka_io import Msg, Values, consume_all, malformed, produce
from oracle.game_oracle import game_features
from oracle.model import Accepted
from oracle.user_oracle import user_features
from realstack import RealStack

from flink_jobs.settings import Settings
from flink_jobs.tools import schemas, simulate
from udfs.serde import avsc
from udfs.sim import SimConfig

BOUND_MS = 2_000  # the jobs' default out-of-orderness


def _inject_malformed(s: Settings, ids: dict[str, int], values: Values) -> dict[tuple, str]:
    """Malformed records of every kind on both input topics; returns coords -> reason."""
    rng = random.Random(5)
    expected: dict[tuple[str, int], str] = {}
    for topic, rel, kind in (
        (s.topics.game_events, "events/GameEvent.avsc", "game"),
        (s.topics.user_interactions, "events/UserInteraction.avsc", "interaction"),
    ):
        good = values(consume_all(s.endpoints.bootstrap_servers, topic)[0].value)
        assert good is not None
        cases = malformed(ids[f"{topic}-value"], avsc.load(rel), good, kind, rng)
        before = {m.coords for m in consume_all(s.endpoints.bootstrap_servers, topic)}
        produce(s.endpoints.bootstrap_servers, topic, [(b"bad-key", v) for v, _ in cases])
        new = [
            m for m in consume_all(s.endpoints.bootstrap_servers, topic) if m.coords not in before
        ]
        # one producer, one key: the records keep their order in their partition
        assert len(new) == len(cases)
        expected.update({m.coords: r for m, (_, r) in zip(new, cases, strict=True)})
    return expected


def _sent_late(msgs: list[Msg], values: Values) -> set[tuple]:
    """Records sent long after their partition moved on (the simulator's 30-120 s late
    sends, as opposed to its <= 1.5 s disorder)."""
    late = set()
    top: dict[tuple[str, int], int] = {}
    for m in msgs:
        t = values(m.value)["event_time"]
        part = (m.topic, m.partition)
        if part in top and t <= top[part] - 25_000:
            late.add(m.coords)
        top[part] = max(top.get(part, t), t)
    return late


def run_and_check(real_stack: RealStack, parallelism: int, seed: int) -> None:
    s = real_stack.fresh()
    ids = schemas.register(s, 3, None, log=print)
    cfg = SimConfig(seed=seed, users=1_500, games=10, late_share=0.004, duplicate_share=0.01)
    cfg = simulate.plan(cfg, 0, int(time.time() * 1000), 1_800, 20_000)
    report = simulate.run(s, cfg, live=False, log=print, progress=False)
    assert not report.failed and report.late > 0 and report.duplicates > 0
    values = Values(s.endpoints.registry_url)
    bad = _inject_malformed(s, ids, values)

    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flink_jobs.cli",
            "run",
            "all",
            "--bounded",
            "--parallelism",
            str(parallelism),
            "--checkpoint-interval",
            "2000",
        ],
        env={**real_stack.env, **s.topics.env()},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(f"tipoff run all --bounded -p {parallelism}: {time.monotonic() - t0:.0f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]

    boot = s.endpoints.bootstrap_servers
    inputs = {t: consume_all(boot, t) for t in (s.topics.game_events, s.topics.user_interactions)}
    dead = [values(m.value) for m in consume_all(boot, s.topics.dead_letters)]
    jobs = {
        "user-features": ([s.topics.user_interactions], s.topics.user_features, user_features),
        "game-features": (
            [s.topics.game_events, s.topics.user_interactions],
            s.topics.game_features,
            game_features,
        ),
    }
    for job, (topics, out_topic, oracle) in jobs.items():
        produced = [m for t in topics for m in inputs[t]]
        coords = {m.coords for m in produced}
        reasons = {(d["topic"], d["partition"], d["offset"]): d for d in dead if d["job"] == job}
        assert len(reasons) == len([d for d in dead if d["job"] == job]), "a record dead twice"
        assert set(reasons) <= coords
        # accepted + dead-lettered = produced, and nothing malformed got through
        accepted = [m for m in produced if m.coords not in reasons]
        assert len(accepted) + len(reasons) == len(produced)
        for c, reason in bad.items():
            if c[0] not in topics:
                continue
            assert reasons[c]["reason"] == reason, (job, c, reasons[c])
            original = next(m for m in produced if m.coords == c)
            assert (reasons[c]["key"], reasons[c]["value"]) == (original.key, original.value)
        _check_late_and_duplicates(job, produced, reasons, values, parallelism)

        events = [
            Accepted(
                "game" if m.topic == s.topics.game_events else "interaction",
                m.topic,
                m.partition,
                m.offset,
                values(m.value),
            )
            for m in accepted
        ]
        expected = [(o.key, o.feature_time, o.value) for o in oracle(events)]
        # The feature_time header: a tombstone has no value to carry it.
        got = [
            (m.key.decode(), int(dict(m.headers)["feature_time"]), values(m.value))
            for m in consume_all(boot, out_topic)
        ]
        assert all(v is None or v["feature_time"] == t for _, t, v in got)
        assert len(got) == len({(k, t) for k, t, _ in got}), "a (key, feature_time) twice"
        diff = differences(got, expected)
        assert diff == [], f"{job}: {len(diff)} differences, first: {diff[:5]}"
        print(
            f"{job}: {len(produced)} in, {len(accepted)} accepted, "
            f"{Counter(d['reason'] for d in reasons.values())}, {len(got)} records out"
        )


def _check_late_and_duplicates(
    job: str, produced: list[Msg], reasons: dict, values: Values, parallelism: int
) -> None:
    malformed_reasons = ("DECODE_ERROR", "UNKNOWN_SCHEMA", "INVALID")
    produced = [
        m for m in produced if reasons.get(m.coords, {}).get("reason") not in malformed_reasons
    ]
    first_copy: dict[tuple, tuple] = {}
    for m in produced:
        v = values(m.value)
        assert v is not None
        if job == "game-features" and not v.get("game_id"):
            continue  # an interaction about no game: nothing in this job keys or counts it
        ident = (m.topic, v["event_id"], v.get("revision", 0))
        dl = reasons.get(m.coords)
        if ident in first_copy:
            # a copy of an accepted event: DUPLICATE, or LATE when it also came too late
            if first_copy[ident] not in reasons:
                assert dl is not None and dl["reason"] in ("DUPLICATE", "LATE"), (job, m.coords)
        elif dl is not None:
            assert dl["reason"] == "LATE", (job, m.coords, dl)
        first_copy.setdefault(ident, m.coords)
    # Which events are late depends on how partitions interleave on arrival (product.md),
    # so only bounds are certain: nothing is LATE unless the input had moved past it...
    newest = max(values(m.value)["event_time"] for m in produced)
    for c, dl in reasons.items():
        if dl["reason"] == "LATE" and "game closed" not in dl["error"]:
            t = values(next(m for m in produced if m.coords == c).value)["event_time"]
            assert t <= newest - BOUND_MS - 1, (job, c, dl)
    # ...and the watermark does catch late sends. How many depends on how the reader
    # interleaves partitions while it works through a backlog: a partition it has not
    # reached yet holds the per-partition watermark back, so what its neighbours sent
    # late is still accepted (and counted; the oracle sees it too).
    sent_late = _sent_late(produced, values)
    caught = [c for c in sent_late if reasons.get(c, {}).get("reason") == "LATE"]
    assert sent_late and caught, (job, len(caught), len(sent_late))


@pytest.mark.slow
def test_features_equal_oracle_parallelism_1(real_stack: RealStack) -> None:
    """At parallelism 1 every feature record equals the oracle's; every bad input is a
    dead letter with the right reason and its original bytes."""
    run_and_check(real_stack, 1, seed=21)


@pytest.mark.slow
def test_features_equal_oracle_parallelism_2(real_stack: RealStack) -> None:
    """The same holds at parallelism 2 (two keyed subtasks, one MiniCluster)."""
    run_and_check(real_stack, 2, seed=22)
