"""Everything one job encodes and decodes.

JobSchemas is resolved once, when the job is built (on the client), and travels inside the
job graph: the reader schemas of the build and a snapshot of every writer schema registered
for the job's subjects. A task that (re)starts needs the registry only for schema ids
registered after the build, so restarts work while the registry is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from udfs import jobs
from udfs.serde import avsc
from udfs.serde.fastwrite import compile_writer
from udfs.serde.inputs import DeadLetter, InputDecoder
from udfs.serde.registry import DiskCache, OnRetry, Registry, Sleep, WriterSchemas
from udfs.serde.registry import subject as subject_of
from udfs.serde.wire import Codec, parse

INPUT_KIND = {t.schema: t.kind for t in jobs.TOPICS if t.kind is not None}
OUTPUT_SCHEMA = {j.name: jobs.TOPIC[j.output].schema for j in jobs.JOBS}
DEAD_LETTER_SCHEMA = jobs.TOPIC[jobs.DEAD_LETTERS].schema


class SchemaNotRegistered(RuntimeError):
    pass


@dataclass(frozen=True)
class JobSchemas:
    """What a job's build knows about schemas; plain data, pickled into the job graph."""

    registry_url: str
    topics: Mapping[str, str]  # role -> topic (roles: .avsc paths, "dead_letters")
    readers: Mapping[str, dict[str, Any]]  # .avsc path -> the build's schema
    known: Mapping[str, Mapping[int, str]]  # subject -> id -> writer schema text
    output_ids: Mapping[str, int]  # .avsc path of an output -> its registered id
    cache_dir: str | None = None

    @classmethod
    def resolve(
        cls,
        registry_url: str,
        topics: Mapping[str, str],
        schemas_dir: str | None = None,
        cache_dir: str | None = None,
    ) -> JobSchemas:
        """Read the build's .avsc files and snapshot the registry (it must be up now)."""
        base = Path(schemas_dir) if schemas_dir else None
        rels = {
            role if role != "dead_letters" else DEAD_LETTER_SCHEMA: t for role, t in topics.items()
        }
        readers = {rel: avsc.load(rel, base) for rel in rels}
        registry = Registry(registry_url)
        known = {subject_of(t): registry.versions(subject_of(t)) for t in rels.values()}
        # Asked, not matched against `known`: the registry decides what counts as the same
        # schema (Apicurio ignores doc-only edits, for one).
        output_ids = {
            rel: found
            for rel, t in rels.items()
            if rel not in INPUT_KIND
            and (found := registry.id_of(subject_of(t), avsc.canonical(readers[rel]))) is not None
        }
        built = cls(registry_url, dict(topics), readers, known, output_ids, cache_dir)
        for rel in rels:
            if rel not in INPUT_KIND:
                built.output_id(rel)  # fail on the client, before the job is submitted
        return built

    def output_id(self, rel: str) -> int:
        """The registered id of the build's `rel` (an output schema)."""
        found = self.output_ids.get(rel)
        if found is None:
            subject = subject_of(self.topics[rel if rel != DEAD_LETTER_SCHEMA else "dead_letters"])
            raise SchemaNotRegistered(
                f"{rel} of this build is not registered under {subject} in "
                f"{self.registry_url}; run `tipoff schemas register` (it also creates the topics)"
            )
        return found


@dataclass(frozen=True)
class JobCodecs:
    job: str
    inputs: InputDecoder
    output: Codec
    dead_letters: Codec
    lookups: list[WriterSchemas] = field(default_factory=list)

    @classmethod
    def connect(
        cls,
        job: str,
        schemas: JobSchemas,
        sleep: Sleep | None = None,
        on_retry: OnRetry | None = None,
    ) -> JobCodecs:
        registry = Registry(schemas.registry_url)
        disk = DiskCache(schemas.cache_dir, schemas.registry_url) if schemas.cache_dir else None
        lookups: list[WriterSchemas] = []

        def codec(rel: str, topic: str, schema_id: int | None) -> Codec:
            subject = subject_of(topic)
            lookup = WriterSchemas(
                registry,
                subject,
                schemas.known.get(subject, {}),
                disk,
                sleep=sleep,
                on_retry=on_retry,
            )
            lookups.append(lookup)
            reader = schemas.readers[rel]
            writer = compile_writer(reader) if schema_id is not None else None
            return Codec(parse(reader), schema_id, lookup, writer)

        codecs: dict[str, Codec] = {}
        kinds: dict[str, str] = {}
        for rel, kind in INPUT_KIND.items():
            topic = schemas.topics.get(rel)
            if topic is not None:
                codecs[topic] = codec(rel, topic, None)
                kinds[topic] = kind
        out_rel, out_topic = OUTPUT_SCHEMA[job], schemas.topics[OUTPUT_SCHEMA[job]]
        dl_topic = schemas.topics["dead_letters"]
        return cls(
            job=job,
            inputs=InputDecoder(job, codecs, kinds),
            output=codec(out_rel, out_topic, schemas.output_id(out_rel)),
            dead_letters=codec(DEAD_LETTER_SCHEMA, dl_topic, schemas.output_id(DEAD_LETTER_SCHEMA)),
            lookups=lookups,
        )

    def feature_value(self, value: dict[str, Any] | None, computed_at: int) -> bytes | None:
        if value is None:
            return None  # a tombstone
        return self.output.encode({**value, "computed_at": computed_at})

    def dead_letter_value(self, dl: DeadLetter) -> bytes:
        return self.dead_letters.encode(dl)
