"""product.md's validity rules for decoded input records ("What counts as invalid input")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# 2000-01-01T00:00:00Z in epoch ms.
EARLIEST_EVENT_TIME = 946_684_800_000
MAX_AHEAD_MS = 24 * 3_600_000
NON_NEGATIVE = ("points", "home_score", "away_score", "sequence", "revision", "period")


def problems(kind: str, r: Mapping[str, Any], now_ms: int) -> list[str]:
    """Every rule the record breaks (empty: valid). `now_ms` is the processing clock."""
    out: list[str] = []
    required = ("event_id", "game_id") if kind == "game" else ("event_id", "user_id")
    out += [f"{f} is null or empty" for f in required if not r.get(f)]
    if kind == "game":
        out += [f"{f} is negative ({r[f]})" for f in NON_NEGATIVE if (r.get(f) or 0) < 0]
        if r.get("points") and r.get("event_type") != "SCORE":
            out.append(f"points {r['points']} on a {r.get('event_type')} event (only SCORE scores)")
    elif r.get("action") in ("FOLLOW_TEAM", "UNFOLLOW_TEAM") and not r.get("team_id"):
        out.append(f"{r['action']} without team_id")
    t = r.get("event_time")
    if not isinstance(t, int):
        out.append(f"event_time {t!r} is not epoch milliseconds")
    elif t < EARLIEST_EVENT_TIME:
        out.append(f"event_time {t} is before 2000-01-01")
    elif t > now_ms + MAX_AHEAD_MS:
        out.append(f"event_time {t} is more than 24 h ahead of the processing clock ({now_ms})")
    return out
