"""Drive a v2 feature family for one key: accept or reject events on arrival, evaluate at
due ticks, clean up. The semantics are product.md's and the first generation's
(udfs.features.common); what differs is where work and state go (see the package doc).

The caller owns two things per key besides the state: `pending`, the accepted events not
yet applied, sorted by Event.sort_key, and `seen`, the dedup ids (any mutable mapping
id -> event time). A caller sets one event-time timer per tick returned in Step.timers
and per accepted event's tick; on_tick skips a timer that is no longer due.
"""

from __future__ import annotations

import bisect
from collections.abc import MutableMapping
from typing import Any, Protocol

from udfs.features.common import (
    Event,
    Record,
    Rejected,
    Step,
    prune_ids,
    tick_of,
)


class KeyState(Protocol):
    """What the runtime reads and writes on every family's state."""

    last_tick: int | None  # the last tick evaluated (the per-key lateness bound)
    cleanup_at: int | None
    closed_at: int | None  # a closed game: every later event is LATE
    last_record: Record | None  # the record at last_tick, without feature_time
    pruned_hour: int


class Family(Protocol):
    NAME: str
    # True: every evaluated tick changes the record (the runtime then neither compares nor
    # keeps the last record). The user family: see udfs.features.v2.user.
    EVERY_TICK_CHANGES: bool

    def new_state(self, key: str) -> Any: ...
    def apply(self, state: Any, ev: Event) -> None: ...
    def advance(self, state: Any, tick: int) -> None: ...
    def evaluate(self, state: Any, tick: int) -> Record: ...
    def next_change(self, state: Any, tick_ms: int) -> int | None: ...
    def cleanup_time(self, state: Any) -> int: ...
    def clear(
        self, state: Any, tick: int, pending: list[Event], seen: MutableMapping[str, int]
    ) -> Step[Any]: ...


def decrement(counts: dict[str, int], key: str) -> None:
    """One less of `key` in a running count; a count that reaches 0 leaves the dict."""
    n = counts[key] - 1
    if n:
        counts[key] = n
    else:
        del counts[key]


def sort_key(ev: Event) -> tuple[int, str, int, int]:
    return ev.sort_key


def live(stored: list[Event], last_tick: int | None) -> list[Event]:
    """The events of a stored waiting list still waiting: a tick T applies every waiting
    event <= T and becomes the key's last tick, and an event is only accepted after it if
    it is later than that (the lateness rule), so what is <= the last tick was applied.
    (Adapters may leave applied events in the list until a rewrite; release 2 did too.)"""
    if last_tick is None:
        return stored
    return [e for e in stored if e.time > last_tick]


def check(
    state: KeyState | None, ev: Event, watermark: int, seen: MutableMapping[str, int]
) -> Rejected | None:
    """LATE or DUPLICATE, or None: accept (product.md, "Late" and "Duplicate")."""
    if state is not None and state.closed_at is not None:
        return Rejected("LATE", f"game closed (state cleared at {state.closed_at})")
    last = state.last_tick if state is not None else None
    bound = max(watermark, last if last is not None else watermark)
    if ev.time <= bound:
        return Rejected(
            "LATE",
            f"event_time {ev.time} <= max(watermark {watermark}, last evaluated tick {last})",
        )
    if ev.dedup_key in seen:
        return Rejected("DUPLICATE", f"{ev.dedup_key} already accepted for this key")
    return None


def admit(ev: Event, pending: list[Event], seen: MutableMapping[str, int], tick_ms: int) -> int:
    """Buffer an accepted event; returns its tick (set a timer for it)."""
    seen[ev.dedup_key] = ev.time
    if not pending or sort_key(pending[-1]) <= ev.sort_key:
        pending.append(ev)  # the usual case: arrivals in order
    else:
        bisect.insort(pending, ev, key=sort_key)
    return tick_of(ev.time, tick_ms)


def due_tick(family: Family, state: KeyState, pending: list[Event], tick_ms: int) -> int | None:
    """The next tick at which the key's record may change, or None."""
    if state.closed_at is not None:
        return None
    due = family.next_change(state, tick_ms)
    if pending:
        t = tick_of(pending[0].time, tick_ms)
        due = t if due is None else min(due, t)
    c = state.cleanup_at
    if c is not None and (state.last_tick is None or c > state.last_tick):
        due = c if due is None else min(due, c)
    return due


def on_tick(
    family: Family,
    state: KeyState,
    tick: int,
    tick_ms: int,
    pending: list[Event],
    seen: MutableMapping[str, int],
) -> Step[Any]:
    """Evaluate the key at `tick` if anything is due by then. Takes the applied events off
    the front of `pending`. Step.timers holds the key's next due tick."""
    due = due_tick(family, state, pending, tick_ms)
    if due is None or due > tick:
        return Step(state, [], [], [], changed=False)  # a timer a later change made stale
    n = 0
    while n < len(pending) and pending[n].time <= tick:
        n += 1
    applied = pending[:n]
    del pending[:n]
    if state.cleanup_at == tick and not applied:
        return family.clear(state, tick, pending, seen)
    for ev in applied:
        family.apply(state, ev)
    if applied:
        state.cleanup_at = tick_of(family.cleanup_time(state), tick_ms)
    family.advance(state, tick)
    prune_ids(state, seen, tick)
    record = family.evaluate(state, tick)
    # product.md: emit at T iff an event is in (T - tick, T] (every applied event is: it
    # waited for its own tick) or the record changed.
    if family.EVERY_TICK_CHANGES:
        emit = True
    else:
        emit = bool(applied) or record != state.last_record
        state.last_record = record
    state.last_tick = tick
    nxt = due_tick(family, state, pending, tick_ms)
    return Step(
        state,
        [(tick, {**record, "feature_time": tick})] if emit else [],
        [] if nxt is None else [nxt],
        [],
    )
