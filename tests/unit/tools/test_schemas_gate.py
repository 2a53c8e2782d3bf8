"""`tipoff schemas check` as a compatibility gate, and `register`'s history seeding, without a
registry: --against another avro_schemas/ directory, the per-role default levels, exit codes,
and a fake registry client for the registry paths."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import RegisteredSchema, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs import cli
from flink_jobs.settings import Settings, Topics
from flink_jobs.tools import schemas
from udfs.serde import avsc

RELEASE_1 = avsc.SCHEMAS_DIR / "releases" / "1"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default topic names, no external services, nothing read from the real state folder."""
    for name in [*Topics().env(), "KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIPOFF_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TIPOFF_CACHE_DIR", str(tmp_path / "cache"))


def settings() -> Settings:
    return Settings.load({"HOME": "/nonexistent"})


def copy_schemas(dest: Path, releases: bool = False) -> Path:
    """A copy of the repository's avro_schemas/ (current files; releases/ only if asked)."""
    ignore = None if releases else shutil.ignore_patterns("releases", "__pycache__")
    shutil.copytree(avsc.SCHEMAS_DIR, dest, ignore=ignore)
    return dest


def edit(base: Path, rel: str, change: Callable[[dict[str, Any]], None]) -> None:
    schema = avsc.load(rel, base)
    change(schema)
    (base / rel).write_text(json.dumps(schema, indent=2))


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(schema: dict[str, Any]) -> None:
        schema["fields"] = [f for f in schema["fields"] if f["name"] != name]

    return change


