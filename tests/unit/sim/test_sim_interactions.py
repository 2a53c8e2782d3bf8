"""User interactions: schema validity, product rules, sessions, follows and activity."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.validation import validate

from flink_jobs.sim import Emission, SimConfig, Simulation
from flink_jobs.sim.interactions import SESSION_GAP_MS

Record = dict[str, Any]
START_MS = 1_700_000_000_000
SCHEMAS = Path(__file__).resolve().parents[3] / "avro_schemas" / "events"


SCHEMA_TABLE = [("game", "GameEvent.avsc"), ("interaction", "UserInteraction.avsc")]


@pytest.mark.parametrize(("kind", "schema_file"), SCHEMA_TABLE)
def test_records_validate_against_avro_schemas(
    kind: str, schema_file: str, originals: list[Emission]
) -> None:
    """Every record has exactly the schema's fields and validates with fastavro."""
    raw = json.loads((SCHEMAS / schema_file).read_text())
    schema = parse_schema(raw)
    names = {f["name"] for f in raw["fields"]}
    records = [e.record for e in originals if e.kind == kind]
    assert records
    for record in records:
        assert set(record) == names
        assert validate(record, schema, raise_errors=True)


def test_interactions_obey_validity_rules(interactions: list[Record]) -> None:
    """Ids are set, follows carry a team, dwell and content fit the action."""
    dwell_actions = {"PAGE_VIEW", "VIDEO_COMPLETE"}
    for r in interactions:
        assert r["event_id"] and r["user_id"]
        assert re.fullmatch(r"u\d{6}", r["user_id"])
        if r["action"] in ("FOLLOW_TEAM", "UNFOLLOW_TEAM"):
            assert r["team_id"]
            assert r["league"] == r["team_id"].split("-")[0].upper()
        assert (r["dwell_ms"] is not None) == (r["action"] in dwell_actions)
        assert r["dwell_ms"] is None or r["dwell_ms"] > 0
        if r["content_id"] is not None:
            assert re.fullmatch(r"(article|video|alert)-\d+", r["content_id"])
        assert r["game_id"] is None or r["league"] is not None
    assert len({r["event_id"] for r in interactions}) == len(interactions)


def test_action_mix_is_plausible(interactions: list[Record]) -> None:
    """Every action occurs, page views lead, and follows are rare."""
    counts = Counter(r["action"] for r in interactions)
    assert len(counts) == 9
    assert counts.most_common(1)[0][0] == "PAGE_VIEW"
    assert counts["UNFOLLOW_TEAM"] < counts["FOLLOW_TEAM"] < counts["CLICK"]


def test_unfollows_mostly_target_followed_teams(interactions: list[Record]) -> None:
    """Walking follows in time order, most unfollows hit a team the user follows."""
    followed: dict[str, set[str]] = {}
    hits = misses = 0
    for r in interactions:
        teams = followed.setdefault(r["user_id"], set())
        if r["action"] == "FOLLOW_TEAM":
            teams.add(r["team_id"])
        elif r["action"] == "UNFOLLOW_TEAM":
            if r["team_id"] in teams:
                hits += 1
                teams.discard(r["team_id"])
            else:
                misses += 1
    assert hits > 3 * misses


def test_game_driven_interactions_favour_the_game(
    base_sim: Simulation, interactions: list[Record]
) -> None:
    """Interactions carrying a game_id mostly come from fans of its teams while it is live."""
    games = {g.game_id: g for g in base_sim.schedule}
    pop = base_sim.population
    about = [r for r in interactions if r["game_id"] is not None]
    assert about
    fan_hits = 0
    for r in about:
        game = games[r["game_id"]]
        assert r["league"] == game.league
        assert game.start_ms <= r["event_time"] <= game.end_ms
        user = int(r["user_id"][1:])
        fan_hits += bool({game.home_team_id, game.away_team_id} & set(pop.favorites[user]))
    assert fan_hits / len(about) > 0.5


def test_fans_are_more_active_while_their_team_plays(
    base_cfg: SimConfig, base_sim: Simulation, interactions: list[Record]
) -> None:
    """A fan's interaction rate is higher during their team's live game than outside it."""
    by_user: dict[str, list[int]] = {}
    for r in interactions:
        by_user.setdefault(r["user_id"], []).append(r["event_time"])
    rate_in = rate_out = 0.0
    for game in base_sim.schedule:
        span = game.end_ms - game.start_ms
        for team in (game.home_team_id, game.away_team_id):
            for user in base_sim.population.fans(team):
                times = by_user.get(base_sim.population.user_id(user), [])
                inside = sum(game.start_ms <= t <= game.end_ms for t in times)
                rate_in += inside / span
                rate_out += (len(times) - inside) / (base_cfg.duration_ms - span)
    assert rate_in > 1.5 * rate_out


def test_session_hint_changes_after_thirty_idle_minutes() -> None:
    """A user's hint stays while gaps are under 30 min and changes after a longer gap."""
    cfg = SimConfig(seed=9, start_ms=START_MS, duration_ms=6 * 3_600_000, users=60)
    last: dict[str, tuple[int, str | None]] = {}
    renewals = hintless = 0
    records = sorted(
        (e.record for e in Simulation(cfg) if e.kind == "interaction" and not e.duplicate),
        key=lambda r: r["event_time"],
    )
    for r in records:
        prev = last.get(r["user_id"])
        hint = r["session_hint"]
        hintless += hint is None
        if prev is not None and hint is not None:
            gap = r["event_time"] - prev[0]
            assert (hint != prev[1]) == (gap >= SESSION_GAP_MS)
            renewals += gap >= SESSION_GAP_MS
        last[r["user_id"]] = (r["event_time"], hint)
    assert renewals > 0
    assert 0 < hintless < len(records)


def test_devices_are_mostly_primary(base_sim: Simulation, interactions: list[Record]) -> None:
    """About 85% of a user's interactions come from their primary device."""
    pop = base_sim.population
    primary = sum(r["device"] == pop.device[int(r["user_id"][1:])] for r in interactions)
    assert 0.8 <= primary / len(interactions) <= 0.9
