"""Which version of its Avro schema each simulated producer writes.

GameEvent and UserInteraction are at version 2; producers in the field upgrade at their
own pace. An app older than the release that added `app_version` / `locale` still writes
UserInteraction version 1 (web clients are always current), and a game whose play-by-play
comes from a feed provider that has not upgraded is written with GameEvent version 1 from
its first event to its last. Every record carries the version-2 fields either way;
serializing with version 1 drops them (Avro writes only the writer schema's fields).
"""

from __future__ import annotations

import functools
import random

from flink_jobs.sim.clients import version_key

CURRENT_VERSION = 2
# `tipoff simulate --schema-version`: every record at version 1, at version 2, or each
# record at the version its producer writes.
MODES = ("1", "2", "mixed")
# First app release per platform that writes UserInteraction version 2.
V2_SINCE: dict[str, str] = {"IOS": "8.14.0", "ANDROID": "8.14.0", "TV": "3.4.0"}
# Share of games whose feed provider still writes GameEvent version 1.
FEED_V1_SHARE = 0.4


@functools.cache  # a few dozen (device, release) pairs, asked once per interaction
def interaction_version(device: str, app_version: str | None) -> int:
    """Version written by the client: 1 for an app older than V2_SINCE, else 2."""
    since = V2_SINCE.get(device)
    if since is None or app_version is None:
        return CURRENT_VERSION  # the web
    return CURRENT_VERSION if version_key(app_version) >= version_key(since) else 1


def v1_feed_games(seed: int, games: int) -> frozenset[int]:
    """Indices of the games whose feed provider writes version 1: FEED_V1_SHARE of them,
    rounded, but with two games or more always at least one of each version."""
    k = round(FEED_V1_SHARE * games)
    if games >= 2:
        k = min(games - 1, max(1, k))
    return frozenset(random.Random(f"{seed}:feeds").sample(range(games), k))


def choose(mode: str, writer_version: int) -> int:
    """The schema version to serialize a record with under `mode` (see MODES)."""
    if mode == "mixed":
        return writer_version
    if mode in MODES:
        return int(mode)
    raise ValueError(f"schema version must be one of {', '.join(MODES)}, got {mode!r}")


def used_by(mode: str) -> tuple[int, ...]:
    """Every version a record can get under `mode`, lowest first."""
    return (1, CURRENT_VERSION) if mode == "mixed" else (choose(mode, CURRENT_VERSION),)
