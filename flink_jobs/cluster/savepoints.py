"""`tipoff savepoint check PATH`: can this build restore that savepoint (or checkpoint)?

Flink restores state by operator id: the murmur3_128 hash of an operator's uid (explicit
`.uid()`, or the planner's `<node>_<kind>` uids under `table.exec.uid.generation=ALWAYS`).
A savepoint operator holding state that no operator of the new job graph claims makes the
restore fail (or, with non-restored state allowed, its state is dropped).

Three steps, each usable alone:

- `inspect(path)`: what the savepoint holds, read from its `_metadata` through Flink's own
  classes (via PyFlink's JVM gateway): per operator its id, uid and name (Flink 2.x writes
  them), parallelism, max parallelism, state sizes, keyed state names and kinds (from the
  KeyedBackendSerializationProxy at the start of each keyed state stream: canonical
  savepoints of either backend, hashmap checkpoints, RocksDB native savepoints and
  incremental checkpoints via their meta data handle) and operator state names.
- `expected_operators(...)`: the job graph this build submits, generated without running
  it, in a fresh process (the planner numbers its nodes per JVM, so a second plan in the
  same JVM would get other uids), plus the keyed state each stateful function declares,
  recorded by calling its real `open()` against a recording runtime context.
- `compare(info, build)` / `check(path, ...)`: OK / NEW / NOTE / WARN / FAIL lines.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The keyed state kinds Flink writes into a savepoint (StateMetaInfoSnapshot KEYED_STATE_TYPE);
# timers are priority queues an operator's timer service registers itself.
TIMERS = "TIMERS"
TIMER_PREFIX = "_timer_state/"
# Planner-made uids (`table.exec.uid.generation=ALWAYS`) are `<exec node id>_<kind>`: the
# node id is a position in the plan, so another plan can give the same uid to another operator.
PLANNER_UID = re.compile(r"^(?:Sink Committer: )?\d+_[a-z-]+$")
NON_RESTORED_HINT = "restoring needs --allow-non-restored-state"
FLINK_NON_RESTORED = (
    "Flink's --allowNonRestoredState (execution.state-recovery.ignore-unclaimed-state: true)"
)


class SavepointCheckError(RuntimeError):
    """The savepoint or the build could not be read; the message says why."""


# --- what a savepoint holds -------------------------------------------------------------


@dataclass(frozen=True)
class KeyedState:
    name: str
    kind: str  # VALUE, LIST, MAP, REDUCING, AGGREGATING, TIMERS
    serializer: str = ""  # the value serializer snapshot's class (simple name)


@dataclass(frozen=True)
class SavepointOperator:
    operator_id: str  # 32 hex digits
    uid: str | None  # written by Flink 2.x; None in older metadata or without a uid
    name: str | None
    parallelism: int
    max_parallelism: int
    keyed_bytes: int = 0
    operator_bytes: int = 0
    coordinator_bytes: int = 0
    has_state: bool = False  # what Flink asks: a subtask with state, or coordinator state
    # Keyed state by name, in the order Flink wrote it; None: there is keyed state but its
    # names could not be read (keyed_note says why).
    keyed_states: tuple[KeyedState, ...] | None = ()
    keyed_note: str | None = None
    operator_states: tuple[str, ...] = ()
    raw_state: bool = False  # raw keyed / operator state (no names in the metadata)
    key_serializer: bytes | None = None  # versioned TypeSerializerSnapshot of the key

    @property
    def label(self) -> str:
        """How messages name the operator: uid, id and (if known) name."""
        who = f"{self.uid} [{self.operator_id}]" if self.uid else f"[{self.operator_id}]"
        return f'{who} "{self.name}"' if self.name and self.name != self.uid else who

    @property
    def state_bytes(self) -> int:
        return self.keyed_bytes + self.operator_bytes + self.coordinator_bytes

    def describe_state(self) -> str:
        parts = []
        if self.keyed_bytes or self.keyed_states:
            if self.keyed_states is None:
                parts.append(f"keyed state {_size(self.keyed_bytes)} (names unread)")
            else:
                names = ", ".join(
                    f"{s.name} {s.kind}" for s in self.keyed_states if s.kind != TIMERS
                )
                timers = any(s.kind == TIMERS for s in self.keyed_states)
                parts.append(
                    f"keyed state {_size(self.keyed_bytes)}: {names or '-'}"
                    + (" + timers" if timers else "")
                )
        if self.operator_states or self.operator_bytes:
            parts.append(
                f"operator state {_size(self.operator_bytes)}: "
                + (", ".join(self.operator_states) or "raw")
            )
        if self.coordinator_bytes:
            parts.append(f"coordinator state {_size(self.coordinator_bytes)}")
        return "; ".join(parts) or "no state"


@dataclass(frozen=True)
class SavepointInfo:
    path: str  # the external pointer Flink resolved (the directory)
    checkpoint_id: int
    kind: str  # e.g. "Suspend Savepoint (CANONICAL)", "Checkpoint"
    operators: tuple[SavepointOperator, ...]

    def with_state(self) -> list[SavepointOperator]:
        return [op for op in self.operators if op.has_state]

    def render(self) -> list[str]:
        stateful = self.with_state()
        lines = [
            f"{self.path}: {self.kind}, checkpoint {self.checkpoint_id}, "
            f"{len(self.operators)} operators, {len(stateful)} with state "
            f"({_size(sum(op.state_bytes for op in stateful))})"
        ]
        order = sorted(
            self.operators, key=lambda o: (not o.has_state, _natural(o.uid or "~" + (o.name or "")))
        )
        for op in order:
            lines.append(
                f"  {op.label}: parallelism {op.parallelism}/{op.max_parallelism}, "
                + op.describe_state()
                + (f" ({op.keyed_note})" if op.keyed_note else "")
            )
        return lines


def _jvm() -> Any:
    """PyFlink's gateway JVM, started (if this is the first use in the process) with this
    interpreter first on PATH, as a later in-process job's thread mode needs."""
    from pyflink.java_gateway import get_gateway

    from flink_jobs.pipeline import python_first_on_path

    python_first_on_path()
    return get_gateway().jvm


