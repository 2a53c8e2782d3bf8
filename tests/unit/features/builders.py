"""Small builders of input events for the feature unit tests."""

from __future__ import annotations

from itertools import count
from typing import Any

from udfs.features.common import Event

T0 = 1_790_000_000_000  # a tick boundary (multiple of 1,000 ms), 2026
_offsets = count()


def ui(
    t: int,
    user: str = "u1",
    action: str = "PAGE_VIEW",
    game: str | None = None,
    team: str | None = None,
    eid: str | None = None,
) -> Event:
    n = next(_offsets)
    record: dict[str, Any] = {
        "event_id": eid or f"i{n}",
        "user_id": user,
        "session_hint": None,
        "action": action,
        "game_id": game,
        "team_id": team,
        "league": None,
        "content_id": None,
        "device": "IOS",
        "dwell_ms": None,
        "event_time": T0 + t,
    }
    return Event(T0 + t, "sports.user_interactions", 0, n, "interaction", record)


def ge(
    t: int,
    seq: int,
    etype: str = "FOUL",
    game: str = "g1",
    team: str | None = "h",
    points: int = 0,
    home: int = 0,
    away: int = 0,
    rev: int = 0,
    eid: str | None = None,
    period: int = 1,
    clock: int = 600,
    league: str = "NBA",
) -> Event:
    record: dict[str, Any] = {
        "event_id": eid or f"{game}-{seq}",
        "game_id": game,
        "league": league,
        "event_type": etype,
        "team_id": team,
        "player_id": None,
        "points": points,
        "home_team_id": "h",
        "away_team_id": "a",
        "home_score": home,
        "away_score": away,
        "period": period,
        "clock_seconds_remaining": clock,
        "sequence": seq,
        "revision": rev,
        "event_time": T0 + t,
    }
    return Event(T0 + t, "sports.game_events", 0, next(_offsets), "game", record)
