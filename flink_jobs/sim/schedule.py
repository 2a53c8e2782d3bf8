"""The game schedule: which teams play when, and how many plays each game gets."""

from __future__ import annotations

import random
from dataclasses import dataclass

from flink_jobs.sim.leagues import LEAGUES, LeagueSpec, structural_events, venue_of
from flink_jobs.sim.versions import CURRENT_VERSION, v1_feed_games

# Share of all original events that the games should produce; interactions get the rest.
GAME_EVENT_SHARE = 0.15
MIN_PLAYS = 12
# Smallest game of the largest-period leagues: structural events plus MIN_PLAYS.
_MIN_GAME_EVENTS = 2 + 2 * 4 + MIN_PLAYS


@dataclass(frozen=True)
class GameInfo:
    """One scheduled game; event times of all its events lie in [start_ms, end_ms]."""

    game_id: str
    league: str
    home_team_id: str
    away_team_id: str
    start_ms: int
    end_ms: int
    broadcast_network: str | None = None  # national broadcast, if any
    feed_version: int = CURRENT_VERSION  # GameEvent schema version its feed provider writes

    @property
    def venue_id(self) -> str:
        return venue_of(self.home_team_id)


@dataclass(frozen=True)
class GamePlan:
    """A scheduled game plus what the generator needs to replay it deterministically."""

    index: int
    info: GameInfo
    plays: int
    popularity: float

    @property
    def spec(self) -> LeagueSpec:
        return LEAGUES[self.info.league]


def effective_games(requested: int, total_events: int) -> int:
    """Number of games that fits the game-event budget, never below one."""
    budget = GAME_EVENT_SHARE * total_events
    return max(1, min(requested, int(budget // _MIN_GAME_EVENTS)))


def _pick_matchup(rng: random.Random, used: dict[str, bool]) -> tuple[LeagueSpec, str, str]:
    """Draws a league and two teams, preferring teams that have no game yet."""
    open_leagues = [
        spec for spec in LEAGUES.values() if sum(1 for t in spec.team_ids() if t not in used) >= 2
    ]
    # Once every league has run out of free teams, teams may play twice.
    candidates = open_leagues or list(LEAGUES.values())
    spec = candidates[
        rng.choices(range(len(candidates)), weights=[s.weight for s in candidates])[0]
    ]
    ids = spec.team_ids()
    pops = [spec.team_popularity(rank) for rank in range(len(ids))]
    free = [i for i, team in enumerate(ids) if team not in used] if open_leagues else []
    pool = free if len(free) >= 2 else list(range(len(ids)))
    home_i = rng.choices(pool, weights=[pops[i] for i in pool])[0]
    rest = [i for i in pool if i != home_i]
    away_i = rng.choices(rest, weights=[pops[i] for i in rest])[0]
    used[ids[home_i]] = True
    used[ids[away_i]] = True
    return spec, ids[home_i], ids[away_i]


def _broadcast(rng: random.Random, spec: LeagueSpec) -> str | None:
    """A national network for a share of the league's games; None for the others."""
    if rng.random() >= spec.national_share or not spec.networks:
        return None
    names = [name for name, _ in spec.networks]
    weights = [weight for _, weight in spec.networks]
    network: str = rng.choices(names, weights=weights)[0]
    return network


def build_schedule(
    seed: int, start_ms: int, duration_ms: int, total_events: int, games: int
) -> list[GamePlan]:
    """Games with staggered starts, each lying fully inside the timeline, ordered by start."""
    rng = random.Random(f"{seed}:schedule")
    n = effective_games(games, total_events)
    per_game_budget = GAME_EVENT_SHARE * total_events / n
    used: dict[str, bool] = {}
    drafts: list[tuple[int, int, int, LeagueSpec, str, str, int]] = []
    for i in range(n):
        spec, home, away = _pick_matchup(rng, used)
        span = min(spec.real_duration_ms, round(duration_ms * rng.uniform(0.35, 0.7)))
        # Slot i of n over the room left after the game, jittered inside the slot.
        start = start_ms + int((duration_ms - span) * (i + rng.random()) / n)
        plays = int(per_game_budget) - structural_events(spec)
        plays = max(MIN_PLAYS, min(spec.realistic_plays, plays))
        drafts.append((start, i, span, spec, home, away, plays))
    # Sorting keeps game ids numbered in start order; i breaks ties deterministically.
    drafts.sort(key=lambda d: (d[0], d[1]))
    # Streams of their own, drawn after the schedule: the games themselves stay as they were.
    media = random.Random(f"{seed}:media")
    old_feeds = v1_feed_games(seed, len(drafts))
    plans: list[GamePlan] = []
    for index, (start, _, span, spec, home, away, plays) in enumerate(drafts):
        home_code = home.split("-", 1)[1]
        away_code = away.split("-", 1)[1]
        info = GameInfo(
            game_id=f"{spec.code.lower()}-{home_code}-{away_code}-{index + 1:04d}",
            league=spec.code,
            home_team_id=home,
            away_team_id=away,
            start_ms=start,
            end_ms=start + span,
            broadcast_network=_broadcast(media, spec),
            feed_version=1 if index in old_feeds else CURRENT_VERSION,
        )
        ids = spec.team_ids()
        popularity = spec.weight * (
            spec.team_popularity(ids.index(home)) + spec.team_popularity(ids.index(away))
        )
        plans.append(GamePlan(index=index, info=info, plays=plays, popularity=popularity))
    return plans
