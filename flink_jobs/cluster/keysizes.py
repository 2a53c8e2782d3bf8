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

The format (Flink's "unified" canonical savepoint format, FLIP-41; the same for the heap
and RocksDB backends; FullSnapshotAsyncWriter writes it, FullSnapshotRestoreOperation reads
it): per subtask one stream, the serialization proxy first, then per key group with data,
from the offset `KeyGroupsStateHandle.getGroupRangeOffsets()` records: a 2-byte state id
(the state's index in the proxy), then (int length, key bytes, int length, value bytes)
pairs; the pair before a change of state or the end of the key group has the top bit of
its first key byte set, and is followed by the next state id or END_OF_KEY_GROUP_MARK
(0xFFFF). A composite key starts with the key group (1 byte up to max parallelism 128, else
2; CompositeKeySerializationUtils), then the key as the key serializer writes it, then the
namespace (VoidNamespace: one 0 byte; a length suffix follows key and namespace only when
both serializers are variable-sized, which a fixed-size VoidNamespace is not). Timers
(HeapKeyValueStateIterator.QueueIterator, TimerSerializer): key group, the timestamp with
its sign bit flipped (8 bytes), key, namespace; empty value.

tipoff keys by a one-field Row(STRING) (RowSerializer over StringSerializer): a mask byte
(2 row-kind bits, then one null bit per field, most significant first), then each non-null
field as StringValue writes it: (length + 1) in 7-bit groups, low first, with the high bit
as continuation, then each char the same way (one byte for ASCII). The decoder here reads
that layout (any number of STRING fields); which mask layout the savepoint's serializer
uses is checked against the serializer itself (a probe row serialized in the JVM). Any
other key type, a non-void namespace, a compressed or native-format snapshot is refused
with a message, not guessed at.

The JVM (PyFlink's gateway, as `savepoints.inspect`) reads the metadata, the proxy and the
key serializer; the entries are parsed in Python.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.cluster.savepoints import (
    TIMERS,
    SavepointCheckError,
    _java_message,
    _keyed_state,
    is_a,
    load_metadata,
    read_proxy,
)

END_OF_KEY_GROUP_MARK = 0xFFFF
META_DATA_FOLLOWS = 0x80  # FullSnapshotUtil.FIRST_BIT_IN_BYTE_MASK, in a key's first byte
HANDLE = "org.apache.flink.runtime.state.KeyGroupsSavepointStateHandle"
ROW_SNAPSHOT = "org.apache.flink.api.java.typeutils.runtime.RowSerializer$RowSerializerSnapshot"
STRING_SNAPSHOT = (
    "org.apache.flink.api.common.typeutils.base.StringSerializer$StringSerializerSnapshot"
)
VOID_NAMESPACE_SNAPSHOT = "VoidNamespaceSerializerSnapshot"
TIMER_SNAPSHOT = "TimerSerializerSnapshot"
UPDATE_AFTER = 2  # RowKind.UPDATE_AFTER.toByteValue(): the probe row's kind
PROBE = "é€x"  # one-, two- and three-byte chars
_INT = struct.Struct(">i")
_SHORT = struct.Struct(">H")
CANONICAL_HINT = (
    "take a canonical savepoint (`tipoff savepoint trigger JOB` or `tipoff savepoint stop "
    "JOB`; the default format) and inspect that"
)


class KeySizeError(SavepointCheckError):
    """The keyed state could not be attributed to keys; the message names the path and why."""


# --- the distribution ---------------------------------------------------------------------


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linear between the two nearest ranks (numpy's
    default): quantile([1, 2, 3, 4], 0.5) == 2.5."""
    if not ordered:
        raise ValueError("quantile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


@dataclass(frozen=True)
class Distribution:
    """Bytes per key over the keys of one operator (0 everywhere when there are none)."""

    count: int
    mean: float
    median: float
    p10: float
    p90: float
    p99: float
    min: int
    max: int

    @classmethod
    def of(cls, values: Iterable[int]) -> Distribution:
        ordered = sorted(values)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
        return cls(
            count=len(ordered),
            mean=sum(ordered) / len(ordered),
            median=quantile(ordered, 0.5),
            p10=quantile(ordered, 0.1),
            p90=quantile(ordered, 0.9),
            p99=quantile(ordered, 0.99),
            min=ordered[0],
            max=ordered[-1],
        )


# --- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class StateSpec:
    """A keyed state as the stream's proxy declares it (index = its state id)."""

    name: str
    kind: str  # VALUE, LIST, MAP, REDUCING, AGGREGATING, TIMERS
    void_namespace: bool = True  # the namespace is VoidNamespace (one 0 byte), checked


@dataclass(frozen=True)
class OperatorKeySizes:
    """One operator's keyed state, attributed to keys (see the module docstring for what
    a key's bytes include)."""

    path: str
    uid: str | None
    states: tuple[StateSpec, ...]
    per_key: Mapping[str, tuple[int, ...]]  # key -> bytes per state, in `states` order
    entries: tuple[int, ...]  # entries per state
    stream_bytes: int  # the keyed state streams' size (the metadata's keyed state size)
    header_bytes: int  # serialization proxies: serializer snapshots, state names
    marker_bytes: int  # state ids and end-of-key-group marks

    @property
    def totals(self) -> dict[str, int]:
        """Bytes per key, all states."""
        return {k: sum(v) for k, v in self.per_key.items()}

    @property
    def entry_bytes(self) -> int:
        """Bytes of all entries: the sum over keys."""
        return sum(self.state_bytes.values())

    @property
    def state_bytes(self) -> dict[str, int]:
        """Bytes per state, over all keys."""
        sums = [0] * len(self.states)
        for per_state in self.per_key.values():
            for i, n in enumerate(per_state):
                sums[i] += n
        return {s.name: n for s, n in zip(self.states, sums, strict=True)}

    def keys_with(self) -> dict[str, int]:
        """How many keys hold an entry of each state."""
        counts = [0] * len(self.states)
        for per_state in self.per_key.values():
            for i, n in enumerate(per_state):
                counts[i] += n > 0
        return {s.name: n for s, n in zip(self.states, counts, strict=True)}

    def shares(self) -> dict[str, float]:
        """Each state's share of the entry bytes (0 without entries)."""
        total = self.entry_bytes
        return {name: (n / total if total else 0.0) for name, n in self.state_bytes.items()}

    def distribution(self) -> Distribution:
        return Distribution.of(self.totals.values())

    def largest(self) -> str | None:
        totals = self.totals
        return max(totals, key=lambda k: (totals[k], k)) if totals else None

    def summary(self, prefix: str) -> dict[str, Any]:
        """The distribution and the state shares as flat JSON fields (`<prefix>_median_bytes`,
        ...), as the bench records them."""
        d = self.distribution()
        return {
            f"{prefix}_keys": d.count,
            f"{prefix}_median_bytes": d.median,
            f"{prefix}_p10_bytes": d.p10,
            f"{prefix}_p90_bytes": d.p90,
            f"{prefix}_p99_bytes": d.p99,
            f"{prefix}_max_bytes": d.max,
            f"{prefix}_mean_bytes": d.mean,
            f"{prefix}_entry_bytes": self.entry_bytes,
            f"{prefix}_state_shares": {k: round(v, 4) for k, v in self.shares().items() if v},
        }

    def render(self, entity: str | None = None) -> list[str]:
        """The distribution and the per-state breakdown, as `inspect --per-key` prints."""
        who = entity or "key"
        d = self.distribution()
        lines = [
            f"{self.uid or '?'}: {d.count:,} {who}s; {self.entry_bytes:,} B of entries + "
            f"{self.header_bytes:,} B header + {self.marker_bytes:,} B markers = "
            f"{self.stream_bytes:,} B keyed state"
        ]
        if not d.count:
            return [*lines, "  no keyed entries"]
        top = self.largest()
        lines.append(
            f"  per {who}: median {d.median:,.0f} B, p10 {d.p10:,.0f} B, p90 {d.p90:,.0f} B, "
            f"p99 {d.p99:,.0f} B, max {d.max:,} B ({top}), mean {d.mean:,.0f} B"
        )
        width = max(len("STATE"), *(len(s.name) for s in self.states))
        head = f"  {'STATE':<{width}}  {'KIND':<6} {'SHARE':>6} {'BYTES':>12} {'ENTRIES':>9}"
        lines.append(f"{head} {who.upper() + 'S':>7}")
        shares, sizes, keys = self.shares(), self.state_bytes, self.keys_with()
        order = sorted(range(len(self.states)), key=lambda i: -sizes[self.states[i].name])
        for i in order:
            s = self.states[i]
            lines.append(
                f"  {s.name:<{width}}  {s.kind:<6} {shares[s.name]:>6.1%} "
                f"{sizes[s.name]:>12,} {self.entries[i]:>9,} {keys[s.name]:>7,}"
            )
        return lines


# --- the key ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowStringKey:
    """A Row of STRING fields as RowSerializer writes it (see the module docstring)."""

    arity: int = 1
    row_kind: bool = True  # the mask starts with 2 row-kind bits (Flink >= 1.11 layout)

    @property
    def mask_bytes(self) -> int:
        return (self.arity + (2 if self.row_kind else 0) + 7) // 8

    def _nulls(self, data: bytes, pos: int) -> list[bool]:
        offset = 2 if self.row_kind else 0
        bits = []
        for i in range(offset, offset + self.arity):
            bits.append(bool(data[pos + i // 8] & (0x80 >> (i % 8))))
        return bits

    def end(self, data: bytes, pos: int) -> int:
        """Where the key starting at `pos` ends."""
        if self.arity == 1 and self.mask_bytes == 1 and not data[pos] & self._null_bit:
            n = data[pos + 1] - 1  # (length + 1) in one byte: up to 126 chars
            start = pos + 2
            if 0 <= n < 127 and data[start : start + n].isascii():
                return start + n
        return self.decode(data, pos)[1]

    @property
    def _null_bit(self) -> int:
        return 0x80 >> (2 if self.row_kind else 0)

    def decode(self, data: bytes, pos: int) -> tuple[tuple[str | None, ...], int]:
        """(fields, end) of the key starting at `pos`; IndexError past the data."""
        nulls = self._nulls(data, pos)
        p = pos + self.mask_bytes
        fields: list[str | None] = []
        for null in nulls:
            if null:
                fields.append(None)
                continue
            length, p = _varint(data, p)
            if length == 0:  # StringValue's null, which a Row never writes
                fields.append(None)
                continue
            chars = []
            for _ in range(length - 1):
                c, p = _varint(data, p)
                chars.append(chr(c))
            fields.append("".join(chars))
        return tuple(fields), p

    def row_kind_of(self, data: bytes, pos: int) -> int | None:
        if not self.row_kind:
            return None
        return (data[pos] >> 7 & 1) | (data[pos] >> 5 & 2)

    def text(self, raw: bytes) -> str:
        """The key as text: the field for a one-field row, else the fields in brackets."""
        fields, _ = self.decode(raw, 0)
        if self.arity == 1:
            return "null" if fields[0] is None else fields[0]
        return "(" + ", ".join("null" if f is None else f for f in fields) + ")"


def _varint(data: bytes, p: int) -> tuple[int, int]:
    """StringValue's 7-bit groups, low first, high bit = more."""
    b = data[p]
    p += 1
    value = b & 0x7F
    shift = 7
    while b >= 0x80:
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        shift += 7
    return value, p


# --- the stream ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Entries attributed so far (over one or more streams of an operator)."""

    states: tuple[StateSpec, ...]
    per_key: dict[bytes, list[int]] = field(default_factory=dict)  # raw key -> per state
    entries: list[int] = field(default_factory=list)
    header_bytes: int = 0
    marker_bytes: int = 0
    stream_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.entries:
            self.entries = [0] * len(self.states)


def parse_stream(
    data: bytes,
    offsets: Mapping[int, int],
    tally: Tally,
    key: RowStringKey,
    prefix_bytes: int = 1,
    where: str = "stream",
) -> None:
    """Attribute every entry of one keyed state stream to its key, into `tally`.

    `offsets`: key group -> where its entries start (0: no entries), as the handle's
    KeyGroupRangeOffsets. Checks that the key groups tile the stream after the header, that
    every entry's key group is the one it is stored under, and that each composite key ends
    with its namespace; raises KeySizeError (naming `where`) otherwise."""
    starts = sorted((off, kg) for kg, off in offsets.items() if off)
    header = starts[0][0] if starts else len(data)
    tally.header_bytes += header
    tally.stream_bytes += len(data)
    n_states = len(tally.states)
    timers = [s.kind == TIMERS for s in tally.states]
    maps = [s.kind == "MAP" for s in tally.states]
    void = [s.void_namespace for s in tally.states]
    per_key, entries = tally.per_key, tally.entries
    unpack_int, unpack_short = _INT.unpack_from, _SHORT.unpack_from
    end_of = key.end

    def bad(what: str, kg: int, at: int) -> KeySizeError:
        return KeySizeError(f"{where}: key group {kg} at byte {at}: {what}")

    for i, (start, kg) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(data)
        pos = start
        try:
            (sid,) = unpack_short(data, pos)
            pos += 2
            tally.marker_bytes += 2
            while True:
                if sid >= n_states:
                    raise bad(f"state id {sid}, but the header declares {n_states}", kg, pos)
                (klen,) = unpack_int(data, pos)
                ks = pos + 4
                pos = ks + klen
                (vlen,) = unpack_int(data, pos)
                pos += 4 + vlen
                if klen <= prefix_bytes or vlen < 0 or pos > stop:
                    raise bad(f"an entry of {klen} + {vlen} B overruns the key group", kg, ks)
                first = data[ks]
                group = first & 0x7F
                if prefix_bytes == 2:
                    group = group << 8 | data[ks + 1]
                if group != kg:
                    raise bad(f"an entry of key group {group}", kg, ks)
                p = ks + prefix_bytes + (8 if timers[sid] else 0)
                k_end = end_of(data, p)
                kv_end = ks + klen
                if void[sid] and not (
                    k_end < kv_end and data[k_end] == 0 and (maps[sid] or k_end + 1 == kv_end)
                ):
                    raise bad(
                        f"{tally.states[sid].name}: the key does not end in a void namespace",
                        kg,
                        ks,
                    )
                raw = data[p:k_end]
                counts = per_key.get(raw)
                if counts is None:
                    counts = per_key[raw] = [0] * n_states
                counts[sid] += 8 + klen + vlen
                entries[sid] += 1
                if first & META_DATA_FOLLOWS:
                    (sid,) = unpack_short(data, pos)
                    pos += 2
                    tally.marker_bytes += 2
                    if sid == END_OF_KEY_GROUP_MARK:
                        break
        except (struct.error, IndexError) as e:
            raise bad(f"truncated entry ({e})", kg, pos) from e
        if pos != stop:
            raise bad(f"the key group ends at byte {pos}, the next starts at {stop}", kg, start)


# --- reading a savepoint through the JVM -------------------------------------------------


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
            raise KeySizeError(f"{where}: cannot read its keyed state: {_java_message(e)}") from e
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
    state = _keyed_state(meta)
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
