"""The second-generation engine (udfs.features.v2) equals the brute-force oracle, accepts
exactly what the first generation accepts, and loses nothing through its encoding."""

from __future__ import annotations

import pytest

from tests.oracle.model import Accepted
from tests.support.compare import differences
from tests.unit.features.test_against_oracle import ORACLES, feed
from udfs.features import driver as v1_driver
from udfs.features.v2 import driver


@pytest.mark.slow
@pytest.mark.parametrize("family", ["user", "game"])
@pytest.mark.parametrize(("seed", "bound"), [(11, 2_000), (12, None), (13, 500)])
@pytest.mark.parametrize("store", ["none", "roundtrip"])
def test_v2_streaming_equals_oracle_and_v1(
    family: str, seed: int, bound: int | None, store: str
) -> None:
    """Streamed with a watermark, every record equals the oracle's on the accepted events
    (tombstones included), and the accepted set is the first generation's. "roundtrip"
    carries on after every evaluation from the decoded bytes alone (core, tiles and the
    last tick), as a restored job does."""
    events = feed(seed, 6_000)
    res = driver.run(family, events, out_of_orderness_ms=bound, store=store)
    accepted = [
        Accepted(e.kind, e.topic, e.partition, e.offset, dict(e.record)) for e in res.accepted
    ]
    expected = [(o.key, o.feature_time, o.value) for o in ORACLES[family](accepted)]
    assert len(res.outputs) > 100
    assert differences(res.outputs, expected) == []
    v1 = v1_driver.run(family, events, out_of_orderness_ms=bound)
    assert [e.sort_key for e in res.accepted] == [e.sort_key for e in v1.accepted]
    assert [(e.sort_key, r) for e, r in res.rejected] == [(e.sort_key, r) for e, r in v1.rejected]


def test_unknown_store_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="store must be one of"):
        driver.run("user", [], store="disk")
