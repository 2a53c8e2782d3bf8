"""What a savepoint (or retained checkpoint) holds, read from its `_metadata`.

`tipoff savepoint check PATH` asks whether this build can restore a savepoint. Flink restores
state by operator id: the murmur3_128 hash of an operator's uid (explicit `.uid()`, or the
planner's `<node>_<kind>` uids under `table.exec.uid.generation=ALWAYS`). A savepoint
operator holding state that no operator of the new job graph claims makes the restore fail
(or, with non-restored state allowed, its state is dropped).

Three steps, each usable alone, each in its own module:

- `inspect(path)` (here): what the savepoint holds, read from its `_metadata` through
  Flink's own classes (via PyFlink's JVM gateway): per operator its id, uid and name (Flink
  2.x writes them), parallelism, max parallelism, state sizes, keyed state names and kinds
  (from the KeyedBackendSerializationProxy at the start of each keyed state stream:
  canonical savepoints of either backend, hashmap checkpoints, RocksDB native savepoints and
  incremental checkpoints via their meta data handle) and operator state names.
- `expected_operators(...)` (flink_jobs.cluster.buildplan): the job graph this build
  submits, planned offline in a fresh process.
- `compare(info, build)` / `check(path, ...)` (flink_jobs.cluster.restorecheck): OK / NEW /
  NOTE / WARN / FAIL lines.

Also the JVM helpers the other two (and flink_jobs.cluster.keysizes) share: the gateway,
reading a keyed state stream's serialization proxy, serializer snapshots as bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.output import fmt_bytes

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
                parts.append(f"keyed state {fmt_bytes(self.keyed_bytes)} (names unread)")
            else:
                names = ", ".join(
                    f"{s.name} {s.kind}" for s in self.keyed_states if s.kind != TIMERS
                )
                timers = any(s.kind == TIMERS for s in self.keyed_states)
                parts.append(
                    f"keyed state {fmt_bytes(self.keyed_bytes)}: {names or '-'}"
                    + (" + timers" if timers else "")
                )
        if self.operator_states or self.operator_bytes:
            parts.append(
                f"operator state {fmt_bytes(self.operator_bytes)}: "
                + (", ".join(self.operator_states) or "raw")
            )
        if self.coordinator_bytes:
            parts.append(f"coordinator state {fmt_bytes(self.coordinator_bytes)}")
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
            f"({fmt_bytes(sum(op.state_bytes for op in stateful))})"
        ]
        order = sorted(
            self.operators,
            key=lambda o: (not o.has_state, natural_key(o.uid or "~" + (o.name or ""))),
        )
        for op in order:
            lines.append(
                f"  {op.label}: parallelism {op.parallelism}/{op.max_parallelism}, "
                + op.describe_state()
                + (f" ({op.keyed_note})" if op.keyed_note else "")
            )
        return lines


def gateway_jvm() -> Any:
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

    jvm = gateway_jvm()
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
        raise SavepointCheckError(f"cannot read savepoint {path}: {java_message(e)}") from e
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
                notes.append(f"keyed state names unreadable: {java_message(e)}")
                continue
            if key_serializer is None:
                key_serializer = snapshot_bytes(jvm, proxy.getKeySerializerSnapshot())
            for meta_info in proxy.getStateMetaInfoSnapshots():
                state = keyed_state_of(meta_info)
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


def keyed_state_of(meta: Any) -> KeyedState:
    name = str(meta.getName())
    backend_type = str(meta.getBackendStateType().name())
    options = dict(meta.getOptionsImmutable())
    kind = TIMERS if backend_type == "PRIORITY_QUEUE" else str(options.get("KEYED_STATE_TYPE", "?"))
    snapshots = dict(meta.getSerializerSnapshotsImmutable())
    value = snapshots.get("VALUE_SERIALIZER")
    serializer = str(value.getClass().getSimpleName()) if value is not None else ""
    return KeyedState(name, kind, serializer)


def snapshot_bytes(jvm: Any, snapshot: Any) -> bytes:
    out = jvm.java.io.ByteArrayOutputStream()
    jvm.org.apache.flink.api.common.typeutils.TypeSerializerSnapshot.writeVersionedSnapshot(
        jvm.org.apache.flink.core.memory.DataOutputViewStreamWrapper(out), snapshot
    )
    return bytes(out.toByteArray())


def java_message(e: Any) -> str:
    try:
        j = e.java_exception
        while j.getCause() is not None and j.getMessage() is None:
            j = j.getCause()
        return f"{j.getClass().getSimpleName()}: {j.getMessage()}"
    except Exception:
        return str(e).splitlines()[0]


def natural_key(text: str) -> list[Any]:
    """Sort key: 2_calc before 12_sink."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
