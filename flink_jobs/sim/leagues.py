"""League rules and team rosters the simulator draws from.

Team lists are ordered by popularity, most popular first: the position is the rank
that the Zipf-like popularity weights are computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3_600_000
TEAM_ZIPF_EXPONENT = 1.1


@dataclass(frozen=True)
class LeagueSpec:
    """Rules and realism targets of one league."""

    code: str
    periods: int
    period_seconds: int
    # Break length between consecutive periods, in units of one period's real duration.
    breaks: tuple[float, ...]
    # (points, relative frequency) of an original scoring play.
    score_values: tuple[tuple[int, float], ...]
    # Points an original SCORE may be corrected to, by its original points.
    corrections: dict[int, tuple[int, ...]]
    target_points_per_team: float
    realistic_plays: int
    real_duration_ms: int
    # Score difference that still counts as a close game (drives fan activity).
    close_margin: int
    roster_size: int
    weight: float
    teams: tuple[str, ...]
    # What a home team plays in: the venue id of a team is "<team_id>-<venue_kind>" unless
    # it shares a well-known venue (SHARED_VENUES).
    venue_kind: str = "arena"
    # National broadcasters (network, relative weight) and the share of games they carry;
    # the other games have no national broadcast (regional TV and streaming only).
    networks: tuple[tuple[str, float], ...] = ()
    national_share: float = 0.0

    @property
    def mean_points(self) -> float:
        total = sum(w for _, w in self.score_values)
        return sum(p * w for p, w in self.score_values) / total

    def team_id(self, code: str) -> str:
        return f"{self.code.lower()}-{code}"

    def team_ids(self) -> list[str]:
        return [self.team_id(code) for code in self.teams]

    def team_popularity(self, rank: int) -> float:
        """Zipf-like popularity of the team at 0-based `rank`, before the league weight."""
        return float((rank + 1) ** -TEAM_ZIPF_EXPONENT)


_GOAL_CORRECTIONS: dict[int, tuple[int, ...]] = {1: (0,)}

LEAGUES: dict[str, LeagueSpec] = {
    spec.code: spec
    for spec in (
        LeagueSpec(
            code="NBA",
            periods=4,
            period_seconds=720,
            breaks=(0.12, 0.45, 0.12),
            score_values=((1, 0.20), (2, 0.55), (3, 0.25)),
            # Replay reviews: a three becomes a two, a two is upgraded or waved off.
            corrections={3: (2,), 2: (3, 0), 1: (0,)},
            target_points_per_team=113.0,
            realistic_plays=200,
            real_duration_ms=int(2.4 * HOUR_MS),
            close_margin=5,
            roster_size=15,
            weight=1.0,
            teams=(
                "lal",
                "gsw",
                "bos",
                "nyk",
                "chi",
                "mia",
                "phi",
                "dal",
                "den",
                "mil",
                "phx",
                "bkn",
                "lac",
                "tor",
                "okc",
                "cle",
            ),
            networks=(("ESPN", 0.35), ("NBC", 0.25), ("Prime Video", 0.25), ("ABC", 0.15)),
            national_share=0.3,
        ),
        LeagueSpec(
            code="NFL",
            periods=4,
            period_seconds=900,
            breaks=(0.06, 0.35, 0.06),
            # 7 = touchdown + extra point, 6 = touchdown with a missed try, 2 = safety.
            score_values=((7, 0.44), (3, 0.40), (6, 0.10), (2, 0.06)),
            corrections={7: (6,), 6: (7, 0), 3: (0,), 2: (0,)},
            target_points_per_team=23.0,
            realistic_plays=150,
            real_duration_ms=3 * HOUR_MS,
            close_margin=7,
            roster_size=53,
            weight=1.2,
            teams=(
                "dal",
                "kc",
                "sf",
                "gb",
                "phi",
                "ne",
                "pit",
                "nyg",
                "buf",
                "chi",
                "bal",
                "den",
                "sea",
                "mia",
                "det",
                "lar",
            ),
            venue_kind="stadium",
            networks=(
                ("FOX", 0.25),
                ("CBS", 0.25),
                ("NBC", 0.2),
                ("ESPN", 0.15),
                ("Prime Video", 0.1),
                ("NFL Network", 0.05),
            ),
            national_share=0.45,
        ),
        LeagueSpec(
            code="NHL",
            periods=3,
            period_seconds=1200,
            breaks=(0.4, 0.4),
            score_values=((1, 1.0),),
            corrections=_GOAL_CORRECTIONS,
            target_points_per_team=3.0,
            realistic_plays=160,
            real_duration_ms=int(2.5 * HOUR_MS),
            close_margin=1,
            roster_size=23,
            weight=0.5,
            teams=(
                "tor",
                "mtl",
                "nyr",
                "bos",
                "chi",
                "edm",
                "det",
                "pit",
                "vgk",
                "col",
                "tbl",
                "van",
            ),
            networks=(("ESPN", 0.4), ("TNT", 0.4), ("ABC", 0.2)),
            national_share=0.2,
        ),
        LeagueSpec(
            code="EPL",
            periods=2,
            period_seconds=2700,
            breaks=(0.28,),
            score_values=((1, 1.0),),
            corrections=_GOAL_CORRECTIONS,
            target_points_per_team=1.35,
            realistic_plays=120,
            real_duration_ms=int(1.9 * HOUR_MS),
            close_margin=1,
            roster_size=25,
            weight=0.9,
            teams=(
                "mun",
                "liv",
                "ars",
                "che",
                "mci",
                "tot",
                "new",
                "avl",
                "whu",
                "eve",
                "bha",
                "cry",
                "ful",
                "bre",
                "wol",
                "bou",
            ),
            venue_kind="stadium",
            # Most 3 pm Saturday kick-offs are not televised in the UK.
            networks=(("Sky Sports", 0.6), ("TNT Sports", 0.3), ("Prime Video", 0.1)),
            national_share=0.55,
        ),
        LeagueSpec(
            code="MLS",
            periods=2,
            period_seconds=2700,
            breaks=(0.28,),
            score_values=((1, 1.0),),
            corrections=_GOAL_CORRECTIONS,
            target_points_per_team=1.5,
            realistic_plays=120,
            real_duration_ms=int(1.9 * HOUR_MS),
            close_margin=1,
            roster_size=26,
            weight=0.4,
            teams=(
                "lafc",
                "lag",
                "sea",
                "atl",
                "mia",
                "nyc",
                "por",
                "tor",
                "cin",
                "clb",
                "phi",
                "orl",
            ),
            venue_kind="stadium",
            networks=(("FOX", 0.7), ("FS1", 0.3)),
            national_share=0.2,
        ),
    )
}

LEAGUE_CODES: tuple[str, ...] = tuple(LEAGUES)

# Teams of different leagues that share a building.
SHARED_VENUES: dict[str, str] = {
    "nba-nyk": "madison-square-garden",
    "nhl-nyr": "madison-square-garden",
    "nba-bos": "td-garden",
    "nhl-bos": "td-garden",
    "nba-chi": "united-center",
    "nhl-chi": "united-center",
    "nba-tor": "scotiabank-arena",
    "nhl-tor": "scotiabank-arena",
    "nba-den": "ball-arena",
    "nhl-col": "ball-arena",
    "nfl-sea": "lumen-field",
    "mls-sea": "lumen-field",
}


def structural_events(spec: LeagueSpec) -> int:
    """Events every game has besides plays: GAME_START, GAME_END and each period's start/end."""
    return 2 + 2 * spec.periods


def all_teams() -> list[tuple[str, float]]:
    """Every team id with its global popularity (league weight x in-league Zipf weight)."""
    out: list[tuple[str, float]] = []
    for spec in LEAGUES.values():
        norm = sum(spec.team_popularity(r) for r in range(len(spec.teams)))
        for rank, code in enumerate(spec.teams):
            out.append((spec.team_id(code), spec.weight * spec.team_popularity(rank) / norm))
    return out


def league_of_team(team_id: str) -> str:
    """League code of a team id such as "nba-bos"."""
    return team_id.split("-", 1)[0].upper()


def venue_of(home_team_id: str) -> str:
    """Venue id of a home team's games, e.g. "nfl-gb-stadium" or "madison-square-garden"."""
    shared = SHARED_VENUES.get(home_team_id)
    if shared is not None:
        return shared
    return f"{home_team_id}-{LEAGUES[league_of_team(home_team_id)].venue_kind}"
