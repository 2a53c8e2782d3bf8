"""Time arithmetic, the event envelope and the per-key machinery shared by the feature families.

Semantics are in docs/features.md. Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
DEDUP_RETENTION_MS = DAY

Record = dict[str, Any]
# (feature_time, value); value None is a tombstone. computed_at is added by the caller,
# which owns the clock.
Emission = tuple[int, Record | None]


def tick_of(t: int, tick_ms: int) -> int:
    """The tick an event at `t` belongs to: the smallest multiple of tick_ms that is >= t."""
    return -(-t // tick_ms) * tick_ms


@dataclass(frozen=True, slots=True)
class Event:
    """An input record after decoding: its event time, its arrival coordinates, its fields."""

    time: int
    topic: str
    partition: int
    offset: int
    kind: str  # "game" (GameEvent) or "interaction" (UserInteraction)
    record: Mapping[str, Any]
    # The original Kafka record, carried only so a dead letter can keep its exact bytes.
    source: Any = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # Events are pickled into Flink state; the generic slotted-dataclass path costs
        # several times more.
        args = (self.time, self.topic, self.partition, self.offset, self.kind, self.record)
        return (Event, (*args, self.source))

    @property
    def sort_key(self) -> tuple[int, str, int, int]:
        # Order-dependent state applies events by event time, ties by arrival coordinates.
        return (self.time, self.topic, self.partition, self.offset)

    @property
    def dedup_key(self) -> str:
        return f"{self.kind}|{self.record['event_id']}|{int(self.record.get('revision') or 0)}"


S = TypeVar("S")


def by_fields(obj: Any) -> tuple[Any, ...]:
    """__reduce__ of a slotted dataclass: its class and its field values in order.

    Feature state is pickled into Flink state on every changed tick and the clock on most
    arrivals: this form is smaller than the generic slotted-dataclass one (copyreg.__newobj__
    plus a state list; a clock 173 instead of 270 bytes, a user's feature state 12 % less)
    and loads about 20 % faster; dumping costs the same. Pickles of the generic path
    (release 1's savepoints) still load: they name copyreg.__newobj__ and the dataclass's
    __setstate__, which stay. A field added later must come last with a default, so older
    pickles of this form load too."""
    return (type(obj), tuple(getattr(obj, name) for name in obj.__slots__))


class Step(NamedTuple, Generic[S]):
    """What evaluating a key at a tick produced."""

    state: S | None  # None: the key's state is gone (cleared)
    emissions: list[Emission]
    timers: list[int]  # new ticks to set timers for
    rejected: list[tuple[Event, Rejected]]  # accepted events a cleanup turned away
    # False: the state other than its clock is exactly as before the tick (an adapter that
    # keeps the state elsewhere need not write it back).
    changed: bool = True


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # LATE or DUPLICATE (decode and validity problems are found before state)
    error: str


@dataclass(slots=True)
class KeyClock:
    """What every key keeps to apply events in order at ticks and to know when to evaluate.

    pending: accepted events not yet applied (their tick has not fired);
    agenda: ticks at which the key's record may change (event ticks, window exits, cleanup);
    last_tick: the last tick evaluated for this key (the per-key lateness bound);
    seen: dedup ids of accepted events -> their event time, kept for 24 h of event time.
    """

    pending: list[Event] = field(default_factory=list)
    agenda: list[int] = field(default_factory=list)
    last_tick: int | None = None
    # Any mutable mapping: a dict here, a Flink MapState in the adapter (so arrivals do not
    # rewrite every id a hot key has seen in 24 h).
    seen: MutableMapping[str, int] = field(default_factory=dict)
    last_record: Record | None = None
    cleanup_at: int | None = None
    closed_at: int | None = None  # a cleared game: every later event is LATE
    pruned_hour: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return by_fields(self)

    def check(self, ev: Event, watermark: int) -> Rejected | None:
        if self.closed_at is not None:
            return Rejected("LATE", f"game closed (state cleared at {self.closed_at})")
        bound = max(watermark, self.last_tick if self.last_tick is not None else watermark)
        if ev.time <= bound:
            return Rejected(
                "LATE",
                f"event_time {ev.time} <= max(watermark {watermark}, "
                f"last evaluated tick {self.last_tick})",
            )
        if ev.dedup_key in self.seen:
            return Rejected("DUPLICATE", f"{ev.dedup_key} already accepted for this key")
        return None

    def admit(self, ev: Event, tick_ms: int) -> list[int]:
        """Buffer an accepted event; returns the tick to set a timer for."""
        self.seen[ev.dedup_key] = ev.time
        bisect.insort(self.pending, ev, key=lambda e: e.sort_key)
        t = tick_of(ev.time, tick_ms)
        return self.schedule([t])

    def schedule(self, ticks: Iterable[int]) -> list[int]:
        """Add future ticks to the agenda; returns those that need a new timer. A tick not
        after the one being evaluated (e.g. the window exit of a corrected old play) is
        already behind: its change happened in the past and needs no evaluation."""
        new = []
        for t in ticks:
            if self.last_tick is not None and t <= self.last_tick:
                continue
            i = bisect.bisect_left(self.agenda, t)
            if i == len(self.agenda) or self.agenda[i] != t:
                self.agenda.insert(i, t)
                new.append(t)
        return new

    def due(self, tick: int) -> list[Event]:
        """Pop the pending events with time <= tick, in application order."""
        i = 0
        while i < len(self.pending) and self.pending[i].time <= tick:
            i += 1
        out, self.pending = self.pending[:i], self.pending[i:]
        return out

    def scheduled(self, tick: int) -> bool:
        """Is `tick` on the agenda? A timer for any other tick is stale (cleanup moved)."""
        i = bisect.bisect_left(self.agenda, tick)
        return i < len(self.agenda) and self.agenda[i] == tick

    def take_agenda(self, tick: int) -> bool:
        """Remove every agenda tick <= tick; True if `tick` itself was on it."""
        i = bisect.bisect_right(self.agenda, tick)
        was = i > 0 and self.agenda[i - 1] == tick
        del self.agenda[:i]
        if was:
            self.last_tick = tick
        return was

    def set_cleanup(self, at: int) -> list[int]:
        old = self.cleanup_at
        if old is not None and old != at and self.scheduled(old):
            del self.agenda[bisect.bisect_left(self.agenda, old)]
        self.cleanup_at = at
        return self.schedule([at])

    def prune_seen(self, tick: int) -> None:
        """Forget ids older than 24 h of event time, at most once per hour of ticks: an id
        that old can only come back LATE anyway, so when it is forgotten is invisible."""
        prune_ids(self, self.seen, tick)

    def emit_rule(self, tick: int, tick_ms: int, applied: list[Event], record: Record) -> bool:
        """product.md: emit at T iff an event is in (T - tick, T] or the record changed."""
        fresh = any(tick - tick_ms < e.time <= tick for e in applied)
        changed = self.last_record is None or _differs(record, self.last_record)
        self.last_record = record
        self.last_tick = tick
        return fresh or changed


def prune_ids(holder: Any, seen: MutableMapping[str, int], tick: int) -> None:
    """Forget the ids in `seen` older than 24 h of event time, at most once per hour of
    ticks (`holder.pruned_hour` remembers the last): an id that old can only come back
    LATE anyway, so when it is forgotten is invisible."""
    hour = tick // HOUR
    if hour == holder.pruned_hour:
        return
    holder.pruned_hour = hour
    horizon = tick - DEDUP_RETENTION_MS
    for k, t in list(seen.items()):
        if t <= horizon:
            del seen[k]


def offer(
    clock: KeyClock, ev: Event, watermark: int, tick_ms: int
) -> tuple[Rejected | None, list[int]]:
    """Accept or reject one event on arrival; accepted ones wait for their tick. Needs only
    the key's clock, never its feature state."""
    rejected = clock.check(ev, watermark)
    if rejected:
        return rejected, []
    return None, clock.admit(ev, tick_ms)


def _differs(a: Record, b: Record) -> bool:
    if a.keys() == b.keys():  # the usual case: one dict comparison, in C
        return {**a, "feature_time": None} != {**b, "feature_time": None}
    return any(a[k] != b.get(k) for k in a if k != "feature_time")


def window_exits(t: int, windows: Iterable[int], tick_ms: int) -> list[int]:
    """Ticks at which an event at `t` leaves each window: the first tick >= t + w."""
    return [tick_of(t + w, tick_ms) for w in windows]