def inspect(path: str | Path) -> SavepointInfo:
    """Read a savepoint's (or retained checkpoint's) metadata: a directory with a
    `_metadata` file or the file itself, any file system Flink has a plugin for."""
    loaded = load_metadata(path)
    jvm, loader, metadata = loaded.jvm, loaded.loader, loaded.metadata
    operators = tuple(_operator(jvm, loader, op) for op in metadata.getOperatorStates().toArray())
    return SavepointInfo(
        path=loaded.pointer,
        checkpoint_id=int(metadata.getCheckpointId()),
        kind=loaded.kind,
        operators=tuple(sorted(operators, key=lambda o: o.operator_id)),
    )


@dataclass(frozen=True)
class LoadedMetadata:
    """A savepoint's `_metadata` as Flink's own objects (py4j proxies)."""

    jvm: Any
    loader: Any  # the class loader the metadata was read with
    metadata: Any  # org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata
    pointer: str  # the external pointer Flink resolved (the directory)
    kind: str  # e.g. "Suspend Savepoint (CANONICAL)", "Checkpoint"
    is_savepoint: bool
    format_type: str | None  # CANONICAL / NATIVE for a savepoint, None for a checkpoint


def load_metadata(path: str | Path) -> LoadedMetadata:
    """Flink's CheckpointMetadata of a savepoint (or retained checkpoint) directory or its
    `_metadata` file; SavepointCheckError if it cannot be read."""
    from py4j.protocol import Py4JJavaError

    jvm = _jvm()
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    access = jvm.org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess
    try:
        location = access.resolveCheckpointPointer(str(path))
        stream = location.getMetadataHandle().openInputStream()
        try:
            metadata = jvm.org.apache.flink.runtime.checkpoint.Checkpoints.loadCheckpointMetadata(
                jvm.java.io.DataInputStream(stream), loader, location.getExternalPointer()
            )
        finally:
            stream.close()
    except Py4JJavaError as e:
        raise SavepointCheckError(f"cannot read savepoint {path}: {_java_message(e)}") from e
    props = metadata.getCheckpointProperties()
    snapshot_type = props.getCheckpointType()
    kind = str(snapshot_type.getName())
    format_type = None
    if props.isSavepoint():
        format_type = str(snapshot_type.getFormatType().name())
        kind += f" ({format_type})"
    return LoadedMetadata(
        jvm=jvm,
        loader=loader,
        metadata=metadata,
        pointer=str(location.getExternalPointer()),
        kind=kind,
        is_savepoint=bool(props.isSavepoint()),
        format_type=format_type,
    )


