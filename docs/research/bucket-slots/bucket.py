"""Prototype: the user family keyed by bucket, its users held in slots (one MapState entry
per slot: every user of the slot encoded together), one timer per (bucket, due tick).

Run like `tipoff run user-features --bounded` (same topics, same env vars), e.g.
  PYTHONPATH=/work/main python bucket.py --bounded --delivery-guarantee at-least-once
Writes to the configured features.user topic; compare with the per-key job's output.
Not product code: no release-2 conversion, no metrics, users only.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
import zlib
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from flink_jobs.config import add_job_options, from_args
from flink_jobs.pipeline import (
    by_key,
    environment,
    insert_into,
    sink_table,
    source,
    uid,
    with_watermarks,
)
from flink_jobs.settings import Settings
from udfs.features.common import Event, tick_of
from udfs.features.v2 import runtime
from udfs.features.v2 import user as fam
from udfs.flink import types
from udfs.flink.common import connect, dead_letter_row
from udfs.flink.decode import Decode
from udfs.flink.state import pack_event, unpack_event
from udfs.serde.inputs import RawRecord, dead_letter

BUCKETS = int(os.environ.get("BUCKETS", "128"))
SLOTS = int(os.environ.get("SLOTS", "64"))  # per bucket
JOB = "user-features"
NO_IDS = bool(os.environ.get("BUCKET_NO_IDS"))  # measure: dedup ids left out of the slots


def place(entity: str) -> tuple[int, int]:
    h = zlib.crc32(entity.encode())
    return h % BUCKETS, (h // BUCKETS) % SLOTS


class BucketDecode(Decode):
    """The decode step, keyed by the entity's bucket instead of the entity."""

    def process_element(self, row: Row, ctx: Any) -> Any:
        for out in super().process_element(row, ctx):
            if isinstance(out, tuple) and not isinstance(out, Row) and len(out) == 2 and isinstance(out[0], Row):
                keyed, basis = out
                yield Row(str(place(keyed[0])[0]), keyed[1]), basis
            else:
                yield out


class User:
    __slots__ = ("state", "pending", "ids", "body", "due")

    def __init__(self, state: Any, pending: list[Event], ids: dict[str, int], body: bytes | None):
        self.state, self.pending, self.ids, self.body = state, pending, ids, body
        self.due: int | None = None


