"""The production state machines equal the brute-force oracle on simulated feeds (no JVM)."""

from __future__ import annotations

import pytest

from flink_jobs.sim import SimConfig, Simulation
from tests.oracle.game_oracle import game_features
from tests.oracle.model import Accepted
from tests.oracle.user_oracle import user_features
from tests.support.compare import differences
from udfs.features import driver
from udfs.features.common import Event

TOPIC = {"game": "sports.game_events", "interaction": "sports.user_interactions"}


def feed(seed: int, events: int) -> list[Event]:
    """Simulated emissions in send order, with Kafka-like (partition, offset) coordinates."""
    cfg = SimConfig(
        seed=seed,
        start_ms=1_790_000_000_000,
        duration_ms=3 * 3_600_000,
        total_events=events,
        users=800,
        games=8,
    )
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for em in Simulation(cfg):
        part = sum(em.key.encode()) % 3
        n = offsets.get((em.kind, part), 0)
        offsets[(em.kind, part)] = n + 1
        out.append(Event(em.record["event_time"], TOPIC[em.kind], part, n, em.kind, em.record))
    return out


ORACLES = {"user": user_features, "game": game_features}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["user", "game"])
@pytest.mark.parametrize(("seed", "bound"), [(11, 2_000), (12, None), (13, 500)])
def test_streaming_state_machine_equals_oracle(family: str, seed: int, bound: int | None) -> None:
    """Streamed with a watermark (late and duplicate events rejected), the emitted records
    equal the oracle's on the accepted events, tombstones included."""
    res = driver.run(family, feed(seed, 6_000), out_of_orderness_ms=bound)
    accepted = [
        Accepted(e.kind, e.topic, e.partition, e.offset, dict(e.record)) for e in res.accepted
    ]
    expected = [(o.key, o.feature_time, o.value) for o in ORACLES[family](accepted)]
    assert len(res.outputs) > 100
    assert differences(res.outputs, expected) == []
    if bound is not None:
        assert {r.reason for _, r in res.rejected} <= {"LATE", "DUPLICATE"}