def _operator(jvm: Any, loader: Any, op: Any) -> SavepointOperator:
    from py4j.protocol import Py4JJavaError

    keyed_bytes = operator_bytes = 0
    has_state = raw = False
    keyed_names: dict[str, KeyedState] = {}
    op_names: dict[str, None] = {}
    key_serializer: bytes | None = None
    notes: list[str] = []
    for sub in op.getStates().toArray():
        has_state = has_state or bool(sub.hasState())
        managed_keyed = sub.getManagedKeyedState()
        keyed_bytes += int(managed_keyed.getStateSize()) + int(
            sub.getRawKeyedState().getStateSize()
        )
        operator_bytes += int(sub.getManagedOperatorState().getStateSize()) + int(
            sub.getRawOperatorState().getStateSize()
        )
        raw = raw or sub.getRawKeyedState().hasState() or sub.getRawOperatorState().hasState()
        for handle in sub.getManagedOperatorState().toArray():
            for name in handle.getStateNameToPartitionOffsets().keySet().toArray():
                op_names[str(name)] = None
        for handle in managed_keyed.toArray():
            if is_a(loader, handle, "org.apache.flink.runtime.state.KeyGroupsStateHandle"):
                meta = handle  # canonical format: the proxy opens the stream
            elif is_a(
                loader, handle, "org.apache.flink.runtime.state.IncrementalRemoteKeyedStateHandle"
            ):
                meta = handle.getMetaDataStateHandle()  # RocksDB native: a separate stream
            else:
                notes.append(f"keyed state names not readable from {handle.getClass().getName()}")
                continue
            try:
                proxy, _ = read_proxy(jvm, loader, meta)
            except Py4JJavaError as e:
                notes.append(f"keyed state names unreadable: {_java_message(e)}")
                continue
            if key_serializer is None:
                key_serializer = _snapshot_bytes(jvm, proxy.getKeySerializerSnapshot())
            for meta_info in proxy.getStateMetaInfoSnapshots():
                state = _keyed_state(meta_info)
                keyed_names.setdefault(state.name, state)
    coordinator = op.getCoordinatorState()
    coordinator_bytes = int(coordinator.getStateSize()) if coordinator is not None else 0
    uid, name = op.getOperatorUid(), op.getOperatorName()
    return SavepointOperator(
        operator_id=str(op.getOperatorID().toHexString()),
        uid=str(uid.get()) if uid.isPresent() else None,
        name=str(name.get()) if name.isPresent() else None,
        parallelism=int(op.getParallelism()),
        max_parallelism=int(op.getMaxParallelism()),
        keyed_bytes=keyed_bytes,
        operator_bytes=operator_bytes,
        coordinator_bytes=coordinator_bytes,
        has_state=has_state or coordinator is not None,
        keyed_states=None if notes and not keyed_names else tuple(keyed_names.values()),
        keyed_note="; ".join(dict.fromkeys(notes)) or None,
        operator_states=tuple(op_names),
        raw_state=bool(raw),
        key_serializer=key_serializer,
    )


def is_a(loader: Any, obj: Any, cls: str) -> bool:
    """Whether Java object `obj` is an instance of class `cls` (as `loader` loads it)."""
    return bool(loader.loadClass(cls).isInstance(obj))


def read_proxy(jvm: Any, loader: Any, handle: Any) -> tuple[Any, int]:
    """The KeyedBackendSerializationProxy at the start of a keyed state stream (key
    serializer snapshot and every registered state's name, kind and serializers), and the
    stream position where it ends."""
    proxy = jvm.org.apache.flink.runtime.state.KeyedBackendSerializationProxy(loader)
    stream = handle.openInputStream()
    try:
        proxy.read(jvm.org.apache.flink.core.memory.DataInputViewStreamWrapper(stream))
        return proxy, int(stream.getPos())
    finally:
        stream.close()


def _keyed_state(meta: Any) -> KeyedState:
    name = str(meta.getName())
    backend_type = str(meta.getBackendStateType().name())
    options = dict(meta.getOptionsImmutable())
    kind = TIMERS if backend_type == "PRIORITY_QUEUE" else str(options.get("KEYED_STATE_TYPE", "?"))
    snapshots = dict(meta.getSerializerSnapshotsImmutable())
    value = snapshots.get("VALUE_SERIALIZER")
    serializer = str(value.getClass().getSimpleName()) if value is not None else ""
    return KeyedState(name, kind, serializer)


def _snapshot_bytes(jvm: Any, snapshot: Any) -> bytes:
    out = jvm.java.io.ByteArrayOutputStream()
    jvm.org.apache.flink.api.common.typeutils.TypeSerializerSnapshot.writeVersionedSnapshot(
        jvm.org.apache.flink.core.memory.DataOutputViewStreamWrapper(out), snapshot
    )
    return bytes(out.toByteArray())


def _java_message(e: Any) -> str:
    try:
        j = e.java_exception
        while j.getCause() is not None and j.getMessage() is None:
            j = j.getCause()
        return f"{j.getClass().getSimpleName()}: {j.getMessage()}"
    except Exception:
        return str(e).splitlines()[0]


