"""Confluent wire format: byte 0, a 4-byte big-endian schema id, then Avro binary.

Decoding resolves the writer's schema (by id) to the reader schema the job was built
with, so a job keeps reading when producers move to a newer compatible schema.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro

MAGIC = 0
HEADER = struct.Struct(">bI")


class DecodeFailure(Exception):
    """A record that cannot be decoded; `reason` is its dead-letter reason."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class Codec:
    """Encodes with one registered schema; decodes any writer schema the lookup knows."""

    reader: Any  # parsed reader schema (fastavro)
    schema_id: int | None  # id of the reader schema in the registry, for encoding
    writer_lookup: Callable[[int], Any]  # schema id -> parsed writer schema; raises KeyError
    # The same encoding as fastavro's, compiled for the schema (udfs.serde.fastwrite); None:
    # fastavro writes.
    writer: Callable[[dict[str, Any]], bytes] | None = None

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if not value:
            raise DecodeFailure("DECODE_ERROR", "empty or null value")
        if len(value) < HEADER.size:
            raise DecodeFailure("DECODE_ERROR", f"value of {len(value)} bytes has no wire header")
        magic, schema_id = HEADER.unpack_from(value)
        if magic != MAGIC:
            raise DecodeFailure("DECODE_ERROR", f"magic byte {magic}, expected 0")
        try:
            writer = self.writer_lookup(schema_id)
        except KeyError as e:
            raise DecodeFailure("UNKNOWN_SCHEMA", str(e.args[0] if e.args else e)) from e
        buf = io.BytesIO(value)
        buf.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(buf, writer, self.reader)
        except Exception as e:  # any decoder error means a corrupt payload
            raise DecodeFailure(
                "DECODE_ERROR", f"Avro decode failed: {type(e).__name__}: {e}"
            ) from e
        if buf.tell() != len(value):
            raise DecodeFailure(
                "DECODE_ERROR", f"{len(value) - buf.tell()} trailing bytes after the Avro record"
            )
        if not isinstance(record, dict):
            raise DecodeFailure("DECODE_ERROR", "payload is not a record")
        return record

    def encode(self, record: dict[str, Any]) -> bytes:
        if self.schema_id is None:
            raise ValueError("this codec has no registered schema id to encode with")
        if self.writer is not None:
            return HEADER.pack(MAGIC, self.schema_id) + self.writer(record)
        buf = io.BytesIO()
        buf.write(HEADER.pack(MAGIC, self.schema_id))
        fastavro.schemaless_writer(buf, self.reader, record)
        return buf.getvalue()


def parse(schema: Any) -> Any:
    """Parse for tipoff's codecs: logical types are dropped, so timestamps stay int epoch ms
    (the bytes are the same; feature logic works in ints and skips datetime conversions)."""
    return fastavro.parse_schema(strip_logical_types(schema))


def strip_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical_types(s) for s in schema]
    return schema
