"""`tipoff savepoint inspect PATH [--users N] [--games N] [--per-key]`: state size per
operator, and keyed state per user and per game.

The sizes are what Flink records in the savepoint's `_metadata` for each state handle
(read with `savepoints.inspect`): serialized bytes, not heap or RocksDB occupancy. Keyed
state bytes of a `features` operator divided by the entities it keys is the state per
active user (or game): a mean. `--per-key` reads the keyed state itself and gives the
distribution over keys (median, p10, p90, p99, max) and each state's share
(flink_jobs/cluster/keysizes.py); the measured numbers are in docs/operations.md ("State
size").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from flink_jobs.cluster.savepoints import SavepointInfo, SavepointOperator
from flink_jobs.pipeline import uid
from udfs import jobs

# The keyed operator of each job and what it keys by.
ENTITIES = {uid(j.name, "features"): j.family for j in jobs.JOBS}


@dataclass(frozen=True)
class OperatorSize:
    label: str  # uid, else name, else id
    keyed_bytes: int
    operator_bytes: int
    coordinator_bytes: int
    parallelism: str = ""  # "<parallelism>/<max parallelism>": the key groups are fixed
    entity: str | None = None  # "user" / "game" for the features operators
    entities: int | None = None  # how many the caller says are active

    @property
    def total(self) -> int:
        return self.keyed_bytes + self.operator_bytes + self.coordinator_bytes

    @property
    def keyed_per_entity(self) -> float | None:
        """Keyed state bytes per active entity (None without a count)."""
        if self.entity is None or not self.entities:
            return None
        return self.keyed_bytes / self.entities


@dataclass(frozen=True)
class StateSize:
    path: str
    kind: str
    operators: tuple[OperatorSize, ...]  # those with state, largest first

    @property
    def total(self) -> int:
        return sum(op.total for op in self.operators)

    def render(self) -> list[str]:
        width = max([len("OPERATOR"), *(len(op.label) for op in self.operators)])
        lines = [
            f"{self.path}: {self.kind}, {len(self.operators)} operator(s) with state, "
            f"{human(self.total)} ({self.total:,} B)",
            _row(width, "OPERATOR", "PAR.", "KEYED", "OPERATOR", "COORD.", "PER ENTITY"),
        ]
        for op in self.operators:
            per = op.keyed_per_entity
            each = "" if per is None else f"{per:,.0f} B per {op.entity} ({op.entities:,})"
            sizes = (human(op.keyed_bytes), human(op.operator_bytes), human(op.coordinator_bytes))
            lines.append(_row(width, op.label, op.parallelism, *sizes, each))
        return lines


def _row(width: int, label: str, par: str, keyed: str, oper: str, coord: str, each: str) -> str:
    return f"{label:<{width}}  {par:>7}  {keyed:>9}  {oper:>9}  {coord:>9}  {each}".rstrip()


def measure(info: SavepointInfo, users: int | None = None, games: int | None = None) -> StateSize:
    """Per-operator state sizes of a savepoint; the features operators' keyed state is
    divided by `users` / `games` when given."""
    counts = {"user": users, "game": games}
    sizes = []
    for op in info.with_state():
        entity = ENTITIES.get(op.uid or "")
        sizes.append(
            OperatorSize(
                label=_label(op),
                keyed_bytes=op.keyed_bytes,
                operator_bytes=op.operator_bytes,
                coordinator_bytes=op.coordinator_bytes,
                parallelism=f"{op.parallelism}/{op.max_parallelism}",
                entity=entity,
                entities=counts[entity] if entity else None,
            )
        )
    sizes.sort(key=lambda s: (-s.total, s.label))
    return StateSize(info.path, info.kind, tuple(sizes))


def _label(op: SavepointOperator) -> str:
    return op.uid or op.name or op.operator_id


def human(n: float) -> str:
    if n == 0:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def inspect_cmd(a: argparse.Namespace) -> int:
    """The `tipoff savepoint inspect` handler: exit 0, or 2 for an unreadable savepoint (or,
    with --per-key, keyed state that cannot be attributed to keys)."""
    from flink_jobs.cluster import keysizes, savepoints
    from flink_jobs.cluster.keystats import OperatorKeySizes

    for flag, n in (("--users", a.users), ("--games", a.games)):
        if n is not None and n <= 0:
            print(f"tipoff: error: {flag} must be positive, got {n}", file=sys.stderr)
            return 2
    try:
        info = savepoints.inspect(a.path)
    except savepoints.SavepointCheckError as e:
        print(f"tipoff: error: {e}", file=sys.stderr)
        return 2
    per_key: dict[str, OperatorKeySizes] = {}
    if getattr(a, "per_key", False):
        uids = [op.uid for op in info.with_state() if op.uid and op.uid in ENTITIES]
        if not uids:
            print(
                f"tipoff: error: {a.path} holds no keyed state of a features operator "
                f"({', '.join(ENTITIES)}): nothing to measure per key",
                file=sys.stderr,
            )
            return 2
        try:
            per_key = keysizes.measure_keys(a.path, uids)
        except savepoints.SavepointCheckError as e:
            print(f"tipoff: error: {e}", file=sys.stderr)
            return 2
    for line in measure(info, a.users, a.games).render():
        print(line)
    for op_uid, sizes in per_key.items():
        print()
        for line in sizes.render(ENTITIES[op_uid]):
            print(line)
    return 0
