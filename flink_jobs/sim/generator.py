"""Public API of the simulator: configuration, the merged original stream and disorder.

Everything is a pure function of `SimConfig`: no clock, no environment, no global random
state. Placing the timeline relative to the wall clock is the caller's job (`start_ms`).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flink_jobs.sim.games import build_feed, score_line
from flink_jobs.sim.interactions import InteractionStream
from flink_jobs.sim.profile import GameActivity, Profile
from flink_jobs.sim.schedule import GameInfo, GamePlan, build_schedule
from flink_jobs.sim.users import Population
from flink_jobs.sim.versions import CURRENT_VERSION, interaction_version

Record = dict[str, Any]
# A resent copy follows its first copy within this many milliseconds.
DUPLICATE_GAP_MS = (1, 10_000)
MIN_DURATION_MS = 10_000


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated run; equal configs give equal emissions."""

    seed: int = 42
    start_ms: int = 0
    duration_ms: int = 600_000
    total_events: int = 10_000
    games: int = 12
    users: int = 2_000
    out_of_order_ms: int = 1_500
    late_share: float = 0.002
    late_delay_ms: tuple[int, int] = (30_000, 120_000)
    duplicate_share: float = 0.005
    correction_share: float = 0.03

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError("start_ms must not be negative")
        if self.duration_ms < MIN_DURATION_MS:
            raise ValueError(f"duration_ms must be at least {MIN_DURATION_MS}")
        if self.total_events < 1 or self.games < 1 or self.users < 1:
            raise ValueError("total_events, games and users must be positive")
        if self.out_of_order_ms < 0:
            raise ValueError("out_of_order_ms must not be negative")
        low, high = self.late_delay_ms
        if not 0 <= low <= high:
            raise ValueError("late_delay_ms must be a non-negative (low, high) range")
        _check_share("late_share", self.late_share)
        _check_share("duplicate_share", self.duplicate_share)
        _check_share("correction_share", self.correction_share)


@dataclass(frozen=True)
class Emission:
    """One record to send: emissions come out sorted by emit_ms (ties in generation order)."""

    emit_ms: int
    kind: str  # "game" or "interaction"
    key: str  # game_id for game events, user_id for interactions
    record: Record
    late: bool
    duplicate: bool
    # The schema version the record's producer writes (flink_jobs/sim/versions.py): 1 from an
    # app not yet upgraded or for a game whose feed provider has not upgraded. The record
    # holds every current field regardless; the sender decides what to serialize with.
    writer_version: int = CURRENT_VERSION


@dataclass
class SimSummary:
    """Counts of one iteration; complete once the iterator is exhausted.

    game_events includes corrections; late counts original events sent late (their
    duplicate copies are not counted again); users counts users with >= 1 interaction.
    """

    game_events: int = 0
    interactions: int = 0
    duplicates: int = 0
    late: int = 0
    corrections: int = 0
    games: int = 0
    users: int = 0
    leagues: dict[str, int] = field(default_factory=dict)


class Simulation:
    """A deterministic stream of game events and user interactions with realistic disorder."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self._plans: list[GamePlan] = build_schedule(
            cfg.seed, cfg.start_ms, cfg.duration_ms, cfg.total_events, cfg.games
        )
        # Feeds are built once here only to count them and to learn when scores were close;
        # they are rebuilt lazily while streaming so memory stays bounded.
        activities: list[GameActivity] = []
        game_events = 0
        for plan in self._plans:
            feed = build_feed(plan, cfg.seed, cfg.correction_share)
            game_events += len(feed)
            times, diffs = score_line(feed)
            margin = plan.spec.close_margin
            activities.append(GameActivity(plan.info, plan.popularity, margin, times, diffs))
        if game_events > cfg.total_events:
            raise ValueError(
                f"total_events={cfg.total_events} is below the {game_events} events "
                "of the smallest possible schedule"
            )
        self._population = Population(cfg.users, cfg.seed)
        profile = Profile(
            activities, cfg.start_ms, cfg.duration_ms, cfg.total_events - game_events, cfg.seed
        )
        self._interactions = InteractionStream(self._population, profile, cfg.seed)
        self._summary = self._fresh_summary()

    def _fresh_summary(self) -> SimSummary:
        leagues: dict[str, int] = {}
        for plan in self._plans:
            leagues[plan.info.league] = leagues.get(plan.info.league, 0) + 1
        return SimSummary(games=len(self._plans), leagues=leagues)

    @property
    def summary(self) -> SimSummary:
        return self._summary

    @property
    def schedule(self) -> list[GameInfo]:
        return [plan.info for plan in self._plans]

    @property
    def population(self) -> Population:
        """The simulated users (favourite teams, devices); exposed for tests and tooling."""
        return self._population

    def _originals(self) -> Iterator[tuple[str, Record]]:
        """All original records in non-decreasing event time; games are built when they start."""
        heap: list[tuple[int, int, int, str, Record, Iterator[Record]]] = []
        pushed = 0

        def push(rank: int, kind: str, source: Iterator[Record]) -> None:
            nonlocal pushed
            record = next(source, None)
            if record is not None:
                pushed += 1
                heapq.heappush(heap, (record["event_time"], rank, pushed, kind, record, source))

        interactions_rank = len(self._plans)
        push(interactions_rank, "interaction", iter(self._interactions))
        pending = deque(self._plans)
        while heap or pending:
            while pending and (not heap or pending[0].info.start_ms <= heap[0][0]):
                plan = pending.popleft()
                feed = build_feed(plan, self.cfg.seed, self.cfg.correction_share)
                push(plan.index, "game", iter(feed))
            _, rank, _, kind, record, source = heapq.heappop(heap)
            yield kind, record
            push(rank, kind, source)

    def __iter__(self) -> Iterator[Emission]:
        cfg = self.cfg
        summary = self._summary = self._fresh_summary()
        rng = random.Random(f"{cfg.seed}:disorder")
        heap: list[tuple[int, int, Emission]] = []
        order = 0
        feed_version = {plan.info.game_id: plan.info.feed_version for plan in self._plans}
        for kind, record in self._originals():
            t = record["event_time"]
            # Every later original has event_time >= t, hence emit_ms >= t: safe to release.
            while heap and heap[0][0] <= t:
                yield heapq.heappop(heap)[2]
            is_game = kind == "game"
            # Corrections and GAME_END stay on time so consumers see games close cleanly.
            protected = is_game and (record["revision"] > 0 or record["event_type"] == "GAME_END")
            late = not protected and rng.random() < cfg.late_share
            if late:
                emit = t + rng.randint(*cfg.late_delay_ms)
            else:
                emit = t + rng.randint(0, cfg.out_of_order_ms)
            if is_game:
                key, version = record["game_id"], feed_version[record["game_id"]]
            else:
                key = record["user_id"]
                version = interaction_version(record["device"], record["app_version"])
            order += 1
            em = Emission(emit, kind, key, record, late, False, version)
            heapq.heappush(heap, (emit, order, em))
            if not protected and rng.random() < cfg.duplicate_share:
                again = emit + rng.randint(*DUPLICATE_GAP_MS)
                copy = Emission(again, kind, key, dict(record), late, True, version)
                order += 1
                heapq.heappush(heap, (again, order, copy))
                summary.duplicates += 1
            summary.late += late
            if is_game:
                summary.game_events += 1
                summary.corrections += record["revision"] > 0
            else:
                summary.interactions += 1
                summary.users = self._interactions.distinct_users
        while heap:
            yield heapq.heappop(heap)[2]
