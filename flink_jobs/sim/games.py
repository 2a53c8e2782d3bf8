"""Play-by-play of one game, including score corrections, as GameEvent records.

GAME_START carries period 0 (the schema's "before the game starts") with a full
period clock; every later event carries the period it happens in, 1-based, and
GAME_END carries the last period with clock 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from flink_jobs.sim.leagues import LeagueSpec
from flink_jobs.sim.schedule import GamePlan

# Real-time gaps before the first and after the last period, in period units.
_PRE_UNITS = 0.02
_POST_UNITS = 0.02
_OTHER_PLAYS = ("FOUL", "TURNOVER", "SUBSTITUTION", "TIMEOUT")
_OTHER_WEIGHTS = (0.35, 0.30, 0.25, 0.10)
# With few plays a realistic score is unreachable; cap so games still have non-scoring plays.
MAX_SCORE_PROBABILITY = 0.85
HOME_EDGE = 0.52
MAX_CORRECTION_LAG = 5

Record = dict[str, Any]


@dataclass(frozen=True)
class _Play:
    time: int
    period: int
    clock: int
    next_time: int  # time of the next feed event in the same period
    event_type: str
    team_id: str
    player_id: str | None
    points: int


def period_bounds(plan: GamePlan) -> list[tuple[int, int]]:
    """Event-time [start, end] of every period, scaled so the game fills its span."""
    spec, info = plan.spec, plan.info
    units = _PRE_UNITS + spec.periods + sum(spec.breaks) + _POST_UNITS
    scale = (info.end_ms - info.start_ms) / units
    cursor = _PRE_UNITS
    bounds: list[tuple[int, int]] = []
    for k in range(spec.periods):
        begin = info.start_ms + round(cursor * scale)
        cursor += 1.0
        bounds.append((begin, info.start_ms + round(cursor * scale)))
        if k < len(spec.breaks):
            cursor += spec.breaks[k]
    return bounds


def score_probability(spec: LeagueSpec, plays: int) -> float:
    """Per-play SCORE probability that makes both teams' expected finals the league target."""
    return min(MAX_SCORE_PROBABILITY, 2 * spec.target_points_per_team / (spec.mean_points * plays))


def _draw_plays(rng: random.Random, plan: GamePlan) -> list[_Play]:
    spec, info = plan.spec, plan.info
    bounds = period_bounds(plan)
    counts = [0] * spec.periods
    for k in rng.choices(range(spec.periods), k=plan.plays):
        counts[k] += 1
    p_score = score_probability(spec, plan.plays)
    values = [p for p, _ in spec.score_values]
    value_weights = [w for _, w in spec.score_values]
    plays: list[_Play] = []
    for k, (begin, end) in enumerate(bounds):
        # Distinct times strictly inside the period keep sequence and time order aligned.
        n = min(counts[k], max(0, end - begin - 1))
        times = sorted(rng.sample(range(begin + 1, end), n))
        for idx, t in enumerate(times):
            clock = spec.period_seconds * (end - t) // (end - begin)
            if rng.random() < p_score:
                event_type = "SCORE"
                home = rng.random() < HOME_EDGE
                points = rng.choices(values, weights=value_weights)[0]
            else:
                event_type = rng.choices(_OTHER_PLAYS, weights=_OTHER_WEIGHTS)[0]
                home = rng.random() < 0.5
                points = 0
            team = info.home_team_id if home else info.away_team_id
            player = None
            if event_type != "TIMEOUT":
                player = f"{team}-p{rng.randint(1, spec.roster_size):02d}"
            next_time = times[idx + 1] if idx + 1 < len(times) else end
            plays.append(_Play(t, k + 1, clock, next_time, event_type, team, player, points))
    return plays


def _plan_corrections(
    rng: random.Random, spec: LeagueSpec, plays: list[_Play], share: float
) -> dict[int, tuple[int, int]]:
    """Maps play index j to (corrected play index, corrected points), emitted right after j."""
    after: dict[int, tuple[int, int]] = {}
    for i, play in enumerate(plays):
        if play.event_type != "SCORE" or rng.random() >= share:
            continue
        j = min(i + rng.randint(1, MAX_CORRECTION_LAG), len(plays) - 1)
        # One correction per slot: two after the same play would have to share its time gap.
        if j <= i or j in after:
            continue
        after[j] = (i, rng.choice(spec.corrections[play.points]))
    return after


def build_feed(plan: GamePlan, seed: int, correction_share: float) -> list[Record]:
    """All GameEvent records of one game in sequence order (event times non-decreasing)."""
    rng = random.Random(f"{seed}:game:{plan.index}")
    spec, info = plan.spec, plan.info
    plays = _draw_plays(rng, plan)
    corrections = _plan_corrections(rng, spec, plays, correction_share)
    score = {info.home_team_id: 0, info.away_team_id: 0}
    feed: list[Record] = []

    def add(
        event_id: str | None,
        event_type: str,
        t: int,
        period: int,
        clock: int,
        team: str | None = None,
        player: str | None = None,
        points: int = 0,
        revision: int = 0,
    ) -> str:
        sequence = len(feed) + 1
        eid = event_id or f"{info.game_id}-{sequence}"
        feed.append(
            {
                "event_id": eid,
                "game_id": info.game_id,
                "league": info.league,
                "event_type": event_type,
                "team_id": team,
                "player_id": player,
                "points": points,
                "home_team_id": info.home_team_id,
                "away_team_id": info.away_team_id,
                "home_score": score[info.home_team_id],
                "away_score": score[info.away_team_id],
                "period": period,
                "clock_seconds_remaining": clock,
                "sequence": sequence,
                "revision": revision,
                "event_time": t,
                "venue_id": info.venue_id,
                "broadcast_network": info.broadcast_network,
            }
        )
        return eid

    add(None, "GAME_START", info.start_ms, 0, spec.period_seconds)
    bounds = period_bounds(plan)
    play_ids: list[str] = []
    j = 0
    for k, (begin, end) in enumerate(bounds):
        add(None, "PERIOD_START", begin, k + 1, spec.period_seconds)
        while j < len(plays) and plays[j].period == k + 1:
            p = plays[j]
            score[p.team_id] += p.points
            play_ids.append(
                add(None, p.event_type, p.time, p.period, p.clock, p.team_id, p.player_id, p.points)
            )
            if j in corrections:
                i, new_points = corrections[j]
                orig = plays[i]
                score[orig.team_id] += new_points - orig.points
                t = p.time + (p.next_time - p.time) // 2
                add(
                    play_ids[i],
                    "SCORE",
                    t,
                    p.period,
                    p.clock,
                    orig.team_id,
                    orig.player_id,
                    new_points,
                    revision=1,
                )
            j += 1
        add(None, "PERIOD_END", end, k + 1, 0)
    add(None, "GAME_END", info.end_ms, spec.periods, 0)
    return feed


def score_line(feed: list[Record]) -> tuple[list[int], list[int]]:
    """Event times at which the score difference changed, and the difference (home - away)."""
    times: list[int] = [feed[0]["event_time"]]
    diffs: list[int] = [0]
    for rec in feed:
        diff = rec["home_score"] - rec["away_score"]
        if diff != diffs[-1]:
            times.append(rec["event_time"])
            diffs.append(diff)
    return times, diffs
