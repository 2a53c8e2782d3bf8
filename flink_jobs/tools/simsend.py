"""`tipoff simulate`'s sending: a Job's emissions encoded and produced to Kafka, from this
process or from several spawned producer processes that each send whole partitions (a
Shard of them)."""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from confluent_kafka import KafkaError, Producer

from flink_jobs.sim import SimConfig, Simulation, versions
from flink_jobs.tools.simreport import SendReport, SimulateError, count_sent, print_progress
from flink_jobs.tools.simwire import WireEncoder, partition_of

PROGRESS_EVERY_S = 2.0
_POLL_EVERY = 256  # records between producer polls (delivery callbacks)
_TICK_EVERY = 1024  # records between progress / stop checks


@dataclass(frozen=True)
class Shard:
    """Which emissions one of `count` producer processes sends: those whose key's partition
    p (Kafka's default partitioner) has p % count == index. A partition is written by one
    process in generation order, so every partition holds the same records in the same
    order as a single-process run."""

    index: int
    count: int
    partitions: dict[str, int]  # topic -> partition count


@dataclass(frozen=True)
class Job:
    """Everything a sending process needs (picklable: it crosses to spawned processes)."""

    bootstrap: str
    topic_of: dict[str, str]  # kind -> topic
    schemas: dict[tuple[str, int], tuple[str, int]]  # (kind, version) -> (schema text, id)
    cfg: SimConfig
    live: bool
    schema_version: str
    only: slice | None
    shard: Shard | None


def send_single(job: Job, progress: bool) -> SendReport:
    total, t0 = job.cfg.total_events, time.monotonic()
    next_at = t0 + PROGRESS_EVERY_S

    def tick(r: SendReport) -> bool:
        nonlocal next_at
        if progress and time.monotonic() >= next_at:
            next_at = time.monotonic() + PROGRESS_EVERY_S
            print_progress(r.sent, r, total, time.monotonic() - t0)
        return False

    try:
        return send(job, tick)
    finally:
        if progress and sys.stderr.isatty():
            sys.stderr.write("\n")


def send(job: Job, tick: Callable[[SendReport], bool]) -> SendReport:
    """Send `job`'s emissions (its shard's only, if it has one) from this process. `tick` is
    called every _TICK_EVERY records and stops the run when it returns True."""
    try:
        sim = Simulation(job.cfg)
    except ValueError as e:
        raise SimulateError(f"cannot simulate that: {e}") from e
    enc = {kv: WireEncoder(json.loads(text), sid) for kv, (text, sid) in job.schemas.items()}
    topic_of, live, mode = job.topic_of, job.live, job.schema_version
    window_end = job.cfg.start_ms + job.cfg.duration_ms
    owned: dict[tuple[str, str], bool] = {}
    shard = job.shard
    prod = producer(job.bootstrap)
    report = SendReport()

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            report.failed.append(str(err))

    n = 0
    try:
        part = (
            sim if job.only is None else islice(sim, job.only.start, job.only.stop, job.only.step)
        )
        for em in part:
            topic = topic_of[em.kind]
            if shard is not None:
                mine = owned.get((topic, em.key))
                if mine is None:
                    p = partition_of(em.key.encode(), shard.partitions[topic])
                    mine = owned[(topic, em.key)] = p % shard.count == shard.index
                if not mine:
                    continue
            if live:
                _sleep_until(em.emit_ms)
            version = versions.choose(mode, em.writer_version)
            value = enc[(em.kind, version)](em.record)
            _produce(prod, topic, em.key.encode(), value, em.record["event_time"], delivered)
            n += 1
            if n % _POLL_EVERY == 0:
                prod.poll(0)
            if live:
                now = int(time.time() * 1000)
                report.max_lag_ms = max(report.max_lag_ms, now - em.emit_ms)
                if em.emit_ms <= window_end:
                    report.window_sent += 1
                    report.window_wall_s = (now - job.cfg.start_ms) / 1000
            count_sent(report, em, topic, version)
            if n % _TICK_EVERY == 0 and tick(report):
                report.interrupted = True
                break
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        prod.flush(60)
    return report


def _child(job: Job, sent: Any, stop: Any, results: Any) -> None:
    """A producer process: sends its shard, puts ("ok", report) or ("error", text)."""
    parent = os.getppid()

    def tick(r: SendReport) -> bool:
        sent.value = r.sent
        # Stop when asked, or when the parent is gone (killed: nobody would read the result).
        return bool(stop.is_set() or os.getppid() != parent)

    try:
        results.put(("ok", send(job, tick)))
    except KeyboardInterrupt:
        results.put(("error", "interrupted before sending"))
    except SimulateError as e:
        results.put(("error", str(e)))
    except BaseException as e:
        results.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def send_parallel(job: Job, count: int, partitions: dict[str, int], progress: bool) -> SendReport:
    # spawn, not fork: a forked child would inherit this process's Kafka and HTTP clients.
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    results: Any = ctx.Queue()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(count)]
    procs = [
        ctx.Process(
            target=_child,
            args=(replace(job, shard=Shard(i, count, partitions)), counters[i], stop, results),
            name=f"tipoff-simulate-{i}",
            daemon=True,
        )
        for i in range(count)
    ]
    for p in procs:
        p.start()
    report, errors, got = SendReport(), [], 0
    t0, next_at = time.monotonic(), time.monotonic() + PROGRESS_EVERY_S
    try:
        while got < count:
            try:
                kind, value = results.get(timeout=0.5)
            except queue.Empty:
                if progress and time.monotonic() >= next_at:
                    next_at = time.monotonic() + PROGRESS_EVERY_S
                    done = sum(c.value for c in counters)
                    print_progress(done, None, job.cfg.total_events, time.monotonic() - t0)
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead and results.empty():
                    errors.append(f"{dead[0].name} exited with code {dead[0].exitcode}")
                    break
                continue
            except KeyboardInterrupt:
                # Ctrl-C reaches the children too; they flush and report what they sent.
                stop.set()
                report.interrupted = True
                continue
            got += 1
            if kind == "ok":
                report.merge(value)
            else:
                errors.append(value)
                stop.set()
    finally:
        stop.set()
        for p in procs:
            p.join(90)
            if p.is_alive():
                p.terminate()
        if progress and sys.stderr.isatty():
            sys.stderr.write("\n")
    if errors:
        raise SimulateError(f"producer process: {errors[0]}")
    return report


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            # The Java client's partitioner: a key lands on the same partition whichever
            # client wrote it.
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 200_000,
            # Warnings such as "coordinator load in progress" on a fresh broker are retried.
            "log_level": 3,
        }
    )


def _sleep_until(emit_ms: int) -> None:
    delay = emit_ms / 1000 - time.time()
    if delay > 0.001:  # shorter waits cost more in sleep overhead than they keep in pace
        time.sleep(delay)


def _produce(
    prod: Producer,
    topic: str,
    key: bytes,
    value: bytes | None,
    timestamp_ms: int,
    cb: Callable[[KafkaError | None, object], None],
) -> None:
    while True:
        try:
            # CreateTime = the event time: Kafka's convention for when the record happened.
            prod.produce(topic, key=key, value=value, on_delivery=cb, timestamp=timestamp_ms)
            return
        except BufferError:
            prod.poll(0.1)  # the local queue is full: let deliveries drain
