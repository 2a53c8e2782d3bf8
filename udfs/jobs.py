"""The job table: every topic tipoff reads or writes, and every feature job, declared once.

Everything else derives from these two tables: topic defaults, `TIPOFF_TOPIC_*` variables and
value schemas (flink_jobs.settings.Topics), a job's inputs and output (flink_jobs.config),
input kinds and output schemas (udfs.serde.jobcodecs), the feature families
(udfs.features.families), CLI choices, submit entry modules, the state-size report and the
monitoring rules. A job's name is also part of its operator uids and transactional-id
prefixes (flink_jobs.pipeline.uid): renaming a job strands its savepoints.

Pure data, no imports from the rest of tipoff: udfs (which runs in Flink) and the operator
tooling both read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    role: str  # the attribute of settings.Topics; TIPOFF_TOPIC_<ROLE> renames the topic
    default: str  # the topic name when not renamed
    schema: str  # the .avsc file of its values, relative to avro_schemas/
    kind: str | None = None  # inputs: the Event.kind of its records
    compacted: bool = False  # feature topics: latest record per key kept


@dataclass(frozen=True)
class JobSpec:
    name: str  # the job's name: CLI argument, operator uid prefix, dead letters' `job`
    family: str  # its feature family (udfs.features.families)
    inputs: tuple[str, ...]  # topic roles it reads
    output: str  # the topic role it writes its features to
    module: str  # the entry module: `python -m <module>` / `flink run -pym <module>`


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("game_events", "sports.game_events", "events/GameEvent.avsc", kind="game"),
    TopicSpec(
        "user_interactions",
        "sports.user_interactions",
        "events/UserInteraction.avsc",
        kind="interaction",
    ),
    TopicSpec("user_features", "features.user", "features/UserFeatures.avsc", compacted=True),
    TopicSpec("game_features", "features.game", "features/GameFeatures.avsc", compacted=True),
    TopicSpec("dead_letters", "tipoff.dead_letters", "ops/DeadLetter.avsc"),
)
DEAD_LETTERS = "dead_letters"  # the role every job writes its dead letters to

JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "user-features",
        "user",
        ("user_interactions",),
        "user_features",
        "flink_jobs.user_features",
    ),
    JobSpec(
        "game-features",
        "game",
        ("game_events", "user_interactions"),
        "game_features",
        "flink_jobs.game_features",
    ),
)
# Every job of the table in one Flink job (they share slots): `tipoff run/submit all`.
ALL = "all"
ALL_MODULE = "flink_jobs.all_features"

TOPIC = {t.role: t for t in TOPICS}
JOB = {j.name: j for j in JOBS}
JOB_NAMES = tuple(JOB)


def job_of_module(module: str) -> tuple[str, ...]:
    """The jobs an entry module runs (its `__spec__.name`)."""
    if module == ALL_MODULE:
        return JOB_NAMES
    for j in JOBS:
        if j.module == module:
            return (j.name,)
    raise KeyError(f"{module} is not a job entry module of udfs.jobs")


def combined_name(jobs: tuple[str, ...] | list[str]) -> str:
    """The Flink job name `tipoff run/submit` gives a run of `jobs`."""
    return f"tipoff {'+'.join(jobs)}"


def expand(job: str) -> tuple[str, ...]:
    """A JOB argument (a job's name or `all`) as the jobs it runs."""
    if job == ALL:
        return JOB_NAMES
    if job not in JOB:
        raise KeyError(f"unknown job {job!r}: one of {', '.join((*JOB_NAMES, ALL))}")
    return (job,)