def add(new_field: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda schema: schema["fields"].append(new_field)


def by_file(reports: list[schemas.SubjectReport]) -> dict[str, schemas.SubjectReport]:
    return {r.file: r for r in reports}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["schemas", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- levels -------------------------------------------------------------------------------


def test_default_level_per_role() -> None:
    """Inputs (events/) are BACKWARD_TRANSITIVE, outputs (features/, ops/) FULL_TRANSITIVE."""
    levels = {rel: schemas.default_level(rel) for rel in Topics().schema_of().values()}
    assert levels == {
        "events/GameEvent.avsc": "BACKWARD_TRANSITIVE",
        "events/UserInteraction.avsc": "BACKWARD_TRANSITIVE",
        "features/UserFeatures.avsc": "FULL_TRANSITIVE",
        "features/GameFeatures.avsc": "FULL_TRANSITIVE",
        "ops/DeadLetter.avsc": "FULL_TRANSITIVE",
    }
    reports = schemas.check_against(settings(), None, RELEASE_1, None)
    assert {r.file: r.level for r in reports} == levels


def test_help_explains_levels_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["schemas", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for word in ("BACKWARD", "FORWARD", "FULL", "_TRANSITIVE", "NONE", "--against DIR"):
        assert word in text
    assert "features/UserFeatures.avsc   FULL_TRANSITIVE" in text
    assert "events/GameEvent.avsc        BACKWARD_TRANSITIVE" in text


# --- --against ----------------------------------------------------------------------------


def test_v2_additions_pass_against_release_1_and_full_history() -> None:
    """The version-2 fields all have defaults: compatible with release 1 at the default
    levels, and with the whole history (releases + current files) of this checkout."""
    for against in (RELEASE_1, avsc.SCHEMAS_DIR):
        reports = schemas.check_against(settings(), None, against, None)
        assert [r.problems for r in reports] == [[]] * 5
        assert all(r.ok and r.versions >= 1 for r in reports)
    full = by_file(schemas.check_against(settings(), None, avsc.SCHEMAS_DIR, None))
    assert full["events/GameEvent.avsc"].versions == 2
    assert full["features/GameFeatures.avsc"].versions == 1


def test_output_field_removed_without_default_fails_full_transitive(tmp_path: Path) -> None:
    """Dropping last_active_at (no default) from UserFeatures breaks consumers still on the
    older versions; FULL_TRANSITIVE catches it against each, BACKWARD alone would not."""
    local = copy_schemas(tmp_path / "local")
    edit(local, "features/UserFeatures.avsc", drop("last_active_at"))
    reports = by_file(schemas.check_against(settings(), local, avsc.SCHEMAS_DIR, None))
    uf = reports["features/UserFeatures.avsc"]
    assert not uf.ok and uf.level == "FULL_TRANSITIVE"
    assert {p.path for p in uf.problems} == {"UserFeatures.last_active_at"}
    assert {p.change for p in uf.problems} == {"field removed without default"}
    assert len(uf.problems) == 2  # against version 2 and version 1
    assert "consumers still on version 1" in " ".join(p.message for p in uf.problems)
    assert all(r.ok for f, r in reports.items() if f != "features/UserFeatures.avsc")

    lenient = schemas.check_against(settings(), local, avsc.SCHEMAS_DIR, "backward")
    assert all(r.ok for r in lenient)
    assert {r.level for r in lenient} == {"BACKWARD"}


def test_input_field_added_without_default_fails(tmp_path: Path) -> None:
    local = copy_schemas(tmp_path / "local")
    edit(local, "events/GameEvent.avsc", add({"name": "attendance", "type": "int"}))
    ge = by_file(schemas.check_against(settings(), local, avsc.SCHEMAS_DIR, None))[
        "events/GameEvent.avsc"
    ]
    assert not ge.ok and ge.level == "BACKWARD_TRANSITIVE"
    assert {(p.path, p.change) for p in ge.problems} == {
        ("GameEvent.attendance", "field added without default")
    }
    message = ge.problems[0].message
    assert "consumers on the new schema cannot read data written with version 2" in message
    assert '"default"' in message  # how to fix it


def test_field_type_change_is_explained(tmp_path: Path) -> None:
    """int -> long on an output: new readers promote old ints, but consumers still on the
    older versions cannot read a long as an int, and the message says so."""
    local = copy_schemas(tmp_path / "local")
    edit(
        local,
        "features/UserFeatures.avsc",
        lambda s: field(s, "alerts_opened_1h").update(type="long"),
    )
    uf = by_file(schemas.check_against(settings(), local, avsc.SCHEMAS_DIR, None))[
        "features/UserFeatures.avsc"
    ]
    assert not uf.ok
    assert [(p.path, p.change) for p in uf.problems] == [
        ("UserFeatures.alerts_opened_1h", "type changed")
    ]  # only version 2 has the field; version 1 readers skip it
    message = uf.problems[0].message
    assert "type changed from int to long" in message
    assert "consumers still on version 2" in message
    assert "Avro only promotes" in message


def test_contract_missing_from_against_dir_is_new(tmp_path: Path) -> None:
    old = copy_schemas(tmp_path / "old")
    (old / "ops/DeadLetter.avsc").unlink()
    reports = by_file(schemas.check_against(settings(), None, old, None))
    assert reports["ops/DeadLetter.avsc"].versions == 0 and reports["ops/DeadLetter.avsc"].ok
    assert any(
        line.startswith("NEW") and "ops/DeadLetter.avsc" in line
        for line in schemas.render(list(reports.values()))
    )


def test_bad_against_dirs_are_named(tmp_path: Path) -> None:
    with pytest.raises(schemas.CheckError, match="missing: no such directory"):
        schemas.check_against(settings(), None, tmp_path / "missing", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(schemas.CheckError, match=r"empty: no \.avsc files"):
        schemas.check_against(settings(), None, tmp_path / "empty", None)
    copy_schemas(tmp_path / "checkout" / "avro_schemas")
    with pytest.raises(schemas.CheckError, match=r"did you mean .*checkout/avro_schemas"):
        schemas.check_against(settings(), None, tmp_path / "checkout", None)


# --- exit codes ---------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--against", str(avsc.SCHEMAS_DIR))
    assert code == 0, out
    assert out.count("OK ") == 5

    local = copy_schemas(tmp_path / "local")
    edit(local, "events/GameEvent.avsc", add({"name": "attendance", "type": "int"}))
    code, out, err = run(
        capsys, "check", "--schemas-dir", str(local), "--against", str(avsc.SCHEMAS_DIR)
    )
    assert code == 1
    assert "INCOMPATIBLE" in out and "GameEvent.attendance" in out
    assert "sports.game_events-value" in err

    # the same change passes at an explicit level that does not look at old data
    args = ["--schemas-dir", str(local), "--against", str(RELEASE_1), "--level", "forward"]
    code, out, _ = run(capsys, "check", *args)
    assert code == 0, out

    code, _, err = run(capsys, "check", "--against", str(tmp_path / "nope"))
    assert code == 2 and "nope: no such directory" in err

    code, _, err = run(capsys, "register", "--against", str(avsc.SCHEMAS_DIR))
    assert code == 2 and "apply to `tipoff schemas check` only" in err

    with pytest.raises(SystemExit) as bad_level:
        cli.main(["schemas", "check", "--level", "SIDEWAYS"])
    assert bad_level.value.code == 2


def test_cli_broken_local_schema_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = copy_schemas(tmp_path / "local")
    (local / "events/UserInteraction.avsc").write_text("{not json")
    code, _, err = run(capsys, "check", "--schemas-dir", str(local), "--against", str(RELEASE_1))
    assert code == 2 and "UserInteraction.avsc is not valid JSON" in err


def test_cli_unreachable_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")
    code, _, err = run(capsys, "check")
    assert code == 2
    assert "http://127.0.0.1:1 does not answer" in err and "--against" in err


# --- registry paths, with a fake client ---------------------------------------------------


class FakeRegistry:
    """The calls `register` and `check_all` make, over subjects -> list of schema strings."""

    def __init__(self, subjects: dict[str, list[str]], level: str = "BACKWARD") -> None:
        self.subjects = subjects
        self.level = level
        self.ids: dict[str, int] = {}
        self.asked: list[str] = []
        self.verdict = True

    def _id(self, text: str) -> int:
        return self.ids.setdefault(text, len(self.ids) + 1)

    def lookup_schema(self, subj: str, schema: Schema) -> RegisteredSchema:
        held = self.subjects.get(subj, [])
        if schema.schema_str not in held:
            raise SchemaRegistryError(404, 40403, "no such schema")
        number = held.index(schema.schema_str) + 1
        return RegisteredSchema(subj, number, self._id(schema.schema_str), None, schema)

    def register_schema(self, subj: str, schema: Schema) -> int:
        held, text = self.subjects.setdefault(subj, []), schema.schema_str or ""
        if text not in held:
            held.append(text)
        return self._id(text)

    def get_subjects(self) -> list[str]:
        return list(self.subjects)

    def get_versions(self, subj: str) -> list[int]:
        return list(range(1, len(self.subjects[subj]) + 1))

    def get_version(self, subj: str, version: int) -> RegisteredSchema:
        text = self.subjects[subj][version - 1]
        return RegisteredSchema(subj, version, self._id(text), None, Schema(text, "AVRO"))

    def get_compatibility(self, subj: str) -> str:
        return self.level

    def test_compatibility(self, subj: str, schema: Schema) -> bool:
        self.asked.append("latest")
        return self.verdict

    def test_compatibility_all_versions(self, subj: str, schema: Schema) -> bool:
        self.asked.append("all")
        return self.verdict


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeRegistry]:
    def install(subjects: dict[str, list[str]], level: str = "BACKWARD") -> FakeRegistry:
        client = FakeRegistry(subjects, level)
        monkeypatch.setattr(schemas, "registry", lambda url: client)
        monkeypatch.setattr(schemas, "registry_ok", lambda url: True)
        monkeypatch.setattr(schemas, "create_topics", lambda *a, **k: {})
        monkeypatch.setattr(schemas, "admin", lambda bootstrap: None)
        return client

    return install


def text(rel: str, base: Path = avsc.SCHEMAS_DIR) -> str:
    return avsc.canonical(avsc.load(rel, base))


def test_register_seeds_history_oldest_first(fake: Callable[..., FakeRegistry]) -> None:
    client = fake({})
    lines: list[str] = []
    ids = schemas.register(settings(), 1, None, log=lines.append)
    ge = "sports.game_events-value"
    ge_history = [text("events/GameEvent.avsc", RELEASE_1), text("events/GameEvent.avsc")]
    assert client.subjects[ge] == ge_history
    assert len(client.subjects["sports.user_interactions-value"]) == 2
    assert len(client.subjects["features.game-value"]) == 1
    assert ids[ge] == client.ids[text("events/GameEvent.avsc")]  # the current version's id
    assert sum(ge in line and "registered" in line for line in lines) == 2

    again: list[str] = []
    assert schemas.register(settings(), 1, None, log=again.append) == ids
    assert sum("already version" in line for line in again) == 8  # 3 x 2 + 2 x 1


def test_register_adds_no_older_version_after_a_later_one(
    fake: Callable[..., FakeRegistry],
) -> None:
    """A subject seeded with the current file only does not get release 1 appended after it,
    where it would become the latest version."""
    ge = "sports.game_events-value"
    client = fake({ge: [text("events/GameEvent.avsc")]})
    lines: list[str] = []
    schemas.register(settings(), 1, None, log=lines.append)
    assert client.subjects[ge] == [text("events/GameEvent.avsc")]
    assert any(ge in line and "not added" in line for line in lines)


def test_register_keeps_the_409_explanation(
    fake: Callable[..., FakeRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fake({})

    def refuse(subj: str, schema: Schema) -> int:
        raise SchemaRegistryError(409, 409, "Incompatible artifact")

    monkeypatch.setattr(client, "register_schema", refuse)
    with pytest.raises(SchemaRegistryError) as refused:
        schemas.register(settings(), 1, None, log=lambda line: None)
    message = refused.value.error_message
    assert refused.value.http_status_code == 409
    assert "events/GameEvent.avsc (version 1 of 2, from releases/)" in message
    assert "Incompatible artifact" in message and "tipoff schemas check" in message


def test_check_all_uses_role_levels_and_the_registry_verdict(
    fake: Callable[..., FakeRegistry],
) -> None:
    history = [text("features/UserFeatures.avsc", RELEASE_1), text("features/UserFeatures.avsc")]
    client = fake({"features.user-value": history}, level="BACKWARD_TRANSITIVE")
    reports = by_file(schemas.check_all(settings(), None, None))
    uf = reports["features/UserFeatures.avsc"]
    assert (uf.level, uf.versions, uf.ok, uf.registry_says_compatible) == (
        "FULL_TRANSITIVE",
        2,
        True,
        True,
    )
    assert client.asked == ["all"]  # the registry's level is transitive: as register judges
    assert reports["events/GameEvent.avsc"].versions == 0  # NEW, and OK
    assert reports["events/GameEvent.avsc"].ok

    client.level, client.verdict, client.asked = "BACKWARD", False, []
    uf = by_file(schemas.check_all(settings(), None, None))["features/UserFeatures.avsc"]
    assert client.asked == ["latest"] and not uf.ok and uf.problems == []
    assert any("registry would refuse" in line for line in schemas.render([uf]))

    client.asked = []
    uf = by_file(schemas.check_all(settings(), None, "FULL"))["features/UserFeatures.avsc"]
    assert client.asked == [] and uf.ok and uf.level == "FULL"  # an explicit level alone
