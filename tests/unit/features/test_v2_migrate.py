"""Release 2's state, converted to v2 half-way through a feed, carries on exactly: the first
generation's output before the conversion plus v2's after it equal the oracle on the whole
accepted input, as the upgrade of a running release-2 deployment must."""

from __future__ import annotations

import pickle

import pytest

from tests.oracle.model import Accepted
from tests.support.compare import differences
from tests.unit.features.test_against_oracle import ORACLES, feed
from udfs.features import driver as v1_driver
from udfs.features.families import FAMILIES
from udfs.features.v2 import driver
from udfs.features.v2.migrate import MIGRATE


@pytest.mark.slow
@pytest.mark.parametrize("family", ["user", "game"])
@pytest.mark.parametrize(
    ("seed", "bound", "split", "store"), [(31, 2_000, 0.5, "none"), (32, 500, 0.3, "roundtrip")]
)
def test_release_2_state_converted_mid_feed_carries_on_exactly(
    family: str, seed: int, bound: int, split: float, store: str
) -> None:
    events = feed(seed, 6_000)
    cut = int(len(events) * split)
    first = v1_driver.run(family, events[:cut], out_of_orderness_ms=bound, flush=False)
    assert first.states, "nothing to convert"
    initial = []
    for key, st in first.states.items():
        # As a savepoint holds them: the clock and feature state pickled apart, the waiting
        # events in their list, the dedup ids in their map.
        clock = st.clock
        stored, ids = list(clock.pending), dict(clock.seen)
        clock.pending, clock.seen = [], {}
        feature = None if st.clock.closed_at is not None else pickle.loads(pickle.dumps(st))
        m = MIGRATE[family](key, pickle.loads(pickle.dumps(clock)), feature, stored, 1_000)
        initial.append((key, m, ids))
    second = driver.run(
        family,
        events[cut:],
        out_of_orderness_ms=bound,
        store=store,
        initial=initial,
        timers_set=first.timers,
    )
    accepted = [
        Accepted(e.kind, e.topic, e.partition, e.offset, dict(e.record))
        for e in first.accepted + second.accepted
    ]
    expected = [(o.key, o.feature_time, o.value) for o in ORACLES[family](accepted)]
    got = first.outputs + second.outputs
    assert len(first.outputs) > 100 and len(second.outputs) > 100
    assert differences(got, expected) == []
    # Nothing is lost across the conversion: every keyed event is accepted or rejected.
    keyed = sum(1 for e in events if FAMILIES[family].key_of(e) is not None)
    handled = [*first.accepted, *second.accepted, *first.rejected, *second.rejected]
    assert len(handled) == keyed
