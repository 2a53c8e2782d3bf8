"""`tipoff dlq inspect | replay`: what the jobs turned away, and sending it back after a fix.

Dead letters keep the original key and value bytes, topic, partition and offset, so a
replay re-publishes exactly what the producer sent, to the topic it came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Producer

from flink_jobs.output import Log
from flink_jobs.settings import Settings
from flink_jobs.tools.tail import TailRecord, records


@dataclass(frozen=True)
class Selection:
    job: str | None = None
    reason: str | None = None
    topic: str | None = None

    def __call__(self, dl: dict[str, object]) -> bool:
        return (
            (self.job is None or dl["job"] == self.job)
            and (self.reason is None or dl["reason"] == self.reason)
            and (self.topic is None or dl["topic"] == self.topic)
        )


def read(s: Settings, idle_timeout_s: float = 10.0) -> Iterable[TailRecord]:
    """Every dead letter currently in the topic (stops once nothing new arrives)."""
    return records(s.endpoints, s.topics.dead_letters, True, None, idle_timeout_s)


def inspect(s: Settings, select: Selection, samples: int, log: Log) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    examples: dict[tuple[str, ...], list[str]] = {}
    for rec in read(s):
        dl = rec.value
        if dl is None or not select(dl):
            continue
        key: tuple[str, ...] = (str(dl["job"]), str(dl["reason"]), str(dl["topic"]))
        counts[key] += 1
        shown = examples.setdefault(key, [])
        if len(shown) < samples:
            shown.append(f"{dl['topic']}[{dl['partition']}]@{dl['offset']}: {dl['error']}")
    log(f"{'job':<15}{'reason':<16}{'topic':<36}{'count':>8}")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        log(f"{key[0]:<15}{key[1]:<16}{key[2]:<36}{n:>8}")
        for line in examples[key]:
            log(f"      e.g. {line[:150]}")
    log(f"total {sum(counts.values())} dead letter(s)")
    return counts


def replay(s: Settings, select: Selection, dry_run: bool, log: Log) -> int:
    """Re-publish the selected dead letters' original bytes to their source topics."""
    chosen = [rec.value for rec in read(s) if rec.value is not None and select(rec.value)]
    # One record dead-lettered by both jobs (an interaction) must go back once.
    unique = {(dl["topic"], dl["partition"], dl["offset"]): dl for dl in chosen}
    log(f"replay: {len(unique)} record(s) selected ({len(chosen)} dead letters)")
    if dry_run or not unique:
        return len(unique)
    producer = Producer(
        {
            "bootstrap.servers": s.endpoints.bootstrap_servers,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for dl in unique.values():
        producer.produce(str(dl["topic"]), key=dl["key"], value=dl["value"], on_delivery=delivered)
        producer.poll(0)
    producer.flush(60)
    if failures:
        raise RuntimeError(f"{len(failures)} replayed record(s) failed: {failures[0]}")
    log(f"replay: re-published {len(unique)} record(s) to their source topics")
    return len(unique)
