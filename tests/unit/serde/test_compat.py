"""Tests for udfs.serde.compat: Avro schema resolution rules and registry compatibility levels."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from udfs.serde.compat import LEVELS, Incompatibility, check, reader_can_read

GAME_EVENT = Path(__file__).resolve().parents[3] / "avro_schemas" / "events" / "GameEvent.avsc"


def rec(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A record schema with the given fields."""
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def fld(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    """A record field."""
    return {"name": name, "type": type_, **extra}


def in_r(type_: Any) -> dict[str, Any]:
    """Wrap a type as field `f` of record `R`, so problems get the path `R.f`."""
    return rec("R", fld("f", type_))


def enum(name: str, *symbols: str, **extra: Any) -> dict[str, Any]:
    """An enum schema."""
    return {"type": "enum", "name": name, "symbols": list(symbols), **extra}


def fixed(name: str, size: int) -> dict[str, Any]:
    """A fixed schema."""
    return {"type": "fixed", "name": name, "size": size}


TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
LINKED = rec("Node", fld("value", "int"), fld("next", ["null", "Node"], default=None))
LINKED_STR = rec("Node", fld("value", "string"), fld("next", ["null", "Node"], default=None))
WITH_REF = rec(
    "Outer",
    fld("color", enum("Color", "RED", "GREEN")),
    fld("again", "Color"),
    fld("qualified", "tipoff.Color"),
    namespace="tipoff",
)
WITH_REF_SMALL = rec(
    "Outer",
    fld("color", enum("Color", "RED")),
    fld("again", "Color"),
    fld("qualified", "tipoff.Color"),
    namespace="tipoff",
)

COMPATIBLE = [
    pytest.param("string", "string", id="same-primitive"),
    pytest.param(in_r("long"), in_r("int"), id="int-to-long"),
    pytest.param(in_r("float"), in_r("int"), id="int-to-float"),
    pytest.param(in_r("double"), in_r("int"), id="int-to-double"),
    pytest.param(in_r("float"), in_r("long"), id="long-to-float"),
    pytest.param(in_r("double"), in_r("long"), id="long-to-double"),
    pytest.param(in_r("double"), in_r("float"), id="float-to-double"),
    pytest.param(in_r("bytes"), in_r("string"), id="string-to-bytes"),
    pytest.param(in_r("string"), in_r("bytes"), id="bytes-to-string"),
    pytest.param(in_r(TS_MILLIS), in_r("long"), id="logical-reader"),
    pytest.param(in_r("long"), in_r(TS_MILLIS), id="logical-writer"),
    pytest.param(
        rec("R", fld("a", "int"), fld("b", "int", default=0)),
        rec("R", fld("a", "int")),
        id="field-added-with-default",
    ),
    pytest.param(
        rec("R", fld("a", "int"), fld("b", ["null", "int"], default=None)),
        rec("R", fld("a", "int")),
        id="nullable-added-default-null",
    ),
    pytest.param(
        rec("R", fld("a", "int")),
        rec("R", fld("a", "int"), fld("b", "int")),
        id="writer-field-dropped",
    ),
    pytest.param(
        rec("R", fld("new", "int", aliases=["old"])),
        rec("R", fld("old", "int")),
        id="field-reader-alias",
    ),
    pytest.param(
        rec("New", fld("a", "int"), aliases=["Old"]),
        rec("Old", fld("a", "int")),
        id="record-reader-alias",
    ),
    pytest.param(
        rec("New", fld("a", "int"), namespace="n", aliases=["o.Old"]),
        rec("Old", fld("a", "int"), namespace="o"),
        id="record-full-alias",
    ),
    pytest.param(
        rec("R", fld("a", "int"), namespace="x"),
        rec("R", fld("a", "int"), namespace="y"),
        id="record-other-namespace",
    ),
    pytest.param(in_r(enum("E", "A", "B")), in_r(enum("E", "A")), id="enum-symbol-added-to-reader"),
    pytest.param(
        in_r(enum("E", "A", "U", default="U")), in_r(enum("E", "A", "B")), id="enum-reader-default"
    ),
    pytest.param(
        in_r({"type": "array", "items": "long"}),
        in_r({"type": "array", "items": "int"}),
        id="array-item-promotion",
    ),
    pytest.param(
        in_r({"type": "map", "values": "double"}),
        in_r({"type": "map", "values": "float"}),
        id="map-value-promotion",
    ),
    pytest.param(in_r(fixed("F", 16)), in_r(fixed("F", 16)), id="fixed-same"),
    pytest.param(
        in_r(["null", "string", "int"]), in_r(["null", "string"]), id="union-writer-subset"
    ),
    pytest.param(in_r(["string", "null"]), in_r(["null", "string"]), id="union-reader-reordered"),
    pytest.param(in_r(["null", "string"]), in_r("string"), id="plain-writer-union-reader"),
    pytest.param(in_r(["null", "long"]), in_r("int"), id="plain-writer-promoted-into-union"),
    pytest.param(in_r("long"), in_r(["int", "long"]), id="union-writer-plain-reader"),
    pytest.param(WITH_REF, WITH_REF_SMALL, id="named-references"),
    pytest.param(LINKED, LINKED, id="recursive"),
]

INCOMPATIBLE = [
    pytest.param(in_r("int"), in_r("long"), "type changed", "R.f", id="long-to-int"),
    pytest.param(in_r("float"), in_r("double"), "type changed", "R.f", id="double-to-float"),
    pytest.param(in_r("int"), in_r("string"), "type changed", "R.f", id="string-to-int"),
    pytest.param("int", "string", "type changed", "<root>", id="root-primitive"),
    pytest.param(
        in_r(enum("E", "A")),
        in_r(rec("E", fld("a", "int"))),
        "type changed",
        "R.f",
        id="record-to-enum",
    ),
    pytest.param(
        rec("R", fld("a", "int"), fld("g", "int")),
        rec("R", fld("a", "int")),
        "field added without default",
        "R.g",
        id="field-added-no-default",
    ),
    pytest.param(
        in_r(enum("E", "A")),
        in_r(enum("E", "A", "B")),
        "enum symbol removed",
        "R.f",
        id="enum-symbol-removed",
    ),
    pytest.param(
        in_r({"type": "array", "items": "int"}),
        in_r({"type": "array", "items": "string"}),
        "type changed",
        "R.f[]",
        id="array-items",
    ),
    pytest.param(
        in_r({"type": "map", "values": "int"}),
        in_r({"type": "map", "values": "string"}),
        "type changed",
        "R.f{}",
        id="map-values",
    ),
    pytest.param(
        in_r(fixed("F", 8)), in_r(fixed("F", 16)), "fixed size changed", "R.f", id="fixed-size"
    ),
    pytest.param(
        in_r(fixed("G", 16)), in_r(fixed("F", 16)), "name changed", "R.f", id="fixed-name"
    ),
    pytest.param(
        rec("New", fld("a", "int")),
        rec("Old", fld("a", "int")),
        "name changed",
        "New",
        id="record-renamed",
    ),
    pytest.param(
        in_r(["null", "string"]),
        in_r(["null", "string", "int"]),
        "union branch missing",
        "R.f",
        id="union-branch-dropped",
    ),
    pytest.param(
        in_r("string"),
        in_r(["null", "string"]),
        "union branch missing",
        "R.f",
        id="union-writer-plain-reader",
    ),
    pytest.param(
        in_r(["null", "string"]),
        in_r("int"),
        "union branch missing",
        "R.f",
        id="plain-writer-union-reader",
    ),
    pytest.param(
        in_r(rec("Inner", fld("x", "string"))),
        in_r(rec("Inner", fld("x", "int"))),
        "type changed",
        "R.f.x",
        id="nested-record",
    ),
    pytest.param(
        in_r({"type": "array", "items": rec("I", fld("x", "int"), fld("y", "int"))}),
        in_r({"type": "array", "items": rec("I", fld("x", "int"))}),
        "field added without default",
        "R.f[].y",
        id="array-of-records",
    ),
    pytest.param(LINKED_STR, LINKED, "type changed", "Node.value", id="recursive"),
]


@pytest.mark.parametrize(("reader", "writer"), COMPATIBLE)
def test_reader_can_read_compatible(reader: Any, writer: Any) -> None:
    """A reader the resolution rules allow reports no incompatibility."""
    assert reader_can_read(reader, writer) == []


@pytest.mark.parametrize(("reader", "writer", "change", "path"), INCOMPATIBLE)
def test_reader_can_read_incompatible(reader: Any, writer: Any, change: str, path: str) -> None:
    """A broken resolution rule yields one problem of the right kind, at the right path."""
    problems = reader_can_read(reader, writer)
    assert [(p.change, p.path) for p in problems] == [(change, path)]
    assert problems[0].message.startswith(f"{path}: ")
    assert "readers using the reader schema cannot read data written with the writer schema" in (
        problems[0].message
    )


def test_writer_union_reports_each_unreadable_branch() -> None:
    """Every writer union branch the reader cannot take is reported on its own."""
    problems = reader_can_read(in_r("string"), in_r(["null", "int", "string"]))
    assert [p.change for p in problems] == ["union branch missing"] * 2
    assert "null" in problems[0].message and "int" in problems[1].message


def test_named_type_reference_is_checked_at_every_use() -> None:
    """A named type referenced by short and full name is resolved and checked at each field."""
    problems = reader_can_read(WITH_REF_SMALL, WITH_REF)
    assert [(p.change, p.path) for p in problems] == [
        ("enum symbol removed", "Outer.color"),
        ("enum symbol removed", "Outer.again"),
        ("enum symbol removed", "Outer.qualified"),
    ]
    assert "GREEN" in problems[0].message


def test_unknown_type_name_is_rejected() -> None:
    """A reference to an undefined named type is a ValueError, not a silent pass."""
    with pytest.raises(ValueError, match="Missing"):
        reader_can_read(in_r("Missing"), in_r("int"))


V1 = rec("R", fld("a", "int"))
V2 = rec("R", fld("a", "int"), fld("b", "string", default=""))
V3 = rec("R", fld("a", "int"), fld("b", "string"))
F1 = rec("R", fld("a", "int"), fld("b", "string"))
F2 = rec("R", fld("a", "int"), fld("b", "string", default=""))
F3 = rec("R", fld("a", "int"))

LEVEL_CASES = [
    pytest.param(
        rec("R", fld("a", "int"), fld("b", "int")),
        [V1],
        "BACKWARD",
        ["field added without default"],
        id="backward-add-no-default",
    ),
    pytest.param(rec("R"), [V1], "BACKWARD", [], id="backward-remove-field"),
    pytest.param(
        rec("R"), [V1], "FORWARD", ["field removed without default"], id="forward-remove-no-default"
    ),
    pytest.param(
        rec("R", fld("a", "int"), fld("b", "int")), [V1], "FORWARD", [], id="forward-add-no-default"
    ),
    pytest.param(
        in_r(enum("E", "A", "B")),
        [in_r(enum("E", "A"))],
        "FORWARD",
        ["enum symbol added"],
        id="forward-enum-symbol-added",
    ),
    pytest.param(
        in_r(enum("E", "A", "B")),
        [in_r(enum("E", "A"))],
        "BACKWARD",
        [],
        id="backward-enum-symbol-added",
    ),
    pytest.param(V2, [V1], "FULL", [], id="full-add-with-default"),
    pytest.param(
        rec("R", fld("a", "int"), fld("b", "int")),
        [V1],
        "FULL",
        ["field added without default"],
        id="full-add-no-default",
    ),
    pytest.param(
        rec("R"), [V1], "FULL", ["field removed without default"], id="full-remove-no-default"
    ),
    pytest.param(in_r("long"), [in_r("int")], "FULL", ["type changed"], id="full-type-change"),
    pytest.param(V3, [V1, V2], "BACKWARD", [], id="backward-chain"),
    pytest.param(
        V3,
        [V1, V2],
        "BACKWARD_TRANSITIVE",
        ["field added without default"],
        id="backward-transitive-chain",
    ),
    pytest.param(F3, [F1, F2], "FORWARD", [], id="forward-chain"),
    pytest.param(
        F3,
        [F1, F2],
        "FORWARD_TRANSITIVE",
        ["field removed without default"],
        id="forward-transitive-chain",
    ),
    pytest.param(
        V3, [V1, V2], "FULL_TRANSITIVE", ["field added without default"], id="full-transitive-chain"
    ),
    pytest.param("int", [in_r("string")], "NONE", [], id="none-ignores-everything"),
    pytest.param("int", [], "BACKWARD", [], id="no-previous-versions"),
]


@pytest.mark.parametrize(("new", "previous", "level", "changes"), LEVEL_CASES)
def test_check_levels(new: Any, previous: list[Any], level: str, changes: list[str]) -> None:
    """Each level checks the directions and versions it promises, and only those."""
    assert [p.change for p in check(new, previous, level)] == changes


def test_backward_message_names_field_and_direction() -> None:
    """A BACKWARD break says consumers on the new schema cannot read the old version's data."""
    (problem,) = check(V3, [V1, V2], "BACKWARD_TRANSITIVE")
    assert problem.path == "R.b"
    assert "consumers on the new schema cannot read data written with version 1" in problem.message
    assert '"default"' in problem.message


def test_forward_message_names_field_and_direction() -> None:
    """A FORWARD break says consumers on the old version cannot read the new schema's data."""
    (problem,) = check(F3, [F1, F2], "FORWARD_TRANSITIVE")
    assert problem.path == "R.b"
    assert "consumers still on version 1 cannot read data written with the new schema" in (
        problem.message
    )


def test_full_transitive_reports_each_version_and_direction() -> None:
    """FULL_TRANSITIVE checks both directions against every version, newest first."""
    problems = check(rec("R", fld("z", "int")), [V1, V1], "FULL_TRANSITIVE")
    directions = [(p.change, "version 2" in p.message) for p in problems]
    assert directions == [
        ("field added without default", True),
        ("field removed without default", True),
        ("field added without default", False),
        ("field removed without default", False),
    ]


def test_unknown_level_is_rejected() -> None:
    """An unknown level is a ValueError listing every valid level."""
    with pytest.raises(ValueError, match="BACKWARD_TRANSITIVE") as raised:
        check(V1, [V1], "SIDEWAYS")
    assert all(level in str(raised.value) for level in LEVELS)


def test_incompatibility_is_frozen() -> None:
    """Incompatibility values are immutable, so callers can hash and share them."""
    problem = Incompatibility("R.a", "type changed", "R.a: ...")
    with pytest.raises(AttributeError):
        problem.path = "R.b"  # type: ignore[misc]


def _game_event_with(field: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The real GameEvent schema and a copy with `field` appended."""
    old: dict[str, Any] = json.loads(GAME_EVENT.read_text())
    new = copy.deepcopy(old)
    new["fields"].append(field)
    return new, old


def test_game_event_venue_id_without_default_breaks_backward() -> None:
    """Adding a plain int attendance to GameEvent is BACKWARD-incompatible, naming the field."""
    new, old = _game_event_with(fld("attendance", "int"))
    (problem,) = check(new, [old], "BACKWARD")
    assert problem.path == "GameEvent.attendance"
    assert problem.message.startswith("GameEvent.attendance: field added without a default")


def test_game_event_nullable_venue_id_is_full_compatible() -> None:
    """Adding stadium as ["null","string"] with default null to GameEvent is FULL compatible."""
    new, old = _game_event_with(fld("stadium", ["null", "string"], default=None))
    assert check(new, [old], "FULL") == []
