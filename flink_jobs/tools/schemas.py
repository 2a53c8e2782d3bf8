"""`tipoff schemas register | check`: topics and value schemas in Kafka and the registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs.settings import Settings
from flink_jobs.stack.health import admin
from udfs.serde import avsc
from udfs.serde.compat import LEVELS, Incompatibility, check

Log = Callable[[str], None]


def subject(topic: str) -> str:
    return f"{topic}-value"


def registry(url: str) -> SchemaRegistryClient:
    """A registry client that gives up after 15 s instead of hanging on a stuck request."""
    return SchemaRegistryClient({"url": url, "timeout": 15})


def create_topics(client: AdminClient, s: Settings, partitions: int, log: Log) -> dict[str, str]:
    """Create every tipoff topic that does not exist (topic auto-creation is off on purpose)."""
    existing = client.list_topics(timeout=10).topics
    result: dict[str, str] = {}
    new = []
    for topic in s.topics.all():
        if topic in existing:
            have = len(existing[topic].partitions)
            result[topic] = f"exists ({have} partitions)"
            if have != partitions:
                log(f"note: {topic} exists with {have} partitions (asked {partitions}); left as is")
            continue
        config = {"cleanup.policy": "compact"} if topic in s.topics.compacted() else {}
        new.append(NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config))
    for topic, fut in client.create_topics(new, operation_timeout=30).items():
        fut.result()
        policy = "compacted" if topic in s.topics.compacted() else "delete"
        result[topic] = f"created ({partitions} partitions, {policy})"
    return result


def register(s: Settings, partitions: int, schemas_dir: Path | None, log: Log) -> dict[str, int]:
    """Create topics, then register each topic's value schema under `<topic>-value`."""
    for topic, status in create_topics(
        admin(s.endpoints.bootstrap_servers), s, partitions, log
    ).items():
        log(f"topic   {topic:<28} {status}")
    client = registry(s.endpoints.registry_url)
    ids = {}
    for topic, rel in s.topics.schema_of().items():
        schema = Schema(avsc.canonical(avsc.load(rel, schemas_dir)), "AVRO")
        try:
            ids[subject(topic)] = client.register_schema(subject(topic), schema)
        except SchemaRegistryError as e:
            raise SchemaRegistryError(
                e.http_status_code,
                e.error_code,
                f"registering {rel} under {subject(topic)} was refused: {e.error_message}. "
                f"Run `tipoff schemas check` to see which field breaks compatibility.",
            ) from e
        log(f"schema  {subject(topic):<34} id {ids[subject(topic)]}  ({rel})")
    return ids


@dataclass(frozen=True)
class SubjectReport:
    subject: str
    file: str
    level: str
    versions: int
    problems: list[Incompatibility]
    registry_says_compatible: bool | None  # None: not asked, or nothing registered yet

    @property
    def ok(self) -> bool:
        return not self.problems and self.registry_says_compatible is not False


def check_all(s: Settings, schemas_dir: Path | None, level: str | None) -> list[SubjectReport]:
    """Compare each local .avsc with every version its subject holds in the registry."""
    if level is not None and level.upper() not in LEVELS:
        raise ValueError(
            f"unknown compatibility level {level!r}; choose one of {', '.join(LEVELS)}"
        )
    client = registry(s.endpoints.registry_url)
    known = set(client.get_subjects())
    reports = []
    for topic, rel in s.topics.schema_of().items():
        new = avsc.load(rel, schemas_dir)
        subj = subject(topic)
        if subj not in known:
            reports.append(SubjectReport(subj, rel, level or "-", 0, [], None))
            continue
        versions = client.get_versions(subj)
        previous = [json.loads(client.get_version(subj, v).schema.schema_str) for v in versions]
        lvl = (level or client.get_compatibility(subj) or "BACKWARD").upper()
        problems = check(new, previous, lvl)
        # The registry judges by the subject's own level; ask it only when that is the level.
        verdict = (
            client.test_compatibility(subj, Schema(avsc.canonical(new), "AVRO"))
            if level is None
            else None
        )
        reports.append(SubjectReport(subj, rel, lvl, len(versions), problems, verdict))
    return reports


def render(reports: list[SubjectReport]) -> list[str]:
    lines = []
    for r in reports:
        if r.versions == 0:
            lines.append(f"NEW           {r.subject:<34} {r.file}: not registered yet")
            continue
        state = "OK" if r.ok else "INCOMPATIBLE"
        lines.append(
            f"{state:<13} {r.subject:<34} {r.file} vs {r.versions} registered version(s), {r.level}"
        )
        lines.extend(f"    - {p.message}" for p in r.problems)
        if r.problems == [] and r.registry_says_compatible is False:
            lines.append(
                "    - the registry reports this schema incompatible with its latest version "
                "under its own rules, though tipoff's checker found no field-level problem"
            )
    return lines
