"""The two feature families: their state machines and the entity each event updates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from udfs.features import game, user
from udfs.features.common import Event
from udfs.features.v2 import game as game_v2
from udfs.features.v2 import user as user_v2


def user_key(ev: Event) -> str | None:
    return str(ev.record["user_id"]) if ev.kind == "interaction" else None


def game_key(ev: Event) -> str | None:
    gid = ev.record.get("game_id")
    return str(gid) if gid else None


@dataclass(frozen=True)
class Family:
    job: str  # the job's name, also in its dead letters
    machine: ModuleType  # the first generation: offer / on_tick / new_state (release 2)
    key_of: Callable[[Event], str | None]  # None: the event updates nothing in this family
    engine: ModuleType  # the second generation (udfs.features.v2), driven by v2.runtime


FAMILIES = {
    "user": Family("user-features", user, user_key, user_v2),
    "game": Family("game-features", game, game_key, game_v2),
}
BY_JOB = {f.job: f for f in FAMILIES.values()}
