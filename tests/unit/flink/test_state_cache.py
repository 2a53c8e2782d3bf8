"""The feature function's read cache: least recently used keys go first; size 0 keeps nothing."""

from __future__ import annotations

from udfs.flink.state import Cached, StateCache


def test_least_recently_used_key_is_evicted() -> None:
    cache = StateCache(2)
    a, b, c = (Cached(i) for i in range(3))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)
    assert cache.get("b") is None
    assert cache.get("a") is a and cache.get("c") is c
    assert (cache.hits, cache.misses) == (3, 1)


def test_capacity_zero_caches_nothing() -> None:
    cache = StateCache(0)
    cache.put("a", Cached(None))
    assert cache.get("a") is None


def test_drop_forgets_a_cleared_key() -> None:
    cache = StateCache(4)
    cache.put("a", Cached(None))
    cache.drop("a")
    cache.drop("never-there")
    assert cache.get("a") is None


def test_pending_list_reads_single_events_and_rewritten_batches() -> None:
    from udfs.features.common import Event
    from udfs.flink.state import unpack_pending

    e1, e2, e3 = (Event(t, "t", 0, t, "interaction", {"event_id": str(t)}) for t in (3, 1, 2))
    # Release 2: a tick rewrote (e1, e2) as one tuple; e3 arrived after it.
    assert unpack_pending([(e1, e2), e3]) == [e1, e2, e3]
    assert unpack_pending([e1, e2]) == [e1, e2]  # release 1's layout: one Event per element
    assert unpack_pending(None) == [] and unpack_pending([]) == []


def test_waiting_events_are_those_after_the_last_tick() -> None:
    from udfs.features.common import Event
    from udfs.features.v2.runtime import live

    events = [Event(t, "t", 0, t, "interaction", {"event_id": str(t)}) for t in (900, 1000, 1001)]
    assert live(events, 1000) == events[2:]
    assert live(events, None) == events


def test_waiting_events_pack_into_builtins_and_back() -> None:
    import pickle
    import pickletools

    from udfs.features.common import Event
    from udfs.flink.state import pack_event, unpack_event
    from udfs.serde.inputs import RawRecord

    raw = RawRecord("t", 2, 7, 1_000, b"k", b"\x00v")
    ev = Event(900, "t", 2, 7, "interaction", {"event_id": "e", "n": None}, raw)
    packed = pack_event(ev)
    ops = {op.name for op, _, _ in pickletools.genops(pickle.dumps(packed, protocol=4))}
    assert not ops & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "NEWOBJ", "BUILD"}
    back = unpack_event(pickle.loads(pickle.dumps(packed)))
    assert back == ev and back.source == raw
