"""How exciting a live game is right now, in [0, 1] (the formula of docs/features.md).

excitement = 0.4 * closeness * (0.5 + 0.5 * progress)   close games, more so late on
           + 0.2 * progress                             late games
           + 0.2 * min(1, lead_changes / 10)            back-and-forth games
           + 0.2 * min(1, max(0, viewer_trend - 1) / 2) audiences growing fast
and 0 when the game is not LIVE. Each term lies in [0, its weight]; the weights sum to 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class LeagueShape(NamedTuple):
    periods: int
    period_seconds: int
    margin: int  # a score difference at which the game no longer counts as close


LEAGUES = {
    "NBA": LeagueShape(4, 720, 15),
    "NFL": LeagueShape(4, 900, 14),
    "NHL": LeagueShape(3, 1200, 3),
    "EPL": LeagueShape(2, 2700, 2),
    "MLS": LeagueShape(2, 2700, 2),
}
DEFAULT_SHAPE = LeagueShape(4, 900, 10)


def progress(league: str | None, period: int, clock_seconds_remaining: int) -> float:
    """Fraction of regulation played, from the period and the period clock."""
    if period <= 0:
        return 0.0
    shape = LEAGUES.get(league or "", DEFAULT_SHAPE)
    within = 1 - clock_seconds_remaining / shape.period_seconds
    return min(1.0, max(0.0, (period - 1 + within) / shape.periods))


def excitement(f: Mapping[str, Any]) -> float:
    """Excitement of a GameFeatures record (uses status, league, period, clock, score_diff,
    lead_changes and viewer_trend)."""
    if f["status"] != "LIVE":
        return 0.0
    shape = LEAGUES.get(f["league"] or "", DEFAULT_SHAPE)
    closeness = max(0.0, 1 - abs(f["score_diff"]) / shape.margin)
    p = progress(f["league"], f["period"], f["clock_seconds_remaining"])
    return float(
        0.4 * closeness * (0.5 + 0.5 * p)
        + 0.2 * p
        + 0.2 * min(1.0, f["lead_changes"] / 10)
        + 0.2 * min(1.0, max(0.0, f["viewer_trend"] - 1) / 2)
    )
