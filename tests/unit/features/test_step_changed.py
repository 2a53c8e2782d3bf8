"""Step.changed is a promise the Flink adapter relies on to skip writing the feature state
back: when a tick says False, the state other than its clock must be exactly as before."""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.features.test_against_oracle import feed
from udfs.features import driver, game, user
from udfs.features.common import KeyClock, Step

MACHINES = {"user": user, "game": game}


def _without_clock(state: Any) -> bytes:
    return pickle.dumps(replace(state, clock=KeyClock()))


@pytest.mark.parametrize("family", ["user", "game"])
def test_unchanged_ticks_leave_the_state_as_it_was(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = MACHINES[family]
    on_tick = machine.on_tick
    seen: Counter[bool] = Counter()

    def checked(state: Any, tick: int, tick_ms: int) -> Step[Any]:
        before = _without_clock(state)
        step = on_tick(state, tick, tick_ms)
        seen[step.changed] += 1
        if not step.changed:
            assert step.state is not None
            assert _without_clock(step.state) == before, f"tick {tick} changed the state"
        return step

    monkeypatch.setattr(machine, "on_tick", checked)
    driver.run(family, feed(21, 3_000), out_of_orderness_ms=2_000)
    # Both kinds of tick happen: window exits without events, and ticks that apply events.
    assert seen[False] > 50 and seen[True] > 50, seen


@pytest.mark.parametrize("family", ["user", "game"])
def test_a_tick_applies_exactly_the_waiting_events_up_to_the_last_tick(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Flink adapter leaves applied events in its waiting-events list and skips every
    event <= the key's last tick when it reads the list back (functions.live): so after
    any tick, what it took must be <= the last tick and what still waits must be later."""
    machine = MACHINES[family]
    on_tick = machine.on_tick
    took = 0

    def checked(state: Any, tick: int, tick_ms: int) -> Step[Any]:
        nonlocal took
        before = list(state.clock.pending)
        step = on_tick(state, tick, tick_ms)
        if step.state is None:
            return step
        clock = step.state.clock
        remaining = clock.pending
        assert all(e in before for e in remaining)
        # (a game's close turns its waiting events away instead: it leaves none waiting)
        turned_away = [e for e, _ in step.rejected]
        taken = [e for e in before if e not in remaining and e not in turned_away]
        took += len(taken)
        last = clock.last_tick
        assert all(e.time <= last for e in taken), (tick, last)
        assert all(e.time > last for e in remaining) or last is None, (tick, last)
        return step

    monkeypatch.setattr(machine, "on_tick", checked)
    driver.run(family, feed(22, 3_000), out_of_orderness_ms=2_000)
    assert took > 500
