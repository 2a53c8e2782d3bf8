"""The compiled writer gives fastavro's bytes exactly, for every schema version tipoff
writes and random records of them; a record it cannot take goes to fastavro unchanged."""

from __future__ import annotations

import io
import random
import string
from typing import Any

import fastavro
import pytest

from udfs.serde import avsc
from udfs.serde.fastwrite import compile_writer, zigzag

OUTPUTS = ("features/UserFeatures.avsc", "features/GameFeatures.avsc", "ops/DeadLetter.avsc")


def _fastavro(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _value(t: Any, rng: random.Random) -> Any:
    if isinstance(t, list):
        return (
            None
            if "null" in t and rng.random() < 0.3
            else _value(next(x for x in t if x != "null"), rng)
        )
    if isinstance(t, dict):
        kind = t["type"]
        if kind == "enum":
            return rng.choice(t["symbols"])
        if kind == "array":
            return [_value(t["items"], rng) for _ in range(rng.choice([0, 0, 1, 3, 70]))]
        t = kind
    if t == "string":
        alphabet = string.ascii_letters + "é€🏀:-"
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 8, 40, 200])))
    if t in ("int", "long"):
        edge = [0, -1, 1, 63, 64, -64, -65, 8191, -8192, -8193, 65535, 65536, 2**31 - 1, -(2**31)]
        big = [1_795_651_200_000, -(2**63), 2**63 - 1] if t == "long" else []
        return rng.choice([*edge, *big, rng.randrange(-(2**31), 2**31)])
    if t == "double":
        return rng.choice([0.0, -0.0, 1.5, 1e-300, float("inf"), rng.random() * 10])
    if t == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 5, 300])))
    if t == "boolean":
        return rng.random() < 0.5
    raise AssertionError(f"unexpected type {t}")


@pytest.mark.parametrize("rel", OUTPUTS)
def test_every_version_byte_for_byte(rel: str) -> None:
    rng = random.Random(rel)
    versions = avsc.history(rel)
    assert versions
    for schema in versions:
        write = compile_writer(schema)
        assert write is not None, f"{rel}: no compiled writer"
        for _ in range(2_000):
            record = {f["name"]: _value(f["type"], rng) for f in schema["fields"]}
            assert write(record) == _fastavro(schema, record), record


def test_zigzag_matches_the_spec_examples() -> None:
    assert [zigzag(n) for n in (0, -1, 1, -2, 2147483647, -2147483648)] == [
        b"\x00",
        b"\x01",
        b"\x02",
        b"\x03",
        b"\xfe\xff\xff\xff\x0f",
        b"\xff\xff\xff\xff\x0f",
    ]


def test_what_it_cannot_take_is_fastavro_s_to_decide() -> None:
    schema = avsc.load("features/UserFeatures.avsc")
    write = compile_writer(schema)
    assert write is not None
    rng = random.Random(1)
    record = {f["name"]: _value(f["type"], rng) for f in schema["fields"]}
    del record["alerts_opened_1h"]  # fastavro fills a field's default
    assert write(record) == _fastavro(schema, record)
    record["interactions_1m"] = "many"
    with pytest.raises((TypeError, ValueError)):
        write(record)  # as fastavro raises


def test_schemas_it_does_not_handle_get_no_writer() -> None:
    nested = {
        "type": "record",
        "name": "A",
        "fields": [{"name": "m", "type": {"type": "map", "values": "int"}}],
    }
    assert compile_writer(nested) is None
    assert compile_writer({"type": "string"}) is None
    wide = {
        "type": "record",
        "name": "B",
        "fields": [{"name": "u", "type": ["null", "int", "string"]}],
    }
    assert compile_writer(wide) is None
