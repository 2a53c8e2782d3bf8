"""Avro schema compatibility checking that explains each incompatibility in words.

Implements the resolution rules of the Avro 1.11 specification ("Schema Resolution"): a reader
schema can decode data written with a writer schema when every value the writer may produce has a
place in the reader. `check` applies them in the directions a schema-registry level demands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from udfs.serde._compat_schema import NAMED_KINDS, PRIMITIVES, Node, Schema, branch_for, describe
from udfs.serde._compat_schema import parse as _parse

__all__ = ["LEVELS", "Incompatibility", "Schema", "check", "reader_can_read"]

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

_PROMOTION_HINT = (
    "Avro only promotes int to long/float/double, long to float/double, float to double and "
    "string to/from bytes; add a new field instead of changing the type."
)


@dataclass(frozen=True)
class Incompatibility:
    path: str  # e.g. "GameEvent.venue_id", "UserFeatures.top_teams[]"
    change: str  # short kind, e.g. "field added without default"
    message: str  # full sentence: field, change, which readers break and why, how to fix


@dataclass(frozen=True)
class _Roles:
    """Who reads and who writes, so messages can say which direction breaks."""

    reader: str  # e.g. "the new schema", "version 2"
    writer: str
    readers: str  # subject of the sentence, e.g. "consumers still on version 2"
    reader_is_new: bool  # names changes from old to new: a reader field the writer lacks is "added"


_PLAIN_ROLES = _Roles(
    "the reader schema", "the writer schema", "readers using the reader schema", True
)


def reader_can_read(reader: Schema, writer: Schema) -> list[Incompatibility]:
    """Problems a reader with schema `reader` meets decoding data written with `writer`.

    Both are parsed JSON schemas (ValueError if malformed). Change kinds are named as if `reader`
    is the newer schema, e.g. a reader field the writer lacks is "field added without default".
    """
    return _check_pair(_parse(reader), _parse(writer), _PLAIN_ROLES)


def check(new: Schema, previous: Sequence[Schema], level: str) -> list[Incompatibility]:
    """Problems registering `new` after `previous` (oldest to newest) under a registry `level`.

    BACKWARD: the new schema reads the latest previous version; FORWARD: the latest previous
    version reads the new schema; FULL: both; *_TRANSITIVE: against every previous version; NONE:
    nothing is checked. Versions are numbered from 1 in the order of `previous`; problems are
    listed newest version first. ValueError for an unknown level or a malformed schema.
    """
    if level not in LEVELS:
        raise ValueError(
            f"unknown compatibility level {level!r}; valid levels: {', '.join(LEVELS)}"
        )
    if level == "NONE" or not previous:
        return []
    versions = list(enumerate(previous, start=1))
    if not level.endswith("_TRANSITIVE"):
        versions = versions[-1:]
    base = level.removesuffix("_TRANSITIVE")
    new_node = _parse(new)
    problems: list[Incompatibility] = []
    for number, old in reversed(versions):  # newest first: the most relevant break leads
        old_node = _parse(old)
        label = f"version {number}"
        if base in ("BACKWARD", "FULL"):
            roles = _Roles("the new schema", label, "consumers on the new schema", True)
            problems += _check_pair(new_node, old_node, roles)
        if base in ("FORWARD", "FULL"):
            roles = _Roles(label, "the new schema", f"consumers still on {label}", False)
            problems += _check_pair(old_node, new_node, roles)
    return problems


def _check_pair(reader: Node, writer: Node, roles: _Roles) -> list[Incompatibility]:
    root = reader.short_name if reader.kind in NAMED_KINDS else "<root>"
    return _Checker(roles).resolve(reader, writer, root)


class _Checker:
    def __init__(self, roles: _Roles) -> None:
        self.roles = roles
        # Record pairs already being resolved: revisiting one would only repeat its findings, and
        # for recursive schemas would never terminate.
        self.seen: set[tuple[Node, Node]] = set()

    def resolve(self, reader: Node, writer: Node, path: str) -> list[Incompatibility]:
        if writer.kind == "union":
            # Any writer branch may occur in the data, so each must be readable.
            return [p for b in writer.children for p in self._branch(reader, b, path, True)]
        return self._branch(reader, writer, path, False)

    def _branch(
        self, reader: Node, writer: Node, path: str, in_union: bool
    ) -> list[Incompatibility]:
        target = branch_for(reader, writer)
        if target is not None:
            return self._same_kind(target, writer, path)
        if in_union or reader.kind == "union":
            return [self._union_missing(reader, writer, path)]
        if reader.kind == writer.kind:  # only named kinds reach here: the names differ
            return [self._name_changed(reader, writer, path)]
        old, new = self._old_new(reader, writer)
        return [
            self._problem(
                path,
                "type changed",
                f"type changed from {describe(old)} to {describe(new)}",
                f"{describe(writer)} cannot be read as {describe(reader)}",
                _PROMOTION_HINT,
            )
        ]

    def _same_kind(self, reader: Node, writer: Node, path: str) -> list[Incompatibility]:
        if reader.kind in PRIMITIVES:
            return []  # equal or promotable, as chosen by branch_for
        if reader.kind == "array":
            return self.resolve(reader.children[0], writer.children[0], path + "[]")
        if reader.kind == "map":
            return self.resolve(reader.children[0], writer.children[0], path + "{}")
        if reader.kind == "enum":
            return self._enum(reader, writer, path)
        if reader.kind == "fixed":
            return self._fixed(reader, writer, path)
        return self._record(reader, writer, path)

    def _record(self, reader: Node, writer: Node, path: str) -> list[Incompatibility]:
        if (reader, writer) in self.seen:
            return []
        self.seen.add((reader, writer))
        by_name = {f.name: f for f in writer.fields}
        problems: list[Incompatibility] = []
        for field in reader.fields:
            names = [field.name, *sorted(field.aliases)]
            match = next((by_name[n] for n in names if n in by_name), None)
            field_path = f"{path}.{field.name}"
            if match is not None:
                problems += self.resolve(field.type, match.type, field_path)
            elif not field.has_default:
                problems.append(self._field_missing(field.name, field_path))
        # Writer fields the reader lacks are skipped while decoding, so they never break.
        return problems

    def _field_missing(self, name: str, path: str) -> Incompatibility:
        r = self.roles
        why = f"{r.writer} has no {name} and {r.reader} gives no default for it"
        if r.reader_is_new:
            fix = 'Add "default": ... or make it nullable (["null", ...]) with "default": null.'
            return self._problem(
                path, "field added without default", "field added without a default", why, fix
            )
        fix = f"Keep {name} in the new schema (deprecate, don't drop it) while {r.readers} remain."
        return self._problem(
            path, "field removed without default", "field removed without a default", why, fix
        )

    def _enum(self, reader: Node, writer: Node, path: str) -> list[Incompatibility]:
        missing = [s for s in writer.symbols if s not in reader.symbols]
        # A reader default absorbs unknown symbols (spec 1.9+), so only default-less enums break.
        if not missing or reader.enum_default in reader.symbols:
            return []
        listed = ", ".join(missing)
        why = f"{self.roles.writer} may contain {listed}, which enum {reader.short_name} in "
        why += f"{self.roles.reader} does not have"
        if self.roles.reader_is_new:
            change, fix = (
                "enum symbol removed",
                f'Keep {listed}, or give the enum a "default" symbol.',
            )
        else:
            change = "enum symbol added"
            fix = f'{self.roles.reader} has no enum "default" to fall back on; add symbols only to '
            fix += "enums whose every registered version declares a default."
        return [self._problem(path, change, f"{change}: {listed}", why, fix)]

    def _fixed(self, reader: Node, writer: Node, path: str) -> list[Incompatibility]:
        if reader.size == writer.size:
            return []
        old, new = self._old_new(reader, writer)
        return [
            self._problem(
                path,
                "fixed size changed",
                f"fixed {reader.short_name} size changed from {old.size} to {new.size}",
                f"the value is {writer.size} bytes as written but {reader.size} as read",
                "Keep the size, or add a new field with a new fixed type.",
            )
        ]

    def _name_changed(self, reader: Node, writer: Node, path: str) -> Incompatibility:
        old, new = self._old_new(reader, writer)
        if self.roles.reader_is_new:
            fix = f'Add "aliases": ["{writer.name}"] to {reader.short_name} in {self.roles.reader}.'
        else:
            fix = f"Keep the name {reader.short_name}; {self.roles.readers} match only their own "
            fix += "names and aliases."
        return self._problem(
            path,
            "name changed",
            f"{reader.kind} renamed from {old.short_name} to {new.short_name}",
            f"{reader.short_name} neither has the name {writer.short_name} nor an alias for it",
            fix,
        )

    def _union_missing(self, reader: Node, writer: Node, path: str) -> Incompatibility:
        if self.roles.reader_is_new and reader.kind == "union":
            fix = f"Add {describe(writer)} to the union in {self.roles.reader}."
        elif self.roles.reader_is_new:
            fix = f"Make the type in {self.roles.reader} a union that includes {describe(writer)}."
        else:
            fix = f"Keep {describe(writer)} out of the new schema at {path}; "
            fix += f"{self.roles.reader} cannot accept it."
        return self._problem(
            path,
            "union branch missing",
            f"no branch for {describe(writer)} in {describe(reader)}",
            f"{self.roles.writer} may write {describe(writer)} here and {self.roles.reader} has "
            "no type that accepts it",
            fix,
        )

    def _old_new(self, reader: Node, writer: Node) -> tuple[Node, Node]:
        return (writer, reader) if self.roles.reader_is_new else (reader, writer)

    def _problem(self, path: str, change: str, what: str, why: str, fix: str) -> Incompatibility:
        r = self.roles
        message = f"{path}: {what} — {r.readers} cannot read data written with {r.writer} ({why}). "
        return Incompatibility(path, change, message + fix)
