"""When interactions happen: an intensity profile over the timeline driven by live games.

intensity(t) = background + sum over games live at t of
    popularity x (1 + 3 x closeness(t) x lateness(t)^2)
where closeness = max(0, 1 - |home - away| / (2 x league close margin)) and lateness is the
fraction of the game's span elapsed. Popular games and close finishes draw more traffic.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from flink_jobs.sim.schedule import GameInfo

# Background level relative to the time-averaged game intensity: fans also browse off-game.
BACKGROUND_RATIO = 0.8
MAX_BUCKETS = 4_000
MIN_BUCKET_MS = 1_000
# Bounds the temporary list rng.choices builds for a 2,000,000-event run.
_CHOICE_CHUNK = 100_000


@dataclass(frozen=True)
class GameActivity:
    """What the profile needs to know about one game."""

    info: GameInfo
    popularity: float
    close_margin: int
    score_times: list[int]  # event times at which the score difference changed
    score_diffs: list[int]  # home - away from the matching time on

    def term(self, t: int) -> float:
        """This game's contribution to the intensity at event time t (0 when not live)."""
        start, end = self.info.start_ms, self.info.end_ms
        if t < start or t > end:
            return 0.0
        lateness = (t - start) / max(1, end - start)
        diff = self.score_diffs[max(0, bisect_right(self.score_times, t) - 1)]
        closeness = max(0.0, 1.0 - abs(diff) / (2 * self.close_margin))
        return self.popularity * (1.0 + 3.0 * closeness * lateness * lateness)


class Profile:
    """The timeline cut into equal buckets, each with its live games and interaction count."""

    def __init__(
        self,
        games: list[GameActivity],
        start_ms: int,
        duration_ms: int,
        count: int,
        seed: int,
    ) -> None:
        self.games = games
        self.buckets = max(1, min(MAX_BUCKETS, duration_ms // MIN_BUCKET_MS))
        self._start = start_ms
        self._duration = duration_ms
        weighted_span = sum(g.popularity * (g.info.end_ms - g.info.start_ms) for g in games)
        self.background = BACKGROUND_RATIO * weighted_span / max(1, duration_ms) or 1.0
        weights = [self.background + sum(t for _, t in self.live(b)) for b in range(self.buckets)]
        cum = list(accumulate(weights))
        rng = random.Random(f"{seed}:profile")
        self.counts = [0] * self.buckets
        remaining = count
        while remaining > 0:
            k = min(_CHOICE_CHUNK, remaining)
            for b in rng.choices(range(self.buckets), cum_weights=cum, k=k):
                self.counts[b] += 1
            remaining -= k

    def bounds(self, bucket: int) -> tuple[int, int]:
        """Inclusive event-time range of a bucket; only the last one includes the timeline end."""
        lo = self._start + self._duration * bucket // self.buckets
        hi = self._start + self._duration * (bucket + 1) // self.buckets
        last = bucket == self.buckets - 1
        return lo, hi if last or hi == lo else hi - 1

    def live(self, bucket: int) -> list[tuple[int, float]]:
        """(game index, intensity term at the bucket's middle) of games live all bucket long.

        Requiring the whole bucket keeps every interaction that carries a game_id inside
        that game's span; a bucket is at most 1/4000 of the timeline, so little is lost.
        """
        lo, hi = self.bounds(bucket)
        mid = (lo + hi) // 2
        out: list[tuple[int, float]] = []
        for i, game in enumerate(self.games):
            if game.info.start_ms <= lo and hi <= game.info.end_ms:
                out.append((i, game.term(mid)))
        return out
