"""`tipoff schemas register | check`: topics and value schemas in Kafka and the registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs.output import Log
from flink_jobs.settings import Settings, Topics
from flink_jobs.stack.health import admin, registry_ok
from udfs.serde import avsc
from udfs.serde.compat import LEVELS, Incompatibility, check
from udfs.serde.registry import subject


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
    if not new:  # the client refuses an empty list
        return result
    for topic, fut in client.create_topics(new, operation_timeout=30).items():
        fut.result()
        policy = "compacted" if topic in s.topics.compacted() else "delete"
        result[topic] = f"created ({partitions} partitions, {policy})"
    return result


def register(s: Settings, partitions: int, schemas_dir: Path | None, log: Log) -> dict[str, int]:
    """Create topics, then seed each topic's subject `<topic>-value` with the schema history:
    every distinct version in releases/<n>/, oldest first, then the current file. A version
    the subject already holds keeps its id, so running this again changes nothing. Returns
    the id of each subject's current version."""
    for topic, status in create_topics(
        admin(s.endpoints.bootstrap_servers), s, partitions, log
    ).items():
        log(f"topic   {topic:<28} {status}")
    client = registry(s.endpoints.registry_url)
    ids = {}
    for topic, rel in s.topics.schema_of().items():
        subj = subject(topic)
        versions = [Schema(avsc.canonical(v), "AVRO") for v in avsc.history(rel, schemas_dir)]
        held = [_lookup(client, subj, v) for v in versions]
        # An older version registered after a newer one would become the subject's latest
        # version; so a version the subject lacks is added only if it holds no later one.
        later_held = max((n for n, h in enumerate(held) if h is not None), default=-1)
        for n, (version, have) in enumerate(zip(versions, held, strict=True)):
            which = (
                "the current file"
                if n == len(versions) - 1
                else f"version {n + 1} of {len(versions)}, from releases/"
            )
            head = f"schema  {subj:<34}"
            if have is not None and have.schema_id is not None:
                schema_id, what = have.schema_id, f"already version {have.version}"
            elif n < later_held:
                log(f"{head} -        ({rel}, {which}): not added, a later one is held")
                continue
            else:
                schema_id, what = _register(client, subj, version, f"{rel} ({which})"), "registered"
            log(f"{head} id {schema_id:<5} ({rel}, {which}): {what}")
            ids[subj] = schema_id
    return ids


def _lookup(client: SchemaRegistryClient, subj: str, schema: Schema) -> RegisteredSchema | None:
    """The subject's version holding `schema`, or None (also when the subject is new)."""
    try:
        return client.lookup_schema(subj, schema)
    except SchemaRegistryError as e:
        if e.http_status_code == 404:
            return None
        raise


def _register(client: SchemaRegistryClient, subj: str, schema: Schema, what: str) -> int:
    try:
        return client.register_schema(subj, schema)
    except SchemaRegistryError as e:
        raise SchemaRegistryError(
            e.http_status_code,
            e.error_code,
            f"registering {what} under {subj} was refused: {e.error_message}. "
            f"Run `tipoff schemas check` to see which field breaks compatibility.",
        ) from e


# Who reads a topic decides how its schema may change. tipoff's jobs read the input topics:
# they upgrade to a new schema and must still read every version producers may write and the
# topics still hold (BACKWARD_TRANSITIVE). tipoff writes the outputs, read by consumers it does
# not control: those on any older version must read what the new jobs write (FORWARD), and
# consumers on the new schema must read old records, which compacted feature topics keep
# indefinitely (BACKWARD) - both, against every version: FULL_TRANSITIVE.
INPUT_LEVEL = "BACKWARD_TRANSITIVE"
OUTPUT_LEVEL = "FULL_TRANSITIVE"


def default_level(rel: str) -> str:
    """The compatibility level `schemas check` applies to the contract at `rel` (relative to
    avro_schemas/): inputs (events/...) BACKWARD_TRANSITIVE, outputs FULL_TRANSITIVE."""
    return INPUT_LEVEL if rel.startswith("events/") else OUTPUT_LEVEL


def _defaults_table() -> str:
    return "\n".join(
        f"  {topic:<26} {rel:<28} {default_level(rel)}"
        for topic, rel in Topics().schema_of().items()
    )


DESCRIPTION = f"""\
register: create the topics that do not exist, then register each topic's value schema
  under <topic>-value: every version in avro_schemas/releases/<n>/, oldest first, then the
  current file. A version already registered keeps its id; each id is printed.

check: the compatibility gate for CI and deploys. Compares each local .avsc with every
  version registered under its subject (with --against DIR: with DIR's releases/<n>/ and
  current files, no registry needed) and explains each incompatibility: the field, the
  change, and which readers it breaks. Exit 0 when all are compatible (a subject not
  registered yet is NEW, not a failure), 1 when any is not, 2 on a usage error or an
  unreachable registry. At the default levels it also asks the registry whether it would
  accept the schema under the subject's own level there (global BACKWARD unless set).

compatibility levels (--level):
  BACKWARD          the new schema reads data written with the latest version
  FORWARD           the latest version reads data written with the new schema
  FULL              both
  ..._TRANSITIVE    the same against every previous version, not only the latest
  NONE              nothing is checked

default level by role, without --level:
  inputs (events/) BACKWARD_TRANSITIVE: tipoff's jobs, on the new schema, must read every
    version producers may still write and the topics still hold.
  outputs FULL_TRANSITIVE: consumers on any version must read what the jobs write, and
    consumers on the new schema must read the old records the topics keep (compacted
    feature topics keep them indefinitely).
{_defaults_table()}
"""


