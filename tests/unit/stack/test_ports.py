"""The local stack refuses a taken port before fetching or starting anything."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from flink_jobs.settings import StackSettings
from flink_jobs.stack.processes import PortInUse, free_port, port_free
from flink_jobs.stack.services import LocalStack


@pytest.fixture
def listening() -> object:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize(
    ("field", "option"),
    [
        ("kafka_port", "--kafka-port"),
        ("controller_port", "--controller-port"),
        ("registry_port", "--registry-port"),
    ],
)
def test_taken_port_names_port_and_option(
    tmp_path: Path, listening: int, field: str, option: str
) -> None:
    """A port already listened on fails `up` with the port number and the option to change it."""
    base = StackSettings(
        cache_dir=tmp_path / "cache",
        state_dir=tmp_path / "state",
        kafka_port=free_port(),
        controller_port=free_port(),
        registry_port=free_port(),
    )
    with pytest.raises(PortInUse) as e:
        LocalStack(replace(base, **{field: listening}), log=lambda _: None).up(env={})
    assert str(listening) in str(e.value) and option in str(e.value)
    assert not (tmp_path / "cache").exists(), "nothing may be fetched before the port check"


def test_port_free_sees_listener(listening: int) -> None:
    """port_free is False for a listening socket and True once it is closed."""
    assert not port_free(listening)
    assert port_free(free_port())


def test_external_services_start_nothing(tmp_path: Path) -> None:
    """With both endpoint variables set, `up` starts nothing even if the default ports are taken."""
    s = StackSettings(cache_dir=tmp_path / "c", state_dir=tmp_path / "s")
    env = {"KAFKA_BOOTSTRAP_SERVERS": "h:1", "SCHEMA_REGISTRY_URL": "http://r:2"}
    res = LocalStack(s, log=lambda _: None).up(env=env)
    assert res.started == [] and res.endpoints.external
    assert res.endpoints.bootstrap_servers == "h:1"
