"""`tipoff simulate`'s report: what was sent (per topic, schema version, league; late,
duplicate and corrected records), live mode's achieved rate against the scheduled one, the
progress line, and SimulateError."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from flink_jobs.sim import Emission

# Live mode warns when the achieved send rate is below the scheduled one by more than this.
BEHIND_TOLERANCE = 0.03


class SimulateError(RuntimeError):
    pass


@dataclass
class SendReport:
    per_topic: Counter[str] = field(default_factory=Counter)
    per_version: Counter[int] = field(default_factory=Counter)  # records per schema version
    late: int = 0
    duplicates: int = 0
    corrections: int = 0
    games: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    leagues: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    processes: int = 1
    # Live mode only: the asked rate (original events/s), the timeline's length, the
    # records scheduled inside it that were sent, when the last of them went out (seconds
    # after the timeline's start) and the largest delay of a send behind its schedule.
    target_rate: float = 0.0
    timeline_s: float = 0.0
    window_sent: int = 0
    window_wall_s: float = 0.0
    max_lag_ms: int = 0

    @property
    def sent(self) -> int:
        return sum(self.per_topic.values())

    @property
    def scheduled_rate(self) -> float:
        """Records/s the schedule asked for the records sent inside the timeline."""
        return self.window_sent / self.timeline_s if self.timeline_s > 0 else 0.0

    @property
    def achieved_rate(self) -> float:
        """Records/s actually sent: the timeline's records over the wall time they took
        (from the timeline's start to the last one's send), catch-up included."""
        wall = max(self.window_wall_s, self.timeline_s)
        return self.window_sent / wall if wall > 0 else 0.0

    @property
    def behind(self) -> bool:
        """Live: the sender fell behind the schedule by more than BEHIND_TOLERANCE."""
        return self.target_rate > 0 and self.achieved_rate < self.scheduled_rate * (
            1 - BEHIND_TOLERANCE
        )

    def merge(self, other: SendReport) -> None:
        """Add another process's report of a disjoint share (games and users are disjoint:
        each is keyed, and a key's partition belongs to one process)."""
        self.per_topic.update(other.per_topic)
        self.per_version.update(other.per_version)
        self.late += other.late
        self.duplicates += other.duplicates
        self.corrections += other.corrections
        self.games |= other.games
        self.users |= other.users
        self.leagues.update(other.leagues)
        self.failed += other.failed
        self.interrupted |= other.interrupted
        self.window_sent += other.window_sent
        self.window_wall_s = max(self.window_wall_s, other.window_wall_s)
        self.max_lag_ms = max(self.max_lag_ms, other.max_lag_ms)

    def lines(self) -> list[str]:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        procs = f" by {self.processes} processes" if self.processes > 1 else ""
        out = [
            f"{'interrupted: ' if self.interrupted else ''}sent {self.sent} records "
            f"in {self.seconds:.1f}s ({rate:,.0f}/s){procs}"
        ]
        if self.target_rate > 0:
            ratio = self.achieved_rate / self.scheduled_rate if self.scheduled_rate else 0.0
            out.append(
                f"  live: achieved {self.achieved_rate:.1f}/s of {self.scheduled_rate:.1f}/s "
                f"scheduled ({ratio:.1%}; --rate {self.target_rate:g} events/s): "
                f"{self.window_sent} records of the {self.timeline_s:g}s timeline, the last "
                f"sent {self.window_wall_s:.1f}s after its start; max send lag "
                f"{self.max_lag_ms / 1000:.2f}s"
            )
        out += [f"  {topic:<28} {n}" for topic, n in sorted(self.per_topic.items())]
        if self.per_version:
            versions_sent = ", ".join(f"v{v} {n}" for v, n in sorted(self.per_version.items()))
            out.append(f"  schema versions: {versions_sent}")
        leagues = ", ".join(f"{k} {v}" for k, v in sorted(self.leagues.items()))
        out.append(f"  games {len(self.games)} ({leagues}), users {len(self.users)}")
        out.append(
            f"  late {self.late}, duplicates {self.duplicates}, corrections {self.corrections}"
        )
        if self.failed:
            out.append(f"  FAILED deliveries {len(self.failed)}: first: {self.failed[0]}")
        return out

    def warning(self) -> str | None:
        """Live mode: a clear warning when the sender could not keep the asked rate."""
        if not self.behind:
            return None
        return (
            f"WARNING: the simulator fell behind: it sent {self.achieved_rate:,.0f} records/s "
            f"against {self.scheduled_rate:,.0f}/s scheduled "
            f"({1 - self.achieved_rate / self.scheduled_rate:.0%} short; max send lag "
            f"{self.max_lag_ms / 1000:.1f}s), so event times ran ahead of the sends. Use more "
            f"--processes (this run: {self.processes}) or a lower --rate."
        )


def count_sent(r: SendReport, em: Emission, topic: str, version: int) -> None:
    r.per_topic[topic] += 1
    r.per_version[version] += 1
    r.late += em.late
    r.duplicates += em.duplicate
    if em.kind == "game":
        if em.record["game_id"] not in r.games:
            r.leagues[em.record["league"]] += 1
        r.games.add(em.record["game_id"])
        r.corrections += int(em.record["revision"] > 0 and not em.duplicate)
    else:
        r.users.add(em.key)


def print_progress(sent: int, r: SendReport | None, total: int, elapsed: float) -> None:
    line = f"simulate: {sent:,}/{total:,} sent ({sent / max(elapsed, 1e-9):,.0f}/s)"
    if r is not None:
        line += (
            f", games {len(r.games)}, users {len(r.users)}, late {r.late}, "
            f"duplicates {r.duplicates}"
        )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
