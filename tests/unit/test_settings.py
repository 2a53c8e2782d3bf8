"""Configuration comes from arguments and the environment, in that order of precedence."""

from __future__ import annotations

import json
from pathlib import Path

from flink_jobs.settings import Endpoints, Settings, StackSettings, Topics


def test_defaults_follow_home(tmp_path: Path) -> None:
    """Without variables, cache and state live under HOME and the default ports apply."""
    s = StackSettings.from_env({"HOME": str(tmp_path)})
    assert s.cache_dir == tmp_path / ".cache/tipoff"
    assert s.state_dir == tmp_path / ".local/state/tipoff"
    assert (s.kafka_port, s.controller_port, s.registry_port) == (9092, 9093, 8085)
    assert s.registry_url == "http://127.0.0.1:8085/apis/ccompat/v7"


def test_env_then_overrides(tmp_path: Path) -> None:
    """TIPOFF_* variables set ports; explicit arguments win over them."""
    env = {"HOME": str(tmp_path), "TIPOFF_KAFKA_PORT": "19092", "TIPOFF_REGISTRY_PORT": "18085"}
    s = StackSettings.from_env(env, registry_port=28085)
    assert (s.kafka_port, s.registry_port) == (19092, 28085)


def test_previous_ports_are_reused(tmp_path: Path) -> None:
    """`up` after `down` reuses the ports recorded in the state folder."""
    state = tmp_path / "state"
    state.mkdir()
    ports = {"kafka_port": 1, "controller_port": 2, "registry_port": 3}
    (state / "stack.json").write_text(json.dumps({"ports": ports}))
    s = StackSettings.from_env({"HOME": str(tmp_path), "TIPOFF_STATE_DIR": str(state)})
    assert (s.kafka_port, s.controller_port, s.registry_port) == (1, 2, 3)


def test_external_endpoints_need_both() -> None:
    """Only both variables together make the endpoints external; one alone mixes."""
    stack = StackSettings(cache_dir=Path("/c"), state_dir=Path("/s"))
    both = Endpoints.resolve(
        {"KAFKA_BOOTSTRAP_SERVERS": "k:9", "SCHEMA_REGISTRY_URL": "http://r/"}, stack
    )
    assert both.external and both.registry_url == "http://r"
    one = Endpoints.resolve({"KAFKA_BOOTSTRAP_SERVERS": "k:9"}, stack)
    assert not one.external and one.registry_url == stack.registry_url


def test_topics_from_env_and_prefix() -> None:
    """Topic names come from TIPOFF_TOPIC_*; prefixed() and env() round-trip."""
    t = Topics.from_env({"TIPOFF_TOPIC_GAME_EVENTS": "g"})
    assert t.game_events == "g" and t.user_features == "features.user"
    p = t.prefixed("x.")
    assert Topics.from_env(p.env()) == p
    assert p.compacted() == {"x.features.user", "x.features.game"}
    assert Settings.load({"HOME": "/h"}).topics == Topics()