# --- what this build submits ------------------------------------------------------------


@dataclass(frozen=True)
class BuildOperator:
    operator_id: str  # 32 hex digits: murmur3_128(uid), or a graph hash without a uid
    uid: str | None
    name: str
    parallelism: int  # -1: the environment's default
    max_parallelism: int  # -1: not set (Flink adopts the savepoint's)
    # Keyed state the operator's function declares in open(): name -> kind; empty when it
    # declares none or the function is not one of the recorded ones.
    keyed_states: Mapping[str, str] = field(default_factory=dict)
    key_serializer: bytes | None = None  # versioned snapshot of the key serializer
    extra_ids: tuple[str, ...] = ()  # user-defined operator ids (setUidHash), if any


@dataclass(frozen=True)
class Build:
    description: str
    operators: tuple[BuildOperator, ...]

    def to_json(self) -> str:
        def encode(op: BuildOperator) -> dict[str, Any]:
            d = asdict(op)
            d["keyed_states"] = dict(op.keyed_states)
            d["key_serializer"] = (
                base64.b64encode(op.key_serializer).decode() if op.key_serializer else None
            )
            return d

        return json.dumps(
            {"description": self.description, "operators": [encode(o) for o in self.operators]}
        )

    @classmethod
    def from_json(cls, text: str) -> Build:
        data = json.loads(text)
        ops = []
        for d in data["operators"]:
            raw = d.pop("key_serializer")
            d["extra_ids"] = tuple(d["extra_ids"])
            ops.append(BuildOperator(**d, key_serializer=base64.b64decode(raw) if raw else None))
        return cls(data["description"], tuple(ops))


def describe(env: Any, keyed_states: Mapping[str, Mapping[str, str]], description: str) -> Build:
    """The job graph `env` (a PyFlink StreamExecutionEnvironment with its pipeline built,
    not executed) would submit: every operator's id, uid, name and parallelism, and the
    key serializer of keyed operators. `keyed_states`: uid -> the keyed state its
    function declares (see `declared_keyed_state`)."""
    jvm = _jvm()
    # What env.execute() / get_execution_plan() do first (Python operator chaining etc.).
    stream_graph = env._generate_stream_graph(clear_transformations=False)
    key_serializers: dict[str, bytes] = {}
    for node in stream_graph.getStreamNodes().toArray():
        serializer, uid = node.getStateKeySerializer(), node.getTransformationUID()
        if serializer is not None and uid is not None:
            key_serializers[str(uid)] = _snapshot_bytes(jvm, serializer.snapshotConfiguration())
    ops = []
    for vertex in stream_graph.getJobGraph().getVerticesAsArray():
        for pair in vertex.getOperatorIDs():
            uid = pair.getUserDefinedOperatorUid()
            uid = None if uid is None else str(uid)
            user_id = pair.getUserDefinedOperatorID()
            ops.append(
                BuildOperator(
                    operator_id=str(pair.getGeneratedOperatorID().toHexString()),
                    uid=uid,
                    name=str(pair.getUserDefinedOperatorName() or vertex.getName()),
                    parallelism=int(vertex.getParallelism()),
                    max_parallelism=int(vertex.getMaxParallelism()),
                    keyed_states=dict(keyed_states.get(uid or "", {})),
                    key_serializer=key_serializers.get(uid or ""),
                    extra_ids=(str(user_id.get().toHexString()),) if user_id.isPresent() else (),
                )
            )
    unknown = set(keyed_states) - {op.uid for op in ops}
    if unknown:
        raise SavepointCheckError(
            f"keyed state is declared for uid(s) {', '.join(sorted(unknown))} that the job "
            "graph does not have"
        )
    return Build(description, tuple(sorted(ops, key=lambda o: _natural(o.uid or "~" + o.name))))


class _Stub:
    """Answers anything: what a recorded open() does besides declaring state."""

    def __getattr__(self, name: str) -> Callable[..., _Stub]:
        return lambda *args, **kwargs: _Stub()

    def __iter__(self) -> Iterator[Any]:
        return iter(())


# RuntimeContext methods that declare keyed state, and the kind Flink records for each.
_DECLARES = {
    "get_state": "VALUE",
    "get_list_state": "LIST",
    "get_map_state": "MAP",
    "get_reducing_state": "REDUCING",
    "get_aggregating_state": "AGGREGATING",
}


