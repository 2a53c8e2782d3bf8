"""Version-2 fields and the schema version each record is written with (no Kafka)."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from confluent_kafka.schema_registry import RegisteredSchema, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from flink_jobs.cli import build_parser
from flink_jobs.sim import Emission, SimConfig, Simulation, versions
from flink_jobs.sim.clients import APP_RELEASES
from flink_jobs.sim.leagues import LEAGUES, SHARED_VENUES, venue_of
from flink_jobs.sim.schedule import build_schedule
from flink_jobs.tools.simreport import SendReport, SimulateError, count_sent
from flink_jobs.tools.simulate import encoders
from udfs.serde import avsc

START_MS = 1_700_000_000_000
V2_FIELDS = {"game": {"venue_id", "broadcast_network"}, "interaction": {"app_version", "locale"}}
SCHEMA = {"game": "events/GameEvent.avsc", "interaction": "events/UserInteraction.avsc"}


def chosen(emissions: list[Emission], mode: str) -> list[tuple[str, int]]:
    return [(e.kind, versions.choose(mode, e.writer_version)) for e in emissions]


def test_version_choice_is_deterministic() -> None:
    """Equal configs give the same version for every record, in every mode."""
    cfg = SimConfig(seed=5, start_ms=START_MS, total_events=4_000)
    a, b = list(Simulation(cfg)), list(Simulation(cfg))
    for mode in versions.MODES:
        assert chosen(a, mode) == chosen(b, mode)


@pytest.mark.parametrize("mode", ["1", "2"])
def test_a_fixed_version_writes_only_that_version(mode: str, emissions: list[Emission]) -> None:
    """--schema-version 1 or 2: every record of both topics at that version."""
    assert set(chosen(emissions, mode)) == {("game", int(mode)), ("interaction", int(mode))}


def test_mixed_interleaves_both_versions_on_both_topics(emissions: list[Emission]) -> None:
    """mixed: each fifth of the run has both versions on both topics."""
    fifth = -(-len(emissions) // 5)
    for i in range(5):
        part = emissions[i * fifth : (i + 1) * fifth]
        assert {(kind, v) for kind, v in chosen(part, "mixed")} == {
            ("game", 1),
            ("game", 2),
            ("interaction", 1),
            ("interaction", 2),
        }


def test_mixed_is_per_producer(base_sim: Simulation, emissions: list[Emission]) -> None:
    """A game is written at one version from start to end, ~40% of games at version 1; an
    interaction is at version 1 exactly when it comes from an app older than V2_SINCE, and
    about 40% of users run such an app on their primary device."""
    by_game: dict[str, set[int]] = {}
    for e in emissions:
        if e.kind == "game":
            by_game.setdefault(e.key, set()).add(e.writer_version)
    assert all(len(v) == 1 for v in by_game.values())
    old_games = sum(v == {1} for v in by_game.values())
    assert old_games == round(versions.FEED_V1_SHARE * len(by_game))
    assert {g.game_id for g in base_sim.schedule if g.feed_version == 1} == {
        g for g, v in by_game.items() if v == {1}
    }
    for e in emissions:
        if e.kind == "interaction":
            r = e.record
            since = versions.V2_SINCE.get(r["device"])
            old = since is not None and [int(x) for x in r["app_version"].split(".")] < [
                int(x) for x in since.split(".")
            ]
            assert e.writer_version == (1 if old else 2)
    pop = base_sim.population
    primary = [(pop.device[u], pop.app_version(u, pop.device[u])) for u in range(len(pop))]
    on_old_apps = sum(versions.interaction_version(*p) == 1 for p in primary) / len(pop)
    assert 0.35 <= on_old_apps <= 0.45
    records = [e.writer_version for e in emissions if e.kind == "interaction"]
    assert 0.3 <= records.count(1) / len(records) <= 0.5


@pytest.mark.parametrize("games", [2, 3, 12, 40])
def test_some_games_of_each_version(games: int) -> None:
    """With two games or more, at least one feed writes each version."""
    old = versions.v1_feed_games(9, games)
    assert 1 <= len(old) <= games - 1
    assert old == versions.v1_feed_games(9, games)


def test_invalid_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mixed"):
        versions.choose("3", 2)


def test_cli_option_matches_the_modes() -> None:
    """--schema-version offers the modes, current by default."""
    parser = build_parser()
    assert parser.parse_args(["simulate"]).schema_version == str(versions.CURRENT_VERSION)
    for mode in versions.MODES:
        assert parser.parse_args(["simulate", "--schema-version", mode]).schema_version == mode
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--schema-version", "3"])


@pytest.mark.parametrize("kind", ["game", "interaction"])
def test_version_1_drops_the_new_fields_and_version_2_keeps_them(
    kind: str, originals: list[Emission]
) -> None:
    """A full record written with release 1's schema loses only the version-2 fields (which
    read back as null through the current schema); written with version 2 it is intact."""
    v1, v2 = (parse_schema(s) for s in avsc.history(SCHEMA[kind]))
    records = [e.record for e in originals if e.kind == kind][:300]
    assert any(all(r[f] is not None for f in V2_FIELDS[kind]) for r in records)
    for record in records:
        old = _roundtrip(record, v1, v1)
        assert set(old) == set(record) - V2_FIELDS[kind]
        assert _roundtrip(record, v1, v2) == {**record, **dict.fromkeys(V2_FIELDS[kind])}
        assert _roundtrip(record, v2, v2) == record


def _roundtrip(record: dict[str, Any], writer: Any, reader: Any) -> dict[str, Any]:
    buf = io.BytesIO()
    schemaless_writer(buf, writer, record)
    out = schemaless_reader(io.BytesIO(buf.getvalue()), writer, reader)
    assert isinstance(out, dict)
    out["event_time"] = int(out["event_time"].timestamp() * 1000)
    return out


def test_report_counts_versions(emissions: list[Emission]) -> None:
    """The send report counts records per schema version and prints them."""
    report = SendReport()
    for e in emissions[:2_000]:
        count_sent(report, e, e.kind, versions.choose("mixed", e.writer_version))
    expected = Counter(versions.choose("mixed", e.writer_version) for e in emissions[:2_000])
    assert report.per_version == expected and set(expected) == {1, 2}
    assert f"  schema versions: v1 {expected[1]}, v2 {expected[2]}" in report.lines()


def test_interactions_carry_app_version_and_locale(
    base_sim: Simulation, emissions: list[Emission]
) -> None:
    """app_version: the user's release of the device's app (none on the web), fixed per
    user and device; locale: fixed per user, mostly en-US."""
    pop = base_sim.population
    seen: dict[tuple[str, str], str | None] = {}
    locales: Counter[str] = Counter()
    for e in emissions:
        if e.kind != "interaction":
            continue
        r = e.record
        user = int(r["user_id"][1:])
        assert r["locale"] == pop.locale[user]
        assert r["app_version"] == pop.app_version(user, r["device"])
        if r["device"] == "WEB":
            assert r["app_version"] is None
        else:
            assert r["app_version"] in APP_RELEASES[r["device"]]
        assert seen.setdefault((r["user_id"], r["device"]), r["app_version"]) == r["app_version"]
        locales[r["locale"]] += 1
    assert locales.most_common(1)[0][0] == "en-US"
    assert {"es-US", "en-GB", "fr-CA"} <= set(locales)
    for device, releases in APP_RELEASES.items():
        running = {v for (_, d), v in seen.items() if d == device}
        assert releases[0] in running and len(running) > 1  # not everyone has updated


def test_games_carry_venue_and_broadcast(base_sim: Simulation, emissions: list[Emission]) -> None:
    """venue_id: the home team's venue; broadcast_network: one of the league's national
    networks or null, the same on every event of a game; many games have none."""
    infos = {g.game_id: g for g in base_sim.schedule}
    for e in emissions:
        if e.kind == "game":
            info, r = infos[e.key], e.record
            assert r["venue_id"] == venue_of(r["home_team_id"]) == info.venue_id
            assert r["broadcast_network"] == info.broadcast_network
    many = [p.info for p in build_schedule(3, START_MS, 3_600_000, 200_000, 200)]
    networks = [g.broadcast_network for g in many]
    assert 0.4 <= networks.count(None) / len(networks) <= 0.85
    for g in many:
        assert g.broadcast_network in {None, *dict(LEAGUES[g.league].networks)}
    assert venue_of("nba-nyk") == venue_of("nhl-nyr") == SHARED_VENUES["nba-nyk"]
    assert venue_of("nfl-gb") == "nfl-gb-stadium" and venue_of("nba-lal") == "nba-lal-arena"


class FakeRegistry:
    """Answers lookups from the (subject, schema text) pairs it holds, 404 otherwise."""

    def __init__(self, registered: set[tuple[str, str]]) -> None:
        self.registered = registered
        self.lookups: list[tuple[str, str]] = []

    def lookup_schema(self, subject: str, schema: Schema, **_: Any) -> RegisteredSchema:
        self.lookups.append((subject, schema.schema_str))
        if (subject, schema.schema_str) not in self.registered:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        schema_id = sorted(self.registered).index((subject, schema.schema_str)) + 1
        return RegisteredSchema(subject, 1, schema_id, None, schema)


TOPICS = {"game": "sports.game_events", "interaction": "sports.user_interactions"}
SCHEMA_OF = {TOPICS[k]: rel for k, rel in SCHEMA.items()}


def _registered(*wanted: int) -> set[tuple[str, str]]:
    return {
        (f"{topic}-value", avsc.canonical(avsc.history(rel)[n - 1]))
        for topic, rel in SCHEMA_OF.items()
        for n in wanted
    }


@pytest.mark.parametrize(
    ("mode", "expected"), [("1", {1}), ("2", {2}), ("mixed", {1, 2})], ids=["v1", "v2", "mixed"]
)
def test_encoders_per_version_each_looked_up(mode: str, expected: set[int]) -> None:
    """One encoder spec per topic and version the mode uses, each looked up in the registry
    once, with the id the registry holds; version 1 is release 1's schema, version 2 the
    current file."""
    reg = FakeRegistry(_registered(1, 2))
    specs = encoders(reg, TOPICS, SCHEMA_OF, mode)  # type: ignore[arg-type]
    assert set(specs) == {(kind, n) for kind in TOPICS for n in expected}
    for (kind, n), (text, schema_id) in specs.items():
        held = (f"{TOPICS[kind]}-value", avsc.canonical(avsc.history(SCHEMA[kind])[n - 1]))
        assert text == held[1]
        assert schema_id == sorted(reg.registered).index(held) + 1
    assert set(reg.lookups) == {
        (f"{topic}-value", avsc.canonical(avsc.history(rel)[n - 1]))
        for topic, rel in SCHEMA_OF.items()
        for n in expected
    }
    assert avsc.history(SCHEMA["game"])[0] == avsc.load(SCHEMA["game"], avsc.releases()[0])
    assert avsc.history(SCHEMA["game"])[-1] == avsc.load(SCHEMA["game"])


@pytest.mark.parametrize("mode", ["1", "mixed"])
def test_missing_version_1_says_to_register(mode: str) -> None:
    """A registry holding only the current versions: the run stops before sending anything
    and tells the user to run `tipoff schemas register`."""
    with pytest.raises(SimulateError, match=r"version 1 of .* not registered.*schemas register"):
        encoders(FakeRegistry(_registered(2)), TOPICS, SCHEMA_OF, mode)  # type: ignore[arg-type]