class Buckets(KeyedProcessFunction):
    def __init__(self, schemas: Any, tick_ms: int) -> None:
        self.schemas, self.tick_ms = schemas, tick_ms

    def open(self, ctx: RuntimeContext) -> None:
        self.slots = ctx.get_map_state(
            MapStateDescriptor("slots", Types.INT(), types.PICKLED_STATE)
        )
        self.codecs = connect(JOB, self.schemas, ctx)
        # bucket -> (slot -> {user: User}), agenda tick -> set of (slot, user)
        self.held: dict[str, dict[int, dict[str, User]]] = {}
        self.agenda: dict[str, dict[int, set[tuple[int, str]]]] = {}
        self.timers: dict[str, set[int]] = {}
        import cProfile

        self._prof = cProfile.Profile() if os.environ.get("TIPOFF_PROFILE") else None
        if self._prof:
            self._prof.enable()

    def close(self) -> None:
        if self._prof:
            self._prof.disable()
            self._prof.dump_stats(os.environ["TIPOFF_PROFILE"] + ".bucket")

    def _bucket(self, b: str) -> dict[int, dict[str, User]]:
        slots = self.held.get(b)
        if slots is None:
            slots = self.held[b] = {}
            agenda = self.agenda[b] = {}
            self.timers[b] = set()
            for slot, blob in self.slots.items():
                users = {}
                for uid_, (body, last, pend, ids) in pickle.loads(blob).items():
                    pending = [unpack_event(p) for p in pend]
                    state = fam.decode(uid_, body, last) if body is not None else fam.new_state(uid_)
                    u = User(state, pending, ids, body)
                    users[uid_] = u
                    due = runtime.due_tick(fam, state, pending, self.tick_ms)
                    if due is not None:
                        u.due = due
                        agenda.setdefault(due, set()).add((slot, uid_))
                        self.timers[b].add(due)  # (timers are restored by Flink)
                slots[slot] = users
        return slots

    def _write(self, slot: int, users: dict[str, User]) -> None:
        out = {}
        for uid_, u in users.items():
            body = fam.encode(u.state)
            if body is not None:
                u.body = body
            out[uid_] = (
                u.body,
                u.state.last_tick,
                [pack_event(e) for e in u.pending],
                None if NO_IDS else u.ids,
            )
        self.slots.put(slot, pickle.dumps(out, protocol=5))

    def _schedule(self, b: str, slot: int, uid_: str, u: User, ctx: Any) -> None:
        due = runtime.due_tick(fam, u.state, u.pending, self.tick_ms)
        if due == u.due:
            return
        agenda = self.agenda[b]
        if u.due is not None:
            s = agenda.get(u.due)
            if s is not None:
                s.discard((slot, uid_))
        u.due = due
        if due is not None:
            agenda.setdefault(due, set()).add((slot, uid_))
            if due not in self.timers[b]:
                self.timers[b].add(due)
                ctx.timer_service().register_event_time_timer(due)

    def process_element(self, row: Row, ctx: Any) -> Any:
        b = ctx.get_current_key()
        ev: Event = row[2]
        entity = row[0]
        slots = self._bucket(b)
        slot = place(entity)[1]
        users = slots.setdefault(slot, {})
        u = users.get(entity)
        watermark = ctx.timer_service().current_watermark()
        if u is None:
            rejected = runtime.check(None, ev, watermark, {})
        else:
            rejected = runtime.check(u.state, ev, watermark, u.ids)
        if rejected is not None:
            raw = ev.source or RawRecord(ev.topic, ev.partition, ev.offset, None, None, None)
            yield types.DEAD_LETTERS, dead_letter_row(
                self.codecs, dead_letter(JOB, rejected.reason, rejected.error, raw)
            )
            return
        if u is None:
            u = users[entity] = User(fam.new_state(entity), [], {}, None)
        runtime.admit(ev, u.pending, u.ids, self.tick_ms)
        self._write(slot, users)
        self._schedule(b, slot, entity, u, ctx)

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        b = ctx.get_current_key()[0] if isinstance(ctx.get_current_key(), (tuple, Row)) else ctx.get_current_key()
        slots = self._bucket(b)
        self.timers[b].discard(timestamp)
        due = self.agenda[b].pop(timestamp, set())
        dirty: set[int] = set()
        now = int(time.time() * 1000)
        out = []
        for slot, entity in sorted(due):
            u = slots[slot][entity]
            u.due = None
            step = runtime.on_tick(fam, u.state, timestamp, self.tick_ms, u.pending, u.ids)
            if not step.changed:
                self._schedule(b, slot, entity, u, ctx)
                continue
            dirty.add(slot)
            if step.state is None:
                del slots[slot][entity]
            else:
                u.state = step.state
                self._schedule(b, slot, entity, u, ctx)
            for feature_time, value in step.emissions:
                out.append(Row(entity.encode(), self.codecs.feature_value(value, now), feature_time))
        for slot in dirty:
            if slots[slot]:
                self._write(slot, slots[slot])
            else:
                self.slots.remove(slot)
        yield from out


def main() -> None:
    p = argparse.ArgumentParser()
    add_job_options(p)
    cfg = from_args(p.parse_args(), [JOB], Settings.load())
    env, t_env = environment(cfg)
    schemas = cfg.schemas_for(JOB)
    decode = BucketDecode(JOB, schemas, cfg.partitions, cfg.end_offsets, cfg.idleness_ms)
    decoded = (
        source(t_env, cfg, JOB)
        .process(decode, output_type=types.KEYED_EVENT_WITH_BASIS)
        .uid(uid(JOB, "decode"))
    )
    feats = (
        by_key(with_watermarks(decoded, cfg, JOB))
        .process(Buckets(schemas, cfg.tick_ms), output_type=types.KAFKA_ROW)
        .uid(uid(JOB, "buckets"))
    )
    dead = decoded.get_side_output(types.DEAD_LETTERS).union(
        feats.get_side_output(types.DEAD_LETTERS)
    )
    statements = t_env.create_statement_set()
    for table, stream in [
        (sink_table(t_env, cfg, JOB, "features", cfg.output_topic(JOB)), feats),
        (sink_table(t_env, cfg, JOB, "dead_letters", cfg.topics.dead_letters), dead),
    ]:
        insert_into(t_env, statements, table, stream)
    statements.attach_as_datastream()
    t0 = time.time()
    env.execute("bucket prototype")
    print(f"finished in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
