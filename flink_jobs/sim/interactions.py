"""UserInteraction records streamed in event-time order from the intensity profile."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from flink_jobs.sim.leagues import league_of_team
from flink_jobs.sim.profile import Profile
from flink_jobs.sim.schedule import GameInfo
from flink_jobs.sim.users import DEVICES, Population

Record = dict[str, Any]

ACTION_SHARES: dict[str, float] = {
    "PAGE_VIEW": 0.34,
    "CLICK": 0.22,
    "VIDEO_START": 0.12,
    "VIDEO_COMPLETE": 0.07,
    "SHARE": 0.03,
    "ALERT_OPEN": 0.08,
    "SEARCH": 0.10,
    "FOLLOW_TEAM": 0.03,
    "UNFOLLOW_TEAM": 0.01,
}
ACTIONS: tuple[str, ...] = tuple(ACTION_SHARES)
_ACTION_CUM = list(accumulate(ACTION_SHARES.values()))
SESSION_GAP_MS = 30 * 60 * 1000
FAN_SHARE = 0.75
PRIMARY_DEVICE_SHARE = 0.85
GAME_TEAM_SHARE = 0.6
BACKGROUND_GAME_SHARE = 0.08
BACKGROUND_TEAM_SHARE = 0.35
UNFOLLOW_FOLLOWED_SHARE = 0.95


class InteractionStream:
    """Iterating yields `Profile.counts` interactions in non-decreasing event time."""

    def __init__(self, population: Population, profile: Profile, seed: int) -> None:
        self.population = population
        self.profile = profile
        self.seed = seed
        self.distinct_users = 0
        self._rng = random.Random()
        self._last: list[int] = []
        self._token: list[str] = []
        # Per user: team -> currently followed; a team missing was never followed.
        self._follows: dict[int, dict[str, bool]] = {}

    def __iter__(self) -> Iterator[Record]:
        rng = self._rng = random.Random(f"{self.seed}:interactions")
        n_users = len(self.population)
        self._last = [-1] * n_users
        self._token = [""] * n_users
        self._follows = {}
        self.distinct_users = 0
        games = [g.info for g in self.profile.games]
        serial = 0
        for bucket, count in enumerate(self.profile.counts):
            if count == 0:
                continue
            lo, hi = self.profile.bounds(bucket)
            live = self.profile.live(bucket)
            sources = rng.choices(
                range(len(live) + 1),
                weights=[self.profile.background] + [term for _, term in live],
                k=count,
            )
            times = sorted(rng.randint(lo, hi) for _ in range(count))
            for t, source in zip(times, sources, strict=True):
                game = games[live[source - 1][0]] if source else None
                serial += 1
                yield self._interaction(serial, t, game, source == 0, live, games)

    def _pick_user(self, game: GameInfo | None) -> int:
        pop, rng = self.population, self._rng
        if game is not None and rng.random() < FAN_SHARE:
            home_w = pop.fan_activity(game.home_team_id)
            away_w = pop.fan_activity(game.away_team_id)
            if home_w + away_w > 0.0:
                home = rng.random() * (home_w + away_w) < home_w
                fan = pop.pick_fan(rng, game.home_team_id if home else game.away_team_id)
                if fan is not None:
                    return fan
        return pop.pick_user(rng)

    def _interaction(
        self,
        serial: int,
        t: int,
        game: GameInfo | None,
        background: bool,
        live: list[tuple[int, float]],
        games: list[GameInfo],
    ) -> Record:
        rng, pop = self._rng, self.population
        user = self._pick_user(game)
        favorites = pop.favorites[user]
        if background and live and rng.random() < BACKGROUND_GAME_SHARE:
            game = games[live[rng.randrange(len(live))][0]]
        team: str | None = None
        league: str | None = None
        if game is not None:
            league = game.league
            if rng.random() < GAME_TEAM_SHARE:
                sides = (game.home_team_id, game.away_team_id)
                mine = [side for side in sides if side in favorites]
                team = mine[0] if mine else sides[rng.randrange(2)]
        elif rng.random() < BACKGROUND_TEAM_SHARE:
            team = favorites[rng.randrange(len(favorites))]
            league = league_of_team(team)
        elif rng.random() < 0.3:
            league = league_of_team(favorites[0])
        action = ACTIONS[min(len(ACTIONS) - 1, bisect_right(_ACTION_CUM, rng.random()))]
        if action == "UNFOLLOW_TEAM":
            action, team = self._unfollow(user, team)
        elif action == "FOLLOW_TEAM":
            team = self._follow(user, team)
        if team is not None and action in ("FOLLOW_TEAM", "UNFOLLOW_TEAM"):
            league = league_of_team(team)
            # Following a team from another game's page would mislabel that game's audience.
            if game is not None and team not in (game.home_team_id, game.away_team_id):
                game = None
        content_id, dwell_ms = self._content(action)
        # In this order: both draw from the stream (the records of a seed stay the same).
        session_hint = self._session(user, t)
        device = self._device(user)
        return {
            "event_id": f"i-{self.seed}-{serial}",
            "user_id": pop.user_id(user),
            "session_hint": session_hint,
            "action": action,
            "game_id": game.game_id if game is not None else None,
            "team_id": team,
            "league": league,
            "content_id": content_id,
            "device": device,
            "dwell_ms": dwell_ms,
            "event_time": t,
            "app_version": pop.app_version(user, device),
            "locale": pop.locale[user],
        }

    def _session(self, user: int, t: int) -> str | None:
        last = self._last[user]
        if last < 0:
            self.distinct_users += 1
        if last < 0 or t - last >= SESSION_GAP_MS:
            self._token[user] = f"{self._rng.getrandbits(64):016x}"
        self._last[user] = t
        return self._token[user] if self.population.has_hint(user) else None

    def _device(self, user: int) -> str:
        primary = self.population.device[user]
        if self._rng.random() < PRIMARY_DEVICE_SHARE:
            return primary
        others = [d for d in DEVICES if d != primary]
        return others[self._rng.randrange(len(others))]

    def _content(self, action: str) -> tuple[str | None, int | None]:
        rng = self._rng
        if action == "PAGE_VIEW":
            dwell = int(rng.lognormvariate(10.3, 0.9))  # median ~30 s
            return f"article-{rng.randint(1, 5000)}", max(500, min(1_800_000, dwell))
        if action == "VIDEO_COMPLETE":
            return f"video-{rng.randint(1, 800)}", rng.randint(15_000, 600_000)
        if action == "VIDEO_START":
            return f"video-{rng.randint(1, 800)}", None
        if action in ("CLICK", "SHARE"):
            kind, top = ("article", 5000) if rng.random() < 0.5 else ("video", 800)
            return f"{kind}-{rng.randint(1, top)}", None
        if action == "ALERT_OPEN":
            return f"alert-{rng.randint(1, 300)}", None
        return None, None

    def _follow(self, user: int, context: str | None) -> str:
        follows = self._follows.setdefault(user, {})
        favorites = self.population.favorites[user]
        candidates = [context] if context is not None and not follows.get(context) else []
        candidates += [f for f in favorites if not follows.get(f)]
        team = candidates[0] if candidates else self.population.pick_team(self._rng)
        follows[team] = True
        return team

    def _unfollow(self, user: int, context: str | None) -> tuple[str, str]:
        rng = self._rng
        follows = self._follows.setdefault(user, {})
        followed = [team for team, on in follows.items() if on]
        if followed and rng.random() < UNFOLLOW_FOLLOWED_SHARE:
            if context is not None and follows.get(context):
                target = context
            else:
                target = followed[rng.randrange(len(followed))]
            follows[target] = False
            return "UNFOLLOW_TEAM", target
        if not followed and rng.random() < 0.9:
            return "FOLLOW_TEAM", self._follow(user, context)
        # The rare unfollow of a team the user never followed: clients do send these.
        for _ in range(20):
            team = self.population.pick_team(rng)
            if team not in follows:
                return "UNFOLLOW_TEAM", team
        return "UNFOLLOW_TEAM", self.population.pick_team(rng)
