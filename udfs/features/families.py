"""The two feature families: their state machine and the entity each event updates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from udfs.features import game, user
from udfs.features.common import Event


def user_key(ev: Event) -> str | None:
    return str(ev.record["user_id"]) if ev.kind == "interaction" else None


def game_key(ev: Event) -> str | None:
    gid = ev.record.get("game_id")
    return str(gid) if gid else None


@dataclass(frozen=True)
class Family:
    job: str  # the job's name, also in its dead letters
    machine: ModuleType  # offer / on_tick / new_state
    key_of: Callable[[Event], str | None]  # None: the event updates nothing in this family


FAMILIES = {
    "user": Family("user-features", user, user_key),
    "game": Family("game-features", game, game_key),
}
BY_JOB = {f.job: f for f in FAMILIES.values()}