class _RecordingContext(_Stub):
    def __init__(self) -> None:
        self.declared: dict[str, str] = {}

    def __getattr__(self, name: str) -> Callable[..., _Stub]:
        kind = _DECLARES.get(name)
        if kind is None:
            return super().__getattr__(name)

        def declare(descriptor: Any, *args: Any) -> _Stub:
            self.declared[str(descriptor.get_name())] = kind
            return _Stub()

        return declare


def declared_keyed_state(function: Any) -> dict[str, str]:
    """Run `function.declare_state()` (the part of open() that declares keyed state, without
    connecting to anything) against a context that records what it declares: name -> VALUE
    / LIST / MAP / ...."""
    ctx = _RecordingContext()
    function.declare_state(ctx)
    return ctx.declared


def tipoff_keyed_state(jobs: Sequence[str], tick_ms: int = 1_000) -> dict[str, dict[str, str]]:
    """uid -> keyed state, for tipoff's stateful operators: the `features` operator of each
    job runs udfs.flink.features.Features (see flink_jobs.pipeline.build_pipeline)."""
    from flink_jobs.pipeline import uid
    from udfs.flink.features import Features

    declared = {}
    for job in jobs:
        fn = Features(job, _offline_schemas(), tick_ms)
        declared[uid(job, "features")] = declared_keyed_state(fn)
    return declared


def _offline_schemas() -> Any:
    from udfs.serde.jobcodecs import JobSchemas

    return JobSchemas("offline://", {}, {}, {}, {}, None)


def default_jars() -> list[str]:
    """The jars `tipoff run` uses by default (the Kafka connector: the planner needs its
    table factory to plan the sources and sinks)."""
    from flink_jobs.settings import Settings

    return sorted(str(p) for p in Path(Settings.load().stack.flink_jars_dir).glob("*.jar"))


def expected_operators(
    jobs: Sequence[str] | None = None,
    parallelism: int = 1,
    jars: Sequence[str] | None = None,
    timeout_s: float = 300.0,
) -> Build:
    """The operators (ids, uids, declared keyed state) of this build's job for `jobs` (as
    `tipoff run`: one job of udfs.jobs or all of them), planned in a fresh Python + JVM
    process the way `tipoff run` / `flink run` plan it: without Kafka or a registry."""
    from flink_jobs.config import JOBS

    jobs = tuple(jobs or JOBS)
    jars = list(default_jars() if jars is None else jars)
    with tempfile.TemporaryDirectory(prefix="tipoff-plan-") as tmp:
        out = Path(tmp) / "build.json"
        cmd = [sys.executable, "-m", "flink_jobs.cluster.savepoints", "--plan", str(out)]
        cmd += ["--jobs", ",".join(jobs), "--parallelism", str(parallelism)]
        for jar in jars:
            cmd += ["--jar", jar]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            hint = ""
            if "kafka" in tail and "factory" in tail.lower():
                hint = (
                    "\nthe Kafka connector jar is missing: `tipoff stack up` downloads it, or "
                    "pass it with --jar"
                )
            raise SavepointCheckError(f"could not plan this build's job graph:\n{tail}{hint}")
        return Build.from_json(out.read_text())


def _plan(jobs: Sequence[str], parallelism: int, jars: Sequence[str]) -> Build:
    """In the planning process: build the real pipeline (flink_jobs.pipeline.build) from an
    offline plan — no Kafka, no registry: the schemas only travel in the pickled functions,
    which are not opened — and describe the job graph it would submit."""
    from flink_jobs import pipeline
    from flink_jobs.config import JobConfig, Layout, Plan

    cfg = JobConfig(
        jobs=tuple(jobs),
        bootstrap_servers="plan-only:9092",
        registry_url="offline://",
        jars=tuple(jars),
        parallelism=parallelism,
    )
    env, t_env = pipeline.environment(cfg)
    pipeline.build(t_env, Plan(cfg, Layout(), {job: _offline_schemas() for job in jobs}))
    return describe(
        env,
        tipoff_keyed_state(jobs, cfg.tick_ms),
        f"{' + '.join(jobs)}, parallelism {parallelism}",
    )


# --- the comparison ---------------------------------------------------------------------

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
    for sp in sorted(info.operators, key=lambda o: _natural(o.uid or "~" + o.operator_id)):
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
    jvm = _jvm()
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


def _natural(text: str) -> list[Any]:
    """Sort key: 2_calc before 12_sink."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="plan this build's job graph (internal)")
    p.add_argument("--plan", required=True, type=Path, help="write the Build as JSON here")
    p.add_argument("--jobs", required=True)
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--jar", action="append", default=[])
    a = p.parse_args(argv)
    build = _plan(a.jobs.split(","), a.parallelism, a.jar)
    a.plan.write_text(build.to_json())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(_main())
