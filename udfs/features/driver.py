"""Run a feature family over a list of events without Flink: a small event-time runtime.

Events arrive in list order; the watermark trails the largest event time seen by
`out_of_orderness_ms` (None: no watermark until the end, i.e. batch); each key's timers
fire in tick order once the watermark passes them; at the end the watermark goes to +inf.
The Flink adapters do the same with Flink's timers: this is what the unit tests and the
oracle comparison drive.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from udfs.features.common import Event, Record, Rejected, offer
from udfs.features.families import FAMILIES

MIN_WATERMARK = -(2**63)


@dataclass
class RunResult:
    outputs: list[tuple[str, int, Record | None]] = field(default_factory=list)
    rejected: list[tuple[Event, Rejected]] = field(default_factory=list)
    accepted: list[Event] = field(default_factory=list)
    # Without the end-of-input flush (flush=False): each key's state and the timers set,
    # as a savepoint taken at the end of the input holds them.
    states: dict[str, Any] = field(default_factory=dict)
    timers: list[tuple[int, str]] = field(default_factory=list)


def run(
    family: str,
    events: Iterable[Event],
    tick_ms: int = 1000,
    out_of_orderness_ms: int | None = None,
    machine: Any = None,
    flush: bool = True,
) -> RunResult:
    """`machine`: a stand-in for the family's module (new_state, on_tick), e.g. one that
    also times or encodes its states. `flush=False`: stop at the end of the input without
    firing the remaining timers, and return the states and timers (a savepoint's view)."""
    machine = machine or FAMILIES[family].machine
    key_of = FAMILIES[family].key_of
    states: dict[str, Any] = {}
    timers: list[tuple[int, str]] = []
    queued: set[tuple[int, str]] = set()
    res = RunResult()
    watermark = MIN_WATERMARK

    def fire_until(limit: float) -> None:
        while timers and timers[0][0] <= limit:
            tick, key = heapq.heappop(timers)
            queued.discard((tick, key))
            state = states.get(key)
            if state is None:
                continue
            step = machine.on_tick(state, tick, tick_ms)
            if step.state is None:
                del states[key]
            else:
                states[key] = step.state
            res.outputs.extend((key, t, v) for t, v in step.emissions)
            res.rejected.extend(step.rejected)
            for ev, _ in step.rejected:
                res.accepted.remove(ev)
            add(key, step.timers)

    def add(key: str, ticks: list[int]) -> None:
        for t in ticks:
            if (t, key) not in queued:
                queued.add((t, key))
                heapq.heappush(timers, (t, key))

    max_seen = MIN_WATERMARK
    for ev in events:
        key = key_of(ev)
        if key is None:
            continue
        state = states.get(key) or machine.new_state(key)
        rejected, ticks = offer(state.clock, ev, watermark, tick_ms)
        if rejected:
            res.rejected.append((ev, rejected))
            continue
        states[key] = state
        res.accepted.append(ev)
        add(key, ticks)
        if out_of_orderness_ms is not None:
            max_seen = max(max_seen, ev.time)
            watermark = max(watermark, max_seen - out_of_orderness_ms - 1)
            fire_until(watermark)
    if not flush:
        res.states, res.timers = states, sorted(queued)
        return res
    fire_until(float("inf"))
    return res
