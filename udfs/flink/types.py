"""Flink type declarations for every Python -> Java boundary of the pipelines."""

from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import OutputTag

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())

# A Kafka record to write: key bytes, value bytes (None: a tombstone) and its timestamp
# in epoch ms (feature records: their feature_time, so a tombstone says when it happened;
# None: the time of writing).
KAFKA_ROW = Types.ROW_NAMED(["k", "v", "ts"], [BYTES, BYTES, Types.LONG()])
# A decoded, keyed input event: (entity key, event time ms, the Event).
KEYED_EVENT = Types.ROW_NAMED(
    ["key", "event_time", "event"], [Types.STRING(), Types.LONG(), Types.PICKLED_BYTE_ARRAY()]
)
# What a keyed Python function receives: (key, keyed event), the shape PyFlink's key_by
# builds with an extra Python operator. The decode step builds it instead, and the stream
# is keyed in the JVM (pipeline.by_key): one Python crossing and one pickling less per event.
KEY_AND_EVENT = Types.ROW([Types.STRING(), KEYED_EVENT])
# The decode step's output: that row and its watermark basis (see PartitionClock).
KEYED_EVENT_WITH_BASIS = Types.TUPLE([KEY_AND_EVENT, Types.LONG()])
# The key as Flink holds it (PyFlink's key_by keys by a one-field row).
KEY = Types.ROW([Types.STRING()])
# The per-key state of a feature machine.
PICKLED_STATE = Types.PICKLED_BYTE_ARRAY()

DEAD_LETTERS = OutputTag("dead-letters", KAFKA_ROW)
