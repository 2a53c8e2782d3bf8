"""Per-key statistics and their report: the distribution of keyed state bytes over keys.

`OperatorKeySizes` is one operator's keyed state attributed to keys (what
flink_jobs.cluster.keysizes.measure_keys returns); it gives the distribution over keys
(median, p10, p90, p99, max, mean), each state's share, the JSON fields the bench records
and the table `tipoff savepoint inspect --per-key` prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flink_jobs.cluster.keystream import StateSpec

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
class OperatorKeySizes:
    """One operator's keyed state, attributed to keys (see flink_jobs/cluster/keysizes.py
    for what a key's bytes include)."""

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
