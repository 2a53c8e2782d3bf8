"""Keyed state per key: what each user (or game) costs in a canonical savepoint.

`tipoff savepoint inspect PATH --per-key` and the bench read a `features` operator's keyed
state stream entry by entry, attribute every entry to its key, and give the distribution
over keys (median, p10, p90, p99, max, mean) and each state's share. product.md's target is
the *median* keyed state per active user on the heap backend; the metadata alone gives only
the total (so a mean).

What one key's number is
------------------------
The sum, over every entry of that key in the savepoint's keyed state stream, of the bytes
the entry takes there: its two 4-byte length prefixes, the composite key (key-group prefix,
the serialized key, the namespace, and for MapState the user key; for a timer the
timestamp, key and namespace) and the value (ValueState's serialized value, ListState's
elements with their delimiters, a MapState entry's null flag and value; nothing for a
timer). So ValueState, ListState, every MapState entry and every timer (processing- and
event-time: priority queues named `_timer_state/...`) count, each as many bytes as it
adds to the savepoint. Not attributed to any key: the stream's header (the
KeyedBackendSerializationProxy: key and state serializer snapshots, state names) and the
2-byte state-id / end-of-key-group markers between runs of entries; the per-key sums plus
those two are exactly the stream's size (checked on every read). Raw keyed state (tipoff
has none) is not read. These are serialized bytes, not heap occupancy.

The JVM (PyFlink's gateway, as `savepoints.inspect`) reads the metadata, the proxy and the
key serializer here; the entries are parsed in Python (flink_jobs.cluster.keystream, which
also describes the stream format and the key layout) and summed up per key
(flink_jobs.cluster.keystats).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flink_jobs.cluster.keystats import OperatorKeySizes
from flink_jobs.cluster.keystream import (
    KeySizeError,
    RowStringKey,
    StateSpec,
    Tally,
    parse_stream,
)
from flink_jobs.cluster.savepoints import (
    TIMERS,
    is_a,
    java_message,
    keyed_state_of,
    load_metadata,
    read_proxy,
)

HANDLE = "org.apache.flink.runtime.state.KeyGroupsSavepointStateHandle"
ROW_SNAPSHOT = "org.apache.flink.api.java.typeutils.runtime.RowSerializer$RowSerializerSnapshot"
STRING_SNAPSHOT = (
    "org.apache.flink.api.common.typeutils.base.StringSerializer$StringSerializerSnapshot"
)
VOID_NAMESPACE_SNAPSHOT = "VoidNamespaceSerializerSnapshot"
TIMER_SNAPSHOT = "TimerSerializerSnapshot"
UPDATE_AFTER = 2  # RowKind.UPDATE_AFTER.toByteValue(): the probe row's kind
PROBE = "é€x"  # one-, two- and three-byte chars
CANONICAL_HINT = (
    "take a canonical savepoint (`tipoff savepoint trigger JOB` or `tipoff savepoint stop "
    "JOB`; the default format) and inspect that"
)


def measure_keys(path: str | Path, uids: Sequence[str]) -> dict[str, OperatorKeySizes]:
    """The keyed state of each operator of `uids` the savepoint holds, attributed to keys
    (operators it does not hold are left out). The savepoint must be canonical,
    uncompressed and keyed by a Row of STRINGs; KeySizeError (or SavepointCheckError for
    an unreadable savepoint) says what else it is and what to do."""
    from py4j.protocol import Py4JJavaError

    loaded = load_metadata(path)
    if not loaded.is_savepoint:
        raise KeySizeError(
            f"{path} is a {loaded.kind.lower()}, not a savepoint: per-key sizes read the "
            f"canonical savepoint format only; {CANONICAL_HINT}"
        )
    if loaded.format_type != "CANONICAL":
        raise KeySizeError(
            f"{path} is a {loaded.kind}: per-key sizes read the canonical format only, not "
            f"a backend's native files; {CANONICAL_HINT}"
        )
    wanted = set(uids)
    out: dict[str, OperatorKeySizes] = {}
    for op in loaded.metadata.getOperatorStates().toArray():
        uid_opt = op.getOperatorUid()
        op_uid = str(uid_opt.get()) if uid_opt.isPresent() else None
        if op_uid not in wanted:
            continue
        where = f"{path}: operator {op_uid}"
        try:
            out[op_uid] = _operator(loaded.jvm, loaded.loader, op, str(path), op_uid, where)
        except Py4JJavaError as e:
            raise KeySizeError(f"{where}: cannot read its keyed state: {java_message(e)}") from e
    return out


def _operator(
    jvm: Any, loader: Any, op: Any, path: str, op_uid: str, where: str
) -> OperatorKeySizes:
    prefix_bytes = 1 if int(op.getMaxParallelism()) <= 128 else 2
    tally: Tally | None = None
    key: RowStringKey | None = None
    for sub in op.getStates().toArray():
        for handle in sub.getManagedKeyedState().toArray():
            if not is_a(loader, handle, HANDLE):
                raise KeySizeError(
                    f"{where}: keyed state in a {handle.getClass().getSimpleName()}, not the "
                    f"canonical savepoint format; {CANONICAL_HINT}"
                )
            proxy, header = read_proxy(jvm, loader, handle)
            if proxy.isUsingKeyGroupCompression():
                raise KeySizeError(
                    f"{where}: the savepoint is compressed (execution.checkpointing."
                    "snapshot-compression: true); per-key sizes read uncompressed snapshots "
                    "only: take one with snapshot compression off"
                )
            states = tuple(_spec(m, where) for m in proxy.getStateMetaInfoSnapshots())
            if tally is None:
                tally = Tally(states)
                key = _key_layout(jvm, proxy.getKeySerializerSnapshot(), where)
            elif states != tally.states:
                raise KeySizeError(f"{where}: subtasks declare different keyed states")
            try:
                data = _read_bytes(jvm, loader, handle)
            except OSError as e:
                raise KeySizeError(f"{where}: cannot read its keyed state: {e}") from e
            if len(data) != int(handle.getStateSize()):
                raise KeySizeError(
                    f"{where}: read {len(data):,} B of keyed state, the metadata says "
                    f"{int(handle.getStateSize()):,} B"
                )
            kgs = handle.getKeyGroupRange()
            offsets = handle.getGroupRangeOffsets()
            first, last = int(kgs.getStartKeyGroup()), int(kgs.getEndKeyGroup())
            by_group = {kg: int(offsets.getKeyGroupOffset(kg)) for kg in range(first, last + 1)}
            assert key is not None
            before = tally.header_bytes
            parse_stream(data, by_group, tally, key, prefix_bytes, where)
            if any(by_group.values()) and tally.header_bytes - before != header:
                raise KeySizeError(
                    f"{where}: the first key group starts at byte "
                    f"{tally.header_bytes - before}, the header ends at {header}: unknown layout"
                )
    if tally is None or key is None:
        return OperatorKeySizes(path, op_uid, (), {}, (), 0, 0, 0)
    return OperatorKeySizes(
        path=path,
        uid=op_uid,
        states=tally.states,
        per_key={key.text(raw): tuple(v) for raw, v in tally.per_key.items()},
        entries=tuple(tally.entries),
        stream_bytes=tally.stream_bytes,
        header_bytes=tally.header_bytes,
        marker_bytes=tally.marker_bytes,
    )


def _spec(meta: Any, where: str) -> StateSpec:
    state = keyed_state_of(meta)
    snapshots = dict(meta.getSerializerSnapshotsImmutable())
    if state.kind == TIMERS:
        element = snapshots.get("VALUE_SERIALIZER")
        name = str(element.getClass().getSimpleName()) if element is not None else "?"
        if element is None or name != TIMER_SNAPSHOT:
            raise KeySizeError(
                f"{where}: priority queue {state.name} holds {name} elements, not timers: "
                "unknown layout"
            )
        nested = [str(s.getClass().getSimpleName()) for s in element.getNestedSerializerSnapshots()]
        return StateSpec(state.name, state.kind, nested[-1:] == [VOID_NAMESPACE_SNAPSHOT])
    namespace = snapshots.get("NAMESPACE_SERIALIZER")
    ns_name = str(namespace.getClass().getSimpleName()) if namespace is not None else ""
    return StateSpec(state.name, state.kind, ns_name == VOID_NAMESPACE_SNAPSHOT)


def _key_layout(jvm: Any, snapshot: Any, where: str) -> RowStringKey:
    """The key decoder for the savepoint's key serializer, checked against it: a probe row
    the JVM serializes must decode to what was put in."""
    cls = str(snapshot.getClass().getName())
    nested = (
        [str(s.getClass().getName()) for s in snapshot.getNestedSerializerSnapshots()]
        if cls == ROW_SNAPSHOT
        else []
    )
    if not nested or any(n != STRING_SNAPSHOT for n in nested):
        what = cls.rsplit(".", 1)[-1] + (f" of {', '.join(nested)}" if nested else "")
        raise KeySizeError(
            f"{where}: keyed by {what}; per-key sizes decode tipoff's Row(STRING) keys only"
        )
    arity = len(nested)
    types = jvm.org.apache.flink.types
    row = types.Row.withPositions(types.RowKind.UPDATE_AFTER, arity)
    for i in range(arity):
        row.setField(i, PROBE)
    out = jvm.org.apache.flink.core.memory.DataOutputSerializer(64)
    snapshot.restoreSerializer().serialize(row, out)
    probe = bytes(out.getCopyOfBuffer())
    for row_kind in (True, False):
        layout = RowStringKey(arity, row_kind)
        try:
            fields, end = layout.decode(probe, 0)
        except IndexError:
            continue
        kind_ok = layout.row_kind_of(probe, 0) in (UPDATE_AFTER, None)
        if fields == (PROBE,) * arity and end == len(probe) and kind_ok:
            return layout
    raise KeySizeError(
        f"{where}: the key serializer writes a Row as {probe.hex()}, which this reader does "
        "not decode: unknown layout"
    )


def _read_bytes(jvm: Any, loader: Any, handle: Any) -> bytes:
    """A keyed state stream's bytes: a local file read directly, inline bytes from the
    metadata, anything else streamed through the JVM."""
    delegate = handle.getDelegateStateHandle()
    if is_a(loader, delegate, "org.apache.flink.runtime.state.memory.ByteStreamStateHandle"):
        return bytes(delegate.getData())
    if is_a(loader, delegate, "org.apache.flink.runtime.state.filesystem.FileStateHandle"):
        uri = delegate.getFilePath().toUri()
        if uri.getScheme() in (None, "file"):
            return Path(str(uri.getPath())).read_bytes()
    chunks = []
    stream = handle.openInputStream()
    try:
        while chunk := bytes(stream.readNBytes(1 << 22)):
            chunks.append(chunk)
    finally:
        stream.close()
    return b"".join(chunks)
