"""The simulated user population: favourite teams, devices, how active each user is, their
locale and how far behind they keep their apps."""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate

from flink_jobs.sim.clients import LAG_WEIGHTS, LOCALE_WEIGHTS, app_version, market_of
from flink_jobs.sim.leagues import all_teams

DEVICES: tuple[str, ...] = ("IOS", "ANDROID", "WEB", "TV")
_DEVICE_WEIGHTS = (0.40, 0.33, 0.20, 0.07)
# Web clients send no session token; with the device mix above that is ~20% of users.
HINTLESS_DEVICE = "WEB"
_FAVORITE_COUNTS = (1, 2, 3)
_FAVORITE_COUNT_WEIGHTS = (0.50, 0.33, 0.17)
ACTIVITY_ZIPF_EXPONENT = 0.75


def _pick(rng: random.Random, cum_weights: list[float]) -> int:
    """Index drawn with probability proportional to its weight, given cumulative weights."""
    i = bisect_right(cum_weights, rng.random() * cum_weights[-1])
    return min(i, len(cum_weights) - 1)


class Population:
    """Users indexed 0..size-1; everything about them is fixed at construction."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("the population needs at least one user")
        rng = random.Random(f"{seed}:users")
        teams = all_teams()
        self.team_ids: list[str] = [team for team, _ in teams]
        team_cum = list(accumulate(weight for _, weight in teams))
        # A shuffled rank per user gives a Zipf-like activity spread that ignores the user id.
        ranks = list(range(1, size + 1))
        rng.shuffle(ranks)
        self.activity: list[float] = [float(r**-ACTIVITY_ZIPF_EXPONENT) for r in ranks]
        self.favorites: list[tuple[str, ...]] = []
        self.device: list[str] = []
        for _ in range(size):
            wanted = rng.choices(_FAVORITE_COUNTS, weights=_FAVORITE_COUNT_WEIGHTS)[0]
            favorites: list[str] = []
            while len(favorites) < wanted:
                team = self.team_ids[_pick(rng, team_cum)]
                if team not in favorites:
                    favorites.append(team)
            self.favorites.append(tuple(favorites))
            self.device.append(rng.choices(DEVICES, weights=_DEVICE_WEIGHTS)[0])
        # A stream of its own: adding these left every earlier draw (and record) unchanged.
        clients = random.Random(f"{seed}:clients")
        self.locale: list[str] = []
        self.app_lag: list[int] = []
        for favorites_of_user in self.favorites:
            names, weights = zip(*LOCALE_WEIGHTS[market_of(favorites_of_user[0])], strict=True)
            self.locale.append(clients.choices(names, weights=weights)[0])
            self.app_lag.append(clients.choices(range(len(LAG_WEIGHTS)), weights=LAG_WEIGHTS)[0])
        self._cum_activity = list(accumulate(self.activity))
        fans: dict[str, list[int]] = {}
        for user, favorites_of_user in enumerate(self.favorites):
            for team in favorites_of_user:
                fans.setdefault(team, []).append(user)
        self._fans = fans
        self._fan_cum = {
            team: list(accumulate(self.activity[u] for u in members))
            for team, members in fans.items()
        }

    def __len__(self) -> int:
        return len(self.activity)

    @staticmethod
    def user_id(user: int) -> str:
        return f"u{user:06d}"

    def has_hint(self, user: int) -> bool:
        return self.device[user] != HINTLESS_DEVICE

    def app_version(self, user: int, device: str) -> str | None:
        """The app version `user` runs on `device` (None on the web)."""
        return app_version(device, self.app_lag[user])

    def fans(self, team_id: str) -> list[int]:
        """Users that have `team_id` among their favourites, in user order."""
        return list(self._fans.get(team_id, []))

    def fan_activity(self, team_id: str) -> float:
        """Summed activity weight of a team's fans (0.0 when it has none)."""
        cum = self._fan_cum.get(team_id)
        return cum[-1] if cum else 0.0

    def pick_user(self, rng: random.Random) -> int:
        """A user drawn by personal activity weight."""
        return _pick(rng, self._cum_activity)

    def pick_fan(self, rng: random.Random, team_id: str) -> int | None:
        """A fan of `team_id` drawn by activity weight, or None when the team has no fans."""
        cum = self._fan_cum.get(team_id)
        if not cum:
            return None
        return self._fans[team_id][_pick(rng, cum)]

    def pick_team(self, rng: random.Random) -> str:
        """Any team, uniformly; used for the rare interaction with an unfamiliar team."""
        return self.team_ids[rng.randrange(len(self.team_ids))]