class CheckError(RuntimeError):
    """`schemas check` cannot run: registry unreachable, or a bad --against directory."""


@dataclass(frozen=True)
class SubjectReport:
    subject: str
    file: str
    level: str
    versions: int  # previous versions compared with; 0: none (NEW)
    problems: list[Incompatibility]
    registry_says_compatible: bool | None  # None: not asked, or nothing registered yet
    source: str = "registered"  # where the previous versions came from, for the report

    @property
    def ok(self) -> bool:
        return not self.problems and self.registry_says_compatible is not False


def _level(level: str | None) -> str | None:
    if level is None:
        return None
    if level.upper() not in LEVELS:
        raise ValueError(
            f"unknown compatibility level {level!r}; choose one of {', '.join(LEVELS)}"
        )
    return level.upper()


def _schema_str(registered: RegisteredSchema) -> str:
    """A registered version's schema text (typed optional; a registered version has one)."""
    text = registered.schema.schema_str
    assert text is not None, f"{registered.subject} v{registered.version}: no schema text"
    return text


def check_all(s: Settings, schemas_dir: Path | None, level: str | None) -> list[SubjectReport]:
    """Compare each local .avsc with every version its subject holds in the registry, at
    `level`, or by default at `default_level` of its file."""
    override = _level(level)
    if not registry_ok(s.endpoints.registry_url):
        raise CheckError(
            f"the schema registry at {s.endpoints.registry_url} does not answer; start it "
            "(`tipoff stack up`) or compare offline with `tipoff schemas check --against DIR`"
        )
    client = registry(s.endpoints.registry_url)
    known = set(client.get_subjects())
    reports = []
    for topic, rel in s.topics.schema_of().items():
        new = avsc.load(rel, schemas_dir)
        subj = subject(topic)
        lvl = override or default_level(rel)
        if subj not in known:
            reports.append(SubjectReport(subj, rel, lvl, 0, [], None))
            continue
        versions = client.get_versions(subj)
        previous = [json.loads(_schema_str(client.get_version(subj, v))) for v in versions]
        problems = check(new, previous, lvl)
        # The registry's verdict answers another question: would `schemas register` (the
        # deploy) be accepted under the subject's own level in the registry (global BACKWARD
        # unless set)? Asked only at the default per-role levels, which are at least as strict
        # as BACKWARD, so it can only add a failure the deploy would meet as a 409; with an
        # explicit --level the user asked for that level alone. Apicurio 3.3.3 tests the
        # `latest` endpoint against the latest version even under a *_TRANSITIVE level, and
        # the all-versions endpoint against every version even under a plain level, while its
        # register honours the level; so the endpoint is chosen as register would judge.
        verdict = None
        if override is None:
            candidate = Schema(avsc.canonical(new), "AVRO")
            registry_level = (client.get_compatibility(subj) or "BACKWARD").upper()
            if registry_level.endswith("_TRANSITIVE"):
                verdict = client.test_compatibility_all_versions(subj, candidate)
            else:
                verdict = client.test_compatibility(subj, candidate)
        reports.append(SubjectReport(subj, rel, lvl, len(versions), problems, verdict))
    return reports


def check_against(
    s: Settings, schemas_dir: Path | None, against: Path, level: str | None
) -> list[SubjectReport]:
    """Offline: compare each local .avsc with its history in another checkout's avro_schemas/
    directory `against` (its releases/<n>/ and its current files), no registry involved."""
    override = _level(level)
    if not against.is_dir():
        raise CheckError(f"--against {against}: no such directory")
    if next(against.rglob("*.avsc"), None) is None:
        raise CheckError(f"--against {against}: no .avsc files in it; pass an avro_schemas/ dir")
    rels = s.topics.schema_of()
    histories = {rel: avsc.history(rel, against) for rel in rels.values()}
    if not any(histories.values()):
        hint = (
            f"; did you mean {against / 'avro_schemas'}?"
            if (against / "avro_schemas").is_dir()
            else ""
        )
        raise CheckError(
            f"--against {against}: none of {', '.join(rels.values())} is in it; pass the "
            f"avro_schemas/ directory itself{hint}"
        )
    reports = []
    for topic, rel in rels.items():
        new = avsc.load(rel, schemas_dir)
        lvl = override or default_level(rel)
        previous = histories[rel]
        problems = check(new, previous, lvl)
        source = f"in {against}"
        reports.append(
            SubjectReport(subject(topic), rel, lvl, len(previous), problems, None, source)
        )
    return reports


def render(reports: list[SubjectReport]) -> list[str]:
    lines = []
    for r in reports:
        if r.versions == 0:
            where = "not registered yet" if r.source == "registered" else f"not {r.source}"
            lines.append(f"NEW           {r.subject:<34} {r.file}: {where}")
            continue
        state = "OK" if r.ok else "INCOMPATIBLE"
        lines.append(
            f"{state:<13} {r.subject:<34} {r.file} vs {r.versions} version(s) {r.source}, {r.level}"
        )
        lines.extend(f"    - {p.message}" for p in r.problems)
        if r.problems == [] and r.registry_says_compatible is False:
            lines.append(
                "    - the registry would refuse to register this schema under its own level "
                "for the subject, though tipoff's checker found no field-level problem"
            )
    return lines
