"""The two feature families: their state machines and the entity each event updates; and
each job's family (the job table, udfs.jobs, says which family a job computes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from udfs import jobs
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
    name: str  # "user" / "game"
    machine: ModuleType  # the first generation: offer / on_tick / new_state (release 2)
    key_of: Callable[[Event], str | None]  # None: the event updates nothing in this family
    engine: ModuleType  # the second generation (udfs.features.v2), driven by v2.runtime


FAMILIES = {
    "user": Family("user", user, user_key, user_v2),
    "game": Family("game", game, game_key, game_v2),
}
BY_JOB = {j.name: FAMILIES[j.family] for j in jobs.JOBS}
