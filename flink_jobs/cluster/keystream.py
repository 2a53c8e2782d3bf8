"""The canonical savepoint's keyed state stream, parsed in Python: every entry to its key.

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
uses is checked against the serializer itself (a probe row serialized in the JVM, in
flink_jobs.cluster.keysizes). Any other key type, a non-void namespace, a compressed or
native-format snapshot is refused with a message, not guessed at.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from flink_jobs.cluster.savepoints import TIMERS, SavepointCheckError

END_OF_KEY_GROUP_MARK = 0xFFFF
META_DATA_FOLLOWS = 0x80  # FullSnapshotUtil.FIRST_BIT_IN_BYTE_MASK, in a key's first byte
_INT = struct.Struct(">i")
_SHORT = struct.Struct(">H")


class KeySizeError(SavepointCheckError):
    """The keyed state could not be attributed to keys; the message names the path and why."""


@dataclass(frozen=True)
class StateSpec:
    """A keyed state as the stream's proxy declares it (index = its state id)."""

    name: str
    kind: str  # VALUE, LIST, MAP, REDUCING, AGGREGATING, TIMERS
    void_namespace: bool = True  # the namespace is VoidNamespace (one 0 byte), checked


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
