"""The feature function's keyed state: its names (the savepoint format), the dedup ids of a
key (SeenIds), the read cache of keys (StateCache, Cached), and waiting events as builtins
(pack_event / unpack_event); release 2's pending list is read by unpack_pending. State holds
builtins only (no class or module names).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pyflink.datastream.state import MapState

from udfs.features.common import Event
from udfs.serde.inputs import RawRecord

# State names: renaming one breaks restoring savepoints (docs/architecture.md, "State").
BODY_STATE = "v2-body"  # a user's body / a game's core (udfs.features.v2 encoding)
TICK_STATE = "v2-last-tick"  # the key's last evaluated tick
WAITING_STATE = "v2-waiting"  # accepted events not yet applied, as builtins (pack_event)
TILES_STATE = "v2-tiles"  # a game's interaction tiles: tick -> tile
SEEN_STATE = "dedup-ids"  # kind|event_id|revision -> event time, 24 h (both layouts)
# Release 2's layout (pickled classes), read only to convert a key on first access.
CLOCK_STATE = "key-clock"
FEATURE_STATE = "feature-state"
PENDING_STATE = "pending-events"


class SeenIds(MutableMapping[str, int]):
    """The dedup ids of the current key in a MapState. With `ids` set (the key's ids as
    last read, kept in the StateCache entry) lookups are answered from it — a MapState
    lookup is a JNI call of about 25 µs in thread mode, on every arrival — and changes are
    written through to both; with `ids` None every access goes to the MapState."""

    def __init__(self, state: MapState) -> None:
        self.state = state
        self.ids: dict[str, int] | None = None

    def load(self) -> dict[str, int]:
        """The current key's ids, read from the MapState."""
        return {k: int(v) for k, v in self.state.items()}

    def __getitem__(self, key: str) -> int:
        if self.ids is not None:
            return self.ids[key]
        value = self.state.get(key)
        if value is None:
            raise KeyError(key)
        return int(value)

    def __setitem__(self, key: str, value: int) -> None:
        self.state.put(key, value)
        if self.ids is not None:
            self.ids[key] = value

    def __delitem__(self, key: str) -> None:
        if self.ids is not None:
            del self.ids[key]
        self.state.remove(key)

    def __contains__(self, key: object) -> bool:
        if self.ids is not None:
            return key in self.ids
        return bool(self.state.contains(key))

    def __iter__(self) -> Iterator[str]:
        if self.ids is not None:
            return iter(list(self.ids))
        return iter(list(self.state.keys()))

    def __len__(self) -> int:
        if self.ids is not None:
            return len(self.ids)
        return sum(1 for _ in self.state.keys())  # noqa: SIM118 - a MapState, not a dict

    def clear(self) -> None:
        self.state.clear()
        if self.ids is not None:
            self.ids.clear()


@dataclass(slots=True)
class Cached:
    """One key's state as last read from or written to Flink: the v2 state (None: the key
    has none yet), its waiting events in application order, how many events the
    WAITING_STATE list still holds although a tick has applied them (see `live`), and the
    ticks of a game's tiles in TILES_STATE, and its dedup ids while it is cached."""

    state: Any
    pending: list[Event] = field(default_factory=list)
    applied: int = 0
    tiles: list[int] = field(default_factory=list)
    ids: dict[str, int] | None = None  # the dedup ids (SeenIds.ids), when cached


class StateCache:
    """A read cache of this subtask's keyed state, least recently used keys evicted.

    Flink's state stays the only copy that counts: every change is written through at
    once, so checkpoints and savepoints see everything, and a restarted or rescaled task
    starts with an empty cache (open()). What it saves is the JNI calls and the decoding
    of every read. The Python objects cost several times the encoded bytes: size it to the
    active keys of a subtask, not to all of them.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, Cached] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: str) -> Cached | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Cached) -> None:
        if self.capacity <= 0:
            return
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def drop(self, key: str) -> None:
        self.entries.pop(key, None)


def pack_event(ev: Event) -> tuple[Any, ...]:
    """A waiting event as builtins (WAITING_STATE): no class or module name in the bytes."""
    raw = ev.source
    source = None
    if raw is not None:
        source = (raw.topic, raw.partition, raw.offset, raw.timestamp, raw.key, raw.value)
    return (ev.time, ev.topic, ev.partition, ev.offset, ev.kind, dict(ev.record), source)


def unpack_event(item: tuple[Any, ...]) -> Event:
    time_, topic, partition, offset, kind, record, source = item
    raw = None if source is None else RawRecord(*source)
    return Event(time_, topic, partition, offset, kind, record, raw)


def unpack_pending(items: Iterable[Event | tuple[Event, ...]] | None) -> list[Event]:
    """Release 2's PENDING_STATE list: arrivals appended one Event each; a tick that took
    some rewrote the rest as one tuple. Release 1 wrote Events only."""
    out: list[Event] = []
    for item in items or ():
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return out
