"""Configuration read once from arguments and the environment, then passed down frozen.

Nothing below `flink_jobs/` reads the environment except through this module, so a
test can build any configuration explicitly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from udfs.jobs import TOPIC, TOPICS

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_REGISTRY = "SCHEMA_REGISTRY_URL"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME", str(Path.home())))


@dataclass(frozen=True)
class Topics:
    """Topic names by role (udfs.jobs.TOPICS declares each role, its default name and its
    schema); every one can be renamed with a TIPOFF_TOPIC_<ROLE> variable. The fields are
    the table's roles, spelled out so that code and type checkers can name them."""

    game_events: str = TOPIC["game_events"].default
    user_interactions: str = TOPIC["user_interactions"].default
    user_features: str = TOPIC["user_features"].default
    game_features: str = TOPIC["game_features"].default
    dead_letters: str = TOPIC["dead_letters"].default

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        d = cls()
        return cls(
            **{
                f.name: env.get(f"TIPOFF_TOPIC_{f.name.upper()}", getattr(d, f.name))
                for f in fields(cls)
            }
        )

    def name(self, role: str) -> str:
        """The topic of a role of udfs.jobs.TOPICS."""
        return str(getattr(self, role))

    def prefixed(self, prefix: str) -> Topics:
        """The same topics with a prefix, e.g. for tests sharing a cluster."""
        return Topics(**{k: prefix + v for k, v in vars(self).items()})

    def env(self) -> dict[str, str]:
        """The TIPOFF_TOPIC_* variables that select these topics in another process."""
        return {f"TIPOFF_TOPIC_{k.upper()}": v for k, v in vars(self).items()}

    def schema_of(self) -> dict[str, str]:
        """Topic name -> the .avsc file (relative to avro_schemas/) of its values."""
        return {self.name(t.role): t.schema for t in TOPICS}

    def compacted(self) -> set[str]:
        return {self.name(t.role) for t in TOPICS if t.compacted}

    def all(self) -> list[str]:
        return list(self.schema_of())


@dataclass(frozen=True)
class StackSettings:
    """Where the local stack keeps its downloads and its data, and the loopback ports it uses."""

    cache_dir: Path
    state_dir: Path
    kafka_port: int = 9092
    controller_port: int = 9093
    registry_port: int = 8085

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: int | Path | None) -> StackSettings:
        home = _home(env)
        cache = Path(env.get("TIPOFF_CACHE_DIR", str(home / ".cache" / "tipoff")))
        state = Path(env.get("TIPOFF_STATE_DIR", str(home / ".local" / "state" / "tipoff")))
        ports = _previous_ports(state)
        values: dict[str, int | Path] = {
            "cache_dir": cache,
            "state_dir": state,
            "kafka_port": int(env.get("TIPOFF_KAFKA_PORT", ports.get("kafka_port", 9092))),
            "controller_port": int(
                env.get("TIPOFF_CONTROLLER_PORT", ports.get("controller_port", 9093))
            ),
            "registry_port": int(env.get("TIPOFF_REGISTRY_PORT", ports.get("registry_port", 8085))),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    @property
    def flink_jars_dir(self) -> Path:
        return self.cache_dir / "flink-jars"


def _previous_ports(state_dir: Path) -> dict[str, int]:
    """Ports of the stack last started from this state folder, so `up` after `down` reuses them."""
    try:
        data = json.loads((state_dir / "stack.json").read_text())
        return {
            k: int(data["ports"][k]) for k in ("kafka_port", "controller_port", "registry_port")
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@dataclass(frozen=True)
class Endpoints:
    """The Kafka bootstrap servers and schema registry URL every command talks to."""

    bootstrap_servers: str
    registry_url: str
    external: bool = False  # True when both came from the environment: tipoff starts nothing

    @classmethod
    def resolve(cls, env: Mapping[str, str], stack: StackSettings) -> Endpoints:
        bootstrap = env.get(ENV_BOOTSTRAP, "").strip()
        registry = env.get(ENV_REGISTRY, "").strip().rstrip("/")
        return cls(
            bootstrap_servers=bootstrap or stack.bootstrap_servers,
            registry_url=registry or stack.registry_url,
            external=bool(bootstrap and registry),
        )


@dataclass(frozen=True)
class Settings:
    stack: StackSettings
    endpoints: Endpoints
    topics: Topics = field(default_factory=Topics)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: int | Path | None) -> Settings:
        env = os.environ if env is None else env
        stack = StackSettings.from_env(env, **overrides)
        return cls(
            stack=stack, endpoints=Endpoints.resolve(env, stack), topics=Topics.from_env(env)
        )
