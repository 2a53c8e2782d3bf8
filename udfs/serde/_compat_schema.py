"""Parse Avro JSON schemas into a resolved node graph for compatibility checking.

Named-type references are replaced by the very node that defines them, so recursive schemas become
cyclic graphs; the checker in `compat` stops on record pairs it has already visited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any] | list[Any] | str

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED_KINDS = frozenset({"record", "enum", "fixed"})

# Writer type -> reader types it can be promoted to (specification, "Schema Resolution").
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(eq=False)  # identity equality/hash: nodes are compared as graph vertices
class Node:
    kind: str  # a primitive name, "record", "enum", "fixed", "array", "map" or "union"
    name: str = ""  # full name, for named kinds only
    aliases: frozenset[str] = frozenset()  # full names
    fields: list[Field] = field(default_factory=list)
    symbols: tuple[str, ...] = ()
    enum_default: str | None = None
    size: int = 0
    children: list[Node] = field(default_factory=list)  # items, values or union branches

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(eq=False)
class Field:
    name: str
    type: Node
    has_default: bool  # presence matters, not value: "default": null is a real default
    aliases: frozenset[str]


def parse(schema: object) -> Node:
    """Resolve a parsed JSON Avro schema into a node graph; ValueError if it is malformed."""
    return _Parser().parse(schema, "")


def describe(node: Node) -> str:
    """Short human-readable type, e.g. `array<string>`, `record Venue`, `[null, string]`."""
    if node.kind in NAMED_KINDS:
        return f"{node.kind} {node.short_name}"
    if node.kind in ("array", "map"):
        return f"{node.kind}<{describe(node.children[0])}>"
    if node.kind == "union":
        return "[" + ", ".join(describe(b) for b in node.children) + "]"
    return node.kind


def names_match(reader: Node, writer: Node) -> bool:
    """Whether a reader named type accepts the writer's name, directly or via reader aliases."""
    # Unqualified matching follows the 1.11 spec ("the same (unqualified) name"), which lets a
    # type move between namespaces; aliases are matched the same lenient way.
    if reader.short_name == writer.short_name or writer.name in reader.aliases:
        return True
    return writer.short_name in {alias.rpartition(".")[2] for alias in reader.aliases}


def branch_for(reader: Node, writer: Node) -> Node | None:
    """The reader type (or reader union branch) that a non-union writer type resolves to."""
    branches = reader.children if reader.kind == "union" else [reader]
    for b in branches:
        if b.kind == writer.kind and (b.kind not in NAMED_KINDS or names_match(b, writer)):
            return b
    # Exact matches win over promotions, as in the Java implementation's union branch choice.
    promotable = PROMOTIONS.get(writer.kind, frozenset())
    return next((b for b in branches if b.kind in promotable), None)


def _full_name(name: str, namespace: object, enclosing: str) -> str:
    if "." in name:
        return name
    space = namespace if isinstance(namespace, str) else enclosing
    return f"{space}.{name}" if space else name


def _require(schema: dict[str, Any], key: str) -> Any:
    if key not in schema:
        raise ValueError(f"Avro schema {schema!r} lacks {key!r}")
    return schema[key]


class _Parser:
    def __init__(self) -> None:
        self.named: dict[str, Node] = {}

    def parse(self, schema: object, namespace: str) -> Node:
        if isinstance(schema, str):
            return self._reference(schema, namespace)
        if isinstance(schema, list):
            return Node("union", children=[self.parse(b, namespace) for b in schema])
        if not isinstance(schema, dict):
            raise ValueError(f"not an Avro schema: {schema!r}")
        kind = _require(schema, "type")
        if isinstance(kind, (dict, list)):
            return self.parse(kind, namespace)
        if not isinstance(kind, str):
            raise ValueError(f"not an Avro type: {kind!r}")
        if kind in ("array", "map"):
            inner = _require(schema, "items" if kind == "array" else "values")
            return Node(kind, children=[self.parse(inner, namespace)])
        if kind in ("record", "error", "enum", "fixed"):
            return self._named(schema, "record" if kind == "error" else kind, namespace)
        # A primitive with attributes: logical types resolve as their underlying type.
        return self._reference(kind, namespace)

    def _reference(self, name: str, namespace: str) -> Node:
        if name in PRIMITIVES:
            return Node(name)
        full = _full_name(name, None, namespace)
        # Fall back to the null namespace, as the Java parser does, for types defined without one.
        node = self.named.get(full) or self.named.get(name)
        if node is None:
            raise ValueError(f"unknown Avro type {name!r} (named types must be defined before use)")
        return node

    def _named(self, schema: dict[str, Any], kind: str, enclosing: str) -> Node:
        name = _require(schema, "name")
        if not isinstance(name, str):
            raise ValueError(f"Avro type name must be a string: {name!r}")
        full = _full_name(name, schema.get("namespace"), enclosing)
        space = full.rpartition(".")[0]
        if full in self.named:
            raise ValueError(f"Avro type {full} is defined twice")
        aliases = frozenset(_full_name(a, None, space) for a in schema.get("aliases", []))
        node = Node(kind, name=full, aliases=aliases)
        # Register before parsing fields so a record can refer to itself.
        self.named[full] = node
        if kind == "record":
            node.fields = [
                Field(
                    name=_require(f, "name"),
                    type=self.parse(_require(f, "type"), space),
                    has_default="default" in f,
                    aliases=frozenset(f.get("aliases", [])),
                )
                for f in _require(schema, "fields")
            ]
        elif kind == "enum":
            node.symbols = tuple(_require(schema, "symbols"))
            node.enum_default = schema.get("default")
        else:
            node.size = int(_require(schema, "size"))
        return node
