"""Everything one job encodes and decodes, resolved against the registry once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from udfs.serde import avsc
from udfs.serde.inputs import DeadLetter, InputDecoder
from udfs.serde.registry import Registry, WriterSchemas
from udfs.serde.wire import Codec, parse

INPUT_KIND = {"events/GameEvent.avsc": "game", "events/UserInteraction.avsc": "interaction"}
OUTPUT_SCHEMA = {
    "user-features": "features/UserFeatures.avsc",
    "game-features": "features/GameFeatures.avsc",
}
DEAD_LETTER_SCHEMA = "ops/DeadLetter.avsc"


class SchemaNotRegistered(RuntimeError):
    pass


def _registered_codec(registry: Registry, topic: str, rel: str) -> Codec:
    schema = avsc.load(rel)
    subject = f"{topic}-value"
    schema_id = registry.id_of(subject, avsc.canonical(schema))
    if schema_id is None:
        raise SchemaNotRegistered(
            f"{rel} is not registered under {subject} in {registry.url}; "
            "run `tipoff schemas register` (it also creates the topics)"
        )
    return Codec(parse(schema), schema_id, WriterSchemas(registry, subject))


@dataclass(frozen=True)
class JobCodecs:
    job: str
    inputs: InputDecoder
    output: Codec
    dead_letters: Codec

    @classmethod
    def connect(cls, job: str, registry_url: str, topics: Mapping[str, str]) -> JobCodecs:
        """topics: role -> topic name, roles being the .avsc paths of the job's inputs and
        outputs plus "dead_letters"."""
        registry = Registry(registry_url)
        codecs: dict[str, Codec] = {}
        kinds: dict[str, str] = {}
        for rel, kind in INPUT_KIND.items():
            topic = topics.get(rel)
            if topic is None:
                continue
            subject = f"{topic}-value"
            codecs[topic] = Codec(parse(avsc.load(rel)), None, WriterSchemas(registry, subject))
            kinds[topic] = kind
        output_rel = OUTPUT_SCHEMA[job]
        return cls(
            job=job,
            inputs=InputDecoder(job, codecs, kinds),
            output=_registered_codec(registry, topics[output_rel], output_rel),
            dead_letters=_registered_codec(registry, topics["dead_letters"], DEAD_LETTER_SCHEMA),
        )

    def feature_value(self, value: dict[str, Any] | None, computed_at: int) -> bytes | None:
        if value is None:
            return None  # a tombstone
        return self.output.encode({**value, "computed_at": computed_at})

    def dead_letter_value(self, dl: DeadLetter) -> bytes:
        return self.dead_letters.encode(dl)
