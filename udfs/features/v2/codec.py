"""The encoding of v2 feature state: a small, versioned, documented format.

A state is a tuple of builtin values — None, bool, int, float, str, bytes, and tuples,
lists, dicts and sets of those — in an order fixed per family and layout version
(docs/architecture.md, "State layout"), serialized with pickle protocol 5. Builtin values
are written with pickle's own opcodes and never by reference to a class or module, so
the bytes do not change when code is renamed or moved; `names_code` checks that, and the
tests run it over every state of a simulated feed. Numbers that are many (event times)
go in as one `array` buffer (bytes), not one object each.

The first two values are a magic string and the layout version: a reader refuses any
other magic and any version it does not know, naming both.
"""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Iterable
from typing import Any

MAGIC = "tipoff"
PROTOCOL = 5

# Opcodes that make the unpickler look up or call code by name.
_CODE_OPS = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "REDUCE", "BUILD"}
    | {"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}
)


class StateFormatError(ValueError):
    """Bytes that are not a v2 state of the expected family and a known version."""


def dumps(family: str, version: int, fields: tuple[Any, ...]) -> bytes:
    return pickle.dumps((MAGIC, family, version, *fields), protocol=PROTOCOL)


def loads(family: str, versions: Iterable[int], data: bytes) -> tuple[int, tuple[Any, ...]]:
    """(layout version, fields) of `data`, a state of `family` in one of `versions`."""
    try:
        value = pickle.loads(data)
    except Exception as e:
        raise StateFormatError(f"{family} state: not a tipoff state encoding ({e})") from e
    if not (isinstance(value, tuple) and len(value) >= 3 and value[0] == MAGIC):
        raise StateFormatError(f"{family} state: not a tipoff state encoding")
    if value[1] != family:
        raise StateFormatError(f"expected a {family} state, got a {value[1]!r} state")
    if value[2] not in tuple(versions):
        raise StateFormatError(
            f"{family} state layout version {value[2]!r}: this build reads "
            f"{', '.join(map(str, versions))}; upgrade tipoff (docs/savepoints.md)"
        )
    return value[2], value[3:]


def names_code(data: bytes) -> list[str]:
    """The opcodes in `data` that would name or call code (empty for a valid state)."""
    return [op.name for op, _, _ in pickletools.genops(data) if op.name in _CODE_OPS]
