"""Confluent wire-format decoding with schema resolution, and the input validity rules."""

from __future__ import annotations

import io
import struct

import fastavro
import pytest

from udfs.serde import avsc
from udfs.serde.validate import EARLIEST_EVENT_TIME, problems
from udfs.serde.wire import Codec, DecodeFailure, parse

GAME_V1, GAME = avsc.history("events/GameEvent.avsc")  # release 1, and the current v2
NOW = 1_790_000_000_000
VALID = {
    "event_id": "g-1",
    "game_id": "g",
    "league": "NBA",
    "event_type": "SCORE",
    "team_id": "h",
    "player_id": None,
    "points": 2,
    "home_team_id": "h",
    "away_team_id": "a",
    "home_score": 2,
    "away_score": 0,
    "period": 1,
    "clock_seconds_remaining": 700,
    "sequence": 2,
    "revision": 0,
    "event_time": NOW - 1000,
    "venue_id": "arena-h",
    "broadcast_network": None,
}
VALID_V1 = {k: v for k, v in VALID.items() if k not in ("venue_id", "broadcast_network")}


def wire(schema: dict, record: dict, schema_id: int) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


WRITERS = {1: parse(GAME_V1), 2: parse(GAME)}


def lookup(schema_id: int) -> object:
    if schema_id not in WRITERS:
        raise KeyError(f"schema id {schema_id} is not in the registry")
    return WRITERS[schema_id]


CODEC = Codec(parse(GAME), 2, lookup)  # the current build: v2 reader
CODEC_V1 = Codec(parse(GAME_V1), 1, lookup)  # a release-1 build


def test_roundtrip_keeps_timestamps_as_epoch_ms() -> None:
    """encode then decode gives the same record, event_time staying an int."""
    assert CODEC.decode(CODEC.encode(VALID)) == VALID


def test_a_v1_build_reads_v2_records_dropping_the_new_fields() -> None:
    assert CODEC_V1.decode(wire(GAME, VALID, 2)) == VALID_V1


def test_a_v2_build_reads_v1_records_with_the_defaults() -> None:
    assert CODEC.decode(wire(GAME_V1, VALID_V1, 1)) == {**VALID, "venue_id": None}


@pytest.mark.parametrize(
    ("value", "reason", "text"),
    [
        (None, "DECODE_ERROR", "empty"),
        (b"", "DECODE_ERROR", "empty"),
        (b"\x00\x00", "DECODE_ERROR", "header"),
        (b"\x01" + wire(GAME, VALID, 2)[1:], "DECODE_ERROR", "magic"),
        (wire(GAME, VALID, 2)[:-3], "DECODE_ERROR", "Avro decode failed"),
        (wire(GAME, VALID, 2) + b"xx", "DECODE_ERROR", "trailing"),
        (wire(GAME, VALID, 7), "UNKNOWN_SCHEMA", "schema id 7"),
    ],
    ids=["null", "empty", "short", "magic", "truncated", "trailing", "unknown-id"],
)
def test_undecodable_values(value: bytes | None, reason: str, text: str) -> None:
    """Each kind of bad value fails with its dead-letter reason and a telling error."""
    with pytest.raises(DecodeFailure) as e:
        CODEC.decode(value)
    assert e.value.reason == reason and text in e.value.error


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        ({"game_id": ""}, ["game_id is null or empty"]),
        ({"points": -1}, ["points is negative (-1)"]),
        ({"event_type": "FOUL"}, ["points 2 on a FOUL event (only SCORE scores)"]),
        ({"event_time": EARLIEST_EVENT_TIME - 1}, ["before 2000-01-01"]),
        ({"event_time": NOW + 24 * 3_600_000 + 1}, ["more than 24 h ahead"]),
        ({"event_time": NOW + 24 * 3_600_000}, []),
    ],
    ids=["valid", "empty-id", "negative", "points-not-score", "before-2000", "future", "24h-ok"],
)
def test_game_event_rules(change: dict, expected: list[str]) -> None:
    """A decoded GameEvent is INVALID exactly when it breaks one of product.md's rules."""
    got = problems("game", {**VALID, **change}, NOW)
    assert len(got) == len(expected) and all(e in g for e, g in zip(expected, got, strict=True))


@pytest.mark.parametrize(
    ("record", "ok"),
    [
        ({"event_id": "i", "user_id": "u", "action": "CLICK", "event_time": NOW}, True),
        ({"event_id": "i", "user_id": None, "action": "CLICK", "event_time": NOW}, False),
        ({"event_id": "i", "user_id": "u", "action": "FOLLOW_TEAM", "event_time": NOW}, False),
        (
            {
                "event_id": "i",
                "user_id": "u",
                "action": "UNFOLLOW_TEAM",
                "team_id": "t",
                "event_time": NOW,
            },
            True,
        ),
    ],
    ids=["valid", "null-user", "follow-without-team", "unfollow-with-team"],
)
def test_interaction_rules(record: dict, ok: bool) -> None:
    """Interactions need event and user ids, and follows need a team."""
    assert (problems("interaction", record, NOW) == []) is ok
