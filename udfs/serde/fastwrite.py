"""A faster Avro binary encoder for tipoff's own flat output records.

fastavro's schemaless_writer costs 13-16 µs for one feature record (BENCHMARKS.md): it
walks the schema for every record. tipoff writes millions of records of three fixed
schemas (UserFeatures, GameFeatures, DeadLetter), so `compile_writer` turns such a schema
into one Python function, generated once, that writes the fields in order with the
encodings of the Avro specification (zig-zag varints, length-prefixed strings and bytes,
little-endian doubles, 0/2 union indexes, blocked arrays). Small integers and repeated
timestamps come from tables instead of a loop. The output is byte for byte fastavro's
(tests/unit/serde/test_fastwrite.py compares them on random records of every schema
version); a schema with anything else (records, maps, fixed, wider unions) gets no compiled
writer, and a record the compiled writer cannot take (a missing field, a wrong type) is
left to fastavro, so the result never differs, only the time.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import fastavro

_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack
_LOW, _HIGH = -8192, 65536  # zig-zag encodings kept in a table


def _varint(n: int) -> bytes:
    """Unsigned LEB128 of a zig-zagged value."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> bytes:
    """Avro's int / long encoding of `n`."""
    return _varint((n << 1) ^ (n >> 63))


_SMALL = [zigzag(n) for n in range(_LOW, _HIGH)]
_TIMES: dict[int, bytes] = {}  # recent large values (timestamps): a tick's are all alike


def _long(n: int) -> bytes:
    if _LOW <= n < _HIGH:
        return _SMALL[n - _LOW]
    b = _TIMES.get(n)
    if b is None:
        if not -(2**63) <= n < 2**63:
            raise ValueError(f"{n} is out of Avro's long range")
        if len(_TIMES) > 50_000:
            _TIMES.clear()
        b = _TIMES[n] = zigzag(n)
    return b


def _str(s: str) -> bytes:
    b = s.encode()
    return _long(len(b)) + b


def _bytes(b: bytes) -> bytes:
    return _long(len(b)) + bytes(b)


def _str_array(items: list[str]) -> bytes:
    if not items:
        return b"\x00"
    return b"".join([_long(len(items)), *map(_str, items), b"\x00"])


def _long_array(items: list[int]) -> bytes:
    if not items:
        return b"\x00"
    return b"".join([_long(len(items)), *map(_long, items), b"\x00"])


_PRIMITIVE = {
    "string": "_str({v})",
    "int": "_long({v})",
    "long": "_long({v})",
    "double": "_DOUBLE({v})",
    "float": "_FLOAT({v})",
    "boolean": "(b'\\x01' if {v} else b'\\x00')",
    "bytes": "_bytes({v})",
}


def _type_name(t: Any) -> Any:
    if isinstance(t, dict):
        name = t.get("type")
        if name in _PRIMITIVE:  # a primitive with a logical type: encoded as the primitive
            return name
        return t
    return t


def _expr(t: Any, v: str, enums: dict[str, list[str]]) -> str | None:
    """Python expression encoding value `v` of Avro type `t`, or None if not supported."""
    t = _type_name(t)
    if isinstance(t, str):
        if t in _PRIMITIVE:
            return _PRIMITIVE[t].format(v=v)
        if t in enums:
            return f"_SMALL[_ENUM_{t.replace('.', '_')}[{v}] - _LOW]"
        return None
    if isinstance(t, list):
        if len(t) != 2 or "null" not in t:
            return None
        other = t[1] if t[0] == "null" else t[0]
        inner = _expr(other, v, enums)
        if inner is None or isinstance(_type_name(other), list):
            return None
        null, value = (b"\x00", b"\x02") if t[0] == "null" else (b"\x02", b"\x00")
        return f"({null!r} if {v} is None else {value!r} + {inner})"
    if isinstance(t, dict):
        kind = t.get("type")
        if kind == "enum":
            name = t.get("namespace", "") + "." + t["name"] if "namespace" in t else t["name"]
            enums[name] = list(t["symbols"])
            return f"_SMALL[_ENUM_{name.replace('.', '_')}[{v}] - _LOW]"
        if kind == "array":
            items = _type_name(t["items"])
            if items == "string":
                return f"_str_array({v})"
            if items in ("int", "long"):
                return f"_long_array({v})"
        return None
    return None


def compile_writer(schema: dict[str, Any]) -> Callable[[dict[str, Any]], bytes] | None:
    """A function record -> Avro binary for a flat record schema, or None if the schema
    has a type it does not handle."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    enums: dict[str, list[str]] = {}
    parts = []
    for i, f in enumerate(schema["fields"]):
        e = _expr(f["type"], f"r{i}", enums)
        if e is None:
            return None
        parts.append((f["name"], f"r{i}", e))
    lines = ["def write(r):"]
    lines += [f"    {var} = r[{name!r}]" for name, var, _ in parts]
    lines.append("    return b''.join((" + ", ".join(e for _, _, e in parts) + ",))")
    scope: dict[str, Any] = {
        "_str": _str,
        "_long": _long,
        "_bytes": _bytes,
        "_DOUBLE": _DOUBLE,
        "_FLOAT": _FLOAT,
        "_SMALL": _SMALL,
        "_LOW": _LOW,
        "_str_array": _str_array,
        "_long_array": _long_array,
    }
    for name, symbols in enums.items():
        scope[f"_ENUM_{name.replace('.', '_')}"] = {s: n for n, s in enumerate(symbols)}
    exec("\n".join(lines), scope)  # generated from the schema's field list only
    fast: Callable[[dict[str, Any]], bytes] = scope["write"]
    parsed = fastavro.parse_schema(schema)

    def write(record: dict[str, Any]) -> bytes:
        try:
            return fast(record)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError, struct.error):
            buf = io.BytesIO()  # anything unusual: fastavro decides (and raises) as before
            fastavro.schemaless_writer(buf, parsed, record)
            return buf.getvalue()

    return write
