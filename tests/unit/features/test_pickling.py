"""Feature state is pickled into Flink state (PyFlink's PICKLED_BYTE_ARRAY) on every changed
tick. Its classes pickle as (class, field values) (common.by_fields); savepoints written by
release 1 hold the generic slotted-dataclass form, which must still load."""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.unit.features.test_against_oracle import feed
from udfs.features import driver, game, user
from udfs.features.common import KeyClock, Step

MACHINES = {"user": user, "game": game}


CLASSES = (KeyClock, user.UserState, game.GameState, game.Play)


@contextmanager
def as_release_1() -> Iterator[None]:
    """Pickle the way release 1 did: these classes without their __reduce__, i.e. the
    generic path of a slotted dataclass (copyreg.__newobj__ + dataclasses' __getstate__)."""
    saved = {cls: cls.__dict__["__reduce__"] for cls in CLASSES}
    for cls in CLASSES:
        delattr(cls, "__reduce__")
    try:
        yield
    finally:
        for cls, method in saved.items():
            cls.__reduce__ = method


@pytest.mark.parametrize("family", ["user", "game"])
def test_every_state_of_a_run_round_trips_in_both_pickle_forms(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = MACHINES[family]
    on_tick = machine.on_tick
    seen: Counter[str] = Counter()

    def checked(state: Any, tick: int, tick_ms: int) -> Step[Any]:
        step = on_tick(state, tick, tick_ms)
        if step.state is not None:
            now = step.state
            assert pickle.loads(pickle.dumps(now)) == now
            with as_release_1():
                old = pickle.dumps(now)
            assert old != pickle.dumps(now)
            assert pickle.loads(old) == now, f"tick {tick}: the release-1 form differs"
            seen["states"] += 1
            seen["plays"] += len(getattr(now, "plays", {}))
        return step

    monkeypatch.setattr(machine, "on_tick", checked)
    driver.run(family, feed(7, 2_000), out_of_orderness_ms=2_000)
    assert seen["states"] > 100, seen
    if family == "game":
        assert seen["plays"] > 100, seen  # nested Play objects went through both forms


def test_a_pickled_clock_is_its_fields_and_nothing_else() -> None:
    clock = KeyClock(agenda=[1_000, 2_000], last_tick=500, pruned_hour=3)
    assert clock.__reduce__() == (KeyClock, ([], [1_000, 2_000], 500, {}, None, None, None, 3))
    assert pickle.loads(pickle.dumps(clock)) == clock
