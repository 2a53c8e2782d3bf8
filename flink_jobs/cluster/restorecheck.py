"""Can this build restore that savepoint? The comparison behind `tipoff savepoint check`.

`compare(info, build)` sets what a savepoint holds (flink_jobs.cluster.savepoints.inspect)
against the job graph this build submits (flink_jobs.cluster.buildplan.expected_operators)
and says, per operator, what restores, what starts empty and what would be dropped: OK /
NEW / NOTE / WARN / FAIL lines. `check(path, ...)` does all three steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.cluster.buildplan import Build, BuildOperator, expected_operators
from flink_jobs.cluster.savepoints import (
    FLINK_NON_RESTORED,
    NON_RESTORED_HINT,
    PLANNER_UID,
    TIMERS,
    SavepointInfo,
    SavepointOperator,
    gateway_jvm,
    inspect,
    natural_key,
)

LEVELS = ("OK", "NEW", "NOTE", "WARN", "FAIL")


@dataclass(frozen=True)
class Line:
    level: str  # one of LEVELS
    text: str

    def __str__(self) -> str:
        return f"{self.level:<5} {self.text}"


@dataclass
class Report:
    savepoint: SavepointInfo
    build: Build
    lines: list[Line] = field(default_factory=list)

    def add(self, level: str, text: str) -> None:
        assert level in LEVELS, level
        self.lines.append(Line(level, text))

    @property
    def failures(self) -> list[Line]:
        return [line for line in self.lines if line.level == "FAIL"]

    @property
    def warnings(self) -> list[Line]:
        return [line for line in self.lines if line.level == "WARN"]

    @property
    def ok(self) -> bool:
        """No savepoint state would be dropped and nothing makes the restore fail."""
        return not self.failures

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.failures or (strict and self.warnings) else 0

    def render(self) -> list[str]:
        sp, build = self.savepoint, self.build
        head = [
            f"savepoint {sp.path}: {sp.kind}, {len(sp.operators)} operators, "
            f"{len(sp.with_state())} with state",
            f"build     {build.description}: {len(build.operators)} operators, "
            f"{sum(1 for o in build.operators if o.uid)} with a uid",
        ]
        if self.failures:
            verdict = f"FAIL  this build cannot restore the savepoint as is ({len(self.failures)})"
            if any(NON_RESTORED_HINT in line.text for line in self.failures):
                verdict += f"; {FLINK_NON_RESTORED} would start it without the state above"
        else:
            verdict = "OK    this build restores every piece of state in the savepoint"
        return [*head, *(str(line) for line in self.lines), verdict]


def compare(info: SavepointInfo, build: Build, compatibility: bool = True) -> Report:
    """What restoring `info` into `build` keeps, starts empty, or drops. `compatibility`:
    also resolve key serializer compatibility (needs the JVM)."""
    report = Report(info, build)
    by_id: dict[str, BuildOperator] = {}
    for op in build.operators:
        for op_id in (op.operator_id, *op.extra_ids):
            by_id[op_id] = op
    in_savepoint = {op.operator_id for op in info.operators}
    for sp in sorted(info.operators, key=lambda o: natural_key(o.uid or "~" + o.operator_id)):
        b = by_id.get(sp.operator_id)
        if b is None:
            if sp.has_state:
                report.add(
                    "FAIL",
                    f"savepoint holds state of operator {sp.label} ({sp.describe_state()}) "
                    "which this build does not have (renamed or removed uid?): it would be "
                    f"dropped; {NON_RESTORED_HINT}",
                )
            continue
        _parallelism(report, sp, b)
        if not sp.has_state:
            if b.keyed_states:
                report.add("NOTE", f"{b.uid or sp.label}: no state in the savepoint: starts empty")
            continue
        problems = len(report.failures)
        if sp.uid and PLANNER_UID.match(sp.uid) and sp.name and sp.name != b.name:
            report.add(
                "FAIL",
                f"planner uid {sp.uid} belongs to another operator in this build: "
                f'"{sp.name}" in the savepoint, "{b.name}" here; its state '
                f"({sp.describe_state()}) would go to the wrong operator and be lost. The "
                "planner numbers its nodes by position: plan the same jobs, in the same order",
            )
        _keyed(report, sp, b, compatibility)
        if len(report.failures) == problems:
            report.add("OK", f"{b.uid or sp.label}: restores {sp.describe_state()}")
    for b in build.operators:
        if b.operator_id in in_savepoint or any(i in in_savepoint for i in b.extra_ids):
            continue
        if b.uid is not None:
            declared = f" (keyed state {', '.join(b.keyed_states)})" if b.keyed_states else ""
            report.add(
                "NEW",
                f"build operator uid {b.uid} [{b.operator_id}]{declared} is not in the "
                "savepoint: it starts empty (new, or a renamed uid?)",
            )
        elif b.keyed_states:
            report.add(
                "WARN",
                f'build operator "{b.name}" [{b.operator_id}] declares keyed state but has no '
                "uid: its id is a hash of the graph's shape and changes with it",
            )
    return report


def _parallelism(report: Report, sp: SavepointOperator, b: BuildOperator) -> None:
    who = b.uid or sp.label
    if b.max_parallelism > 0 and b.max_parallelism != sp.max_parallelism:
        report.add(
            "FAIL",
            f"{who}: max parallelism {b.max_parallelism} is set by this build, the savepoint "
            f"has {sp.max_parallelism}: restore fails (a configured max parallelism cannot "
            "change)",
        )
    elif b.parallelism > sp.max_parallelism:
        report.add(
            "FAIL",
            f"{who}: parallelism {b.parallelism} is above the savepoint's max parallelism "
            f"{sp.max_parallelism}: restore fails",
        )


def _layout(
    report: Report, who: str, saved: Mapping[str, Any], declared: Mapping[str, str]
) -> None:
    """A savepoint of release 2 (or 1): its feature state is pickled classes, which this
    build converts key by key (udfs/flink/features.py, Features._convert)."""
    from udfs.flink.state import BODY_STATE, CLOCK_STATE

    if CLOCK_STATE in saved and BODY_STATE not in saved and BODY_STATE in declared:
        report.add(
            "NOTE",
            f"{who}: feature state in release 2's layout ({CLOCK_STATE} etc., pickled "
            "classes): this build converts each key to the v2 layout the first time it "
            "touches it (an event or a timer; every key with pending work has a timer), "
            "with no separate migration step; roll back only from a savepoint taken "
            "before the upgrade (docs/savepoints.md, 'Upgrading from release 2')",
        )


def _keyed(report: Report, sp: SavepointOperator, b: BuildOperator, compatibility: bool) -> None:
    who = b.uid or sp.label
    if sp.keyed_states is None:
        if b.keyed_states:
            report.add("NOTE", f"{who}: keyed state names unread ({sp.keyed_note})")
        return
    saved = {s.name: s for s in sp.keyed_states if s.kind != TIMERS}
    if not b.keyed_states:
        if saved:
            report.add(
                "NOTE",
                f"{who}: keyed state {', '.join(saved)} in the savepoint; this check does not "
                "know what the build's function declares",
            )
        return
    for name, kind in b.keyed_states.items():
        old = saved.get(name)
        if old is None:
            report.add(
                "NOTE",
                f"{who}: keyed state {name} ({kind}) is not in the savepoint: it starts empty",
            )
        elif old.kind != kind:
            report.add(
                "FAIL",
                f"{who}: keyed state {name} is {old.kind} in the savepoint, {kind} in this "
                "build: the task fails when it declares it",
            )
    _layout(report, who, saved, b.keyed_states)
    for name in saved.keys() - b.keyed_states.keys():
        report.add(
            "WARN",
            f"{who}: keyed state {name} ({saved[name].kind}) in the savepoint is not declared "
            "by this build: Flink restores it and carries it into new snapshots, but nothing "
            "reads it any more",
        )
    if compatibility and sp.key_serializer and b.key_serializer:
        verdict = key_compatibility(sp.key_serializer, b.key_serializer)
        if verdict not in ("COMPATIBLE_AS_IS", "COMPATIBLE_WITH_RECONFIGURED_SERIALIZER"):
            report.add(
                "FAIL",
                f"{who}: the key serializer is {verdict} with the savepoint's: restore fails "
                "(keys cannot be migrated)",
            )


def key_compatibility(saved: bytes, new: bytes) -> str:
    """Flink's verdict on a new key serializer against the one a savepoint was written with
    (TypeSerializerSnapshot.resolveSchemaCompatibility): COMPATIBLE_AS_IS, ...,
    INCOMPATIBLE."""
    jvm = gateway_jvm()
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()

    snapshots = jvm.org.apache.flink.api.common.typeutils.TypeSerializerSnapshot

    def read(data: bytes) -> Any:
        stream = jvm.java.io.ByteArrayInputStream(data)
        view = jvm.org.apache.flink.core.memory.DataInputViewStreamWrapper(stream)
        return snapshots.readVersionedSnapshot(view, loader)

    result = read(new).resolveSchemaCompatibility(read(saved))
    if result.isCompatibleAsIs():
        return "COMPATIBLE_AS_IS"
    if result.isCompatibleWithReconfiguredSerializer():
        return "COMPATIBLE_WITH_RECONFIGURED_SERIALIZER"
    if result.isCompatibleAfterMigration():
        return "COMPATIBLE_AFTER_MIGRATION"
    return "INCOMPATIBLE"


def jobs_in(info: SavepointInfo) -> tuple[str, ...]:
    """The tipoff jobs whose operators (uids `tipoff.<job>.*`) the savepoint holds, in the
    order `tipoff run all` builds them (the planner's uids depend on it); () if none."""
    from flink_jobs.config import JOBS

    uids = [op.uid for op in info.operators if op.uid]
    return tuple(job for job in JOBS if any(u.startswith(f"tipoff.{job}.") for u in uids))


def check(
    path: str | Path,
    jobs: Sequence[str] | None = None,
    parallelism: int = 1,
    jars: Sequence[str] | None = None,
) -> Report:
    """`tipoff savepoint check PATH`: inspect the savepoint, plan this build's job for
    `jobs` (default: the jobs the savepoint holds, else both), compare."""
    info = inspect(path)
    return compare(info, expected_operators(jobs or jobs_in(info) or None, parallelism, jars))
