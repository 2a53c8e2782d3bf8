"""Input and output types of the oracle, time constants and the tick-by-tick emission driver."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000

Record = dict[str, Any]


@dataclass(frozen=True)
class Accepted:
    """One accepted input event, with its Kafka position for ordering equal timestamps."""

    kind: str  # "game" (a GameEvent) or "interaction" (a UserInteraction)
    topic: str
    partition: int
    offset: int
    record: Record  # the Avro fields; event_time as int epoch ms; enums as symbol strings
    # A copy of record["event_time"]: the oracle reads it millions of times.
    time: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", int(self.record["event_time"]))

    def order(self) -> tuple[int, str, int, int]:
        """The event order of docs/features.md: (event_time, topic, partition, offset)."""
        return (self.time, self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class Output:
    """One expected output record; value None is a tombstone."""

    key: str
    feature_time: int
    # Every Avro field of UserFeatures/GameFeatures except computed_at, feature_time included.
    value: Record | None


def ceil_tick(t: int, tick: int) -> int:
    """The first tick >= t (an instant exactly on a tick boundary belongs to that tick)."""
    return -(-t // tick) * tick


def check_kinds(events: Iterable[Accepted]) -> list[Accepted]:
    """Materialises the input, rejecting kinds the oracle does not know."""
    out = list(events)
    for ev in out:
        if ev.kind not in ("game", "interaction"):
            raise ValueError(f"unknown event kind {ev.kind!r}")
    return out


def emit_ticks(
    key: str,
    events: list[Accepted],
    window_lengths: Iterable[int],
    cleanup: int,
    record_at: Callable[[int], Record | None],
    tick: int,
) -> list[Output]:
    """Emits the records of one key's life (events sorted), then its tombstone at `cleanup`.

    `record_at(T)` must compute the record at T from scratch (without feature_time), or None
    before the key's first event. Only candidate ticks are evaluated: a record can change
    only at the tick of an event (it enters every window and the order-dependent state) or at
    `ceil_tick(e + w)`, the first tick where e has left a window of length w; between two
    candidates nothing changes, so no other tick can satisfy the emission rule.
    """
    event_ticks = {ceil_tick(ev.time, tick) for ev in events}
    candidates = set(event_ticks)
    for ev in events:
        for w in window_lengths:
            candidates.add(ceil_tick(ev.time + w, tick))
    # Cached only because record(T - tick) of one candidate is often the record of the
    # previous one; each value is still computed from scratch the first time.
    cache: dict[int, Record | None] = {}

    def cached(t: int) -> Record | None:
        if t not in cache:
            cache[t] = record_at(t)
        return cache[t]

    out: list[Output] = []
    # At the cleanup tick the tombstone replaces the record, so candidates stop before it.
    for t in sorted(c for c in candidates if c < cleanup):
        now = cached(t)
        if now is None:
            raise AssertionError(f"{key}: no record at candidate tick {t}")
        # An event in (t - tick, t] is exactly an event whose tick is t.
        if t in event_ticks or now != cached(t - tick):
            out.append(Output(key, t, {**now, "feature_time": t}))
    out.append(Output(key, cleanup, None))
    return out
