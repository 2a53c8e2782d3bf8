"""Writer-schema lookup: snapshot, disk cache, retries while the registry is unreachable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from udfs.serde import avsc
from udfs.serde.registry import (
    DiskCache,
    Registry,
    RegistryOutage,
    RegistryUnavailable,
    Retry,
    WriterSchemas,
)

SUBJECT = "events.game-value"
TEXT = avsc.canonical(avsc.load("events/GameEvent.avsc"))


class FakeRegistry(Registry):
    """Answers from a dict, or is down; counts the calls that reached it."""

    def __init__(self, schemas: dict[int, str], down: bool = False) -> None:
        super().__init__("http://registry.test:8085/apis/ccompat/v7")
        self.schemas, self.down, self.calls = schemas, down, 0

    def schema(self, schema_id: int) -> str | None:
        self.calls += 1
        if self.down:
            raise RegistryUnavailable("connection refused")
        return self.schemas.get(schema_id)

    def subjects_of(self, schema_id: int) -> set[str]:
        return {SUBJECT} if schema_id in self.schemas else set()


def test_snapshot_ids_need_no_registry() -> None:
    reg = FakeRegistry({}, down=True)
    lookup = WriterSchemas(reg, SUBJECT, known={7: TEXT})
    assert lookup(7)["name"] == "tipoff.events.GameEvent"
    assert reg.calls == 0


def test_learned_ids_survive_a_restart_on_disk(tmp_path: Path) -> None:
    up = FakeRegistry({9: TEXT})
    WriterSchemas(up, SUBJECT, disk=DiskCache(str(tmp_path), up.url))(9)
    down = FakeRegistry({}, down=True)
    again = WriterSchemas(down, SUBJECT, disk=DiskCache(str(tmp_path), up.url))
    assert again(9)["name"] == "tipoff.events.GameEvent"
    assert down.calls == 0


def test_a_corrupt_cache_file_is_asked_again(tmp_path: Path) -> None:
    reg = FakeRegistry({9: TEXT})
    disk = DiskCache(str(tmp_path), reg.url)
    disk.dir.mkdir(parents=True)
    (disk.dir / "9.json").write_text("{half")
    assert WriterSchemas(reg, SUBJECT, disk=disk)(9)["name"] == "tipoff.events.GameEvent"
    assert json.loads((disk.dir / "9.json").read_text())["subjects"] == [SUBJECT]


def test_unknown_id_while_registry_down_retries_with_backoff_then_raises() -> None:
    reg = FakeRegistry({}, down=True)
    slept: list[float] = []
    retried: list[str] = []
    lookup = WriterSchemas(
        reg,
        SUBJECT,
        retry=Retry(first_s=0.5, factor=2, max_s=4, budget_s=10),
        sleep=slept.append,
        on_retry=lambda what, _delay: retried.append(what),
    )
    with pytest.raises(RegistryOutage, match=r"schema id 42 .* unreachable for 8s"):
        lookup(42)
    assert slept == [0.5, 1.0, 2.0, 4.0]  # the next, 4 s, would pass the 10 s budget
    assert len(retried) == 4 and reg.calls == 5


def test_registry_back_within_the_budget_resolves() -> None:
    reg = FakeRegistry({42: TEXT}, down=True)

    def sleep(_s: float) -> None:
        reg.down = False  # comes back during the first backoff

    assert WriterSchemas(reg, SUBJECT, sleep=sleep)(42)["name"] == "tipoff.events.GameEvent"
    assert reg.calls == 2


def test_an_id_the_registry_does_not_have_is_unknown_not_an_outage() -> None:
    with pytest.raises(KeyError, match="not in the registry"):
        WriterSchemas(FakeRegistry({}), SUBJECT)(5)


def test_an_id_of_another_subject_is_refused() -> None:
    reg = FakeRegistry({5: TEXT})
    with pytest.raises(KeyError, match="belongs to"):
        WriterSchemas(reg, "other-value")(5)
