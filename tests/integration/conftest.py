"""One real stack (Kafka broker + schema registry) shared by every integration test.

Order of preference: KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL (existing services);
otherwise tipoff's own local stack, started on free loopback ports in a temporary state
folder (downloads are cached in the usual cache folder and reused).
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from flink_jobs.cluster.home import ClusterSettings
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import ENV_BOOTSTRAP, ENV_REGISTRY, Settings, StackSettings
from flink_jobs.stack.processes import free_port
from flink_jobs.stack.services import LocalStack
from tests.support.realstack import RealStack


def _local_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (ENV_BOOTSTRAP, ENV_REGISTRY)}


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    if os.environ.get(ENV_BOOTSTRAP) and os.environ.get(ENV_REGISTRY):
        s = Settings.load()
        yield RealStack(s, None, dict(os.environ))
        return
    env = _local_env()
    base = StackSettings.from_env(env)
    stack_settings = replace(
        base,
        state_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=free_port(),
        controller_port=free_port(),
        registry_port=free_port(),
    )
    local = LocalStack(stack_settings, log=print)
    try:
        local.up(env)
    except BaseException:
        local.down()  # whatever did start must not outlive the session
        raise
    s = Settings.load(
        env,
        state_dir=stack_settings.state_dir,
        kafka_port=stack_settings.kafka_port,
        controller_port=stack_settings.controller_port,
        registry_port=stack_settings.registry_port,
    )
    sub_env = {
        **env,
        "TIPOFF_STATE_DIR": str(stack_settings.state_dir),
        "TIPOFF_CACHE_DIR": str(stack_settings.cache_dir),
    }
    try:
        yield RealStack(s, local, sub_env)
    finally:
        local.down()


def free_port_range(n: int) -> str:
    """ "FROM-TO" of n consecutive loopback ports free right now."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20_000, 60_000 - n)
        socks = []
        try:
            for port in range(first, first + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("0.0.0.0", port))
            return f"{first}-{first + n - 1}"
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


@pytest.fixture(scope="session")
def flink_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A standalone Flink session cluster (JobManager + 2 TaskManagers, one slot each) on
    free loopback ports, shared by the tests that need real processes to kill or a
    savepoint to restore."""
    state = tmp_path_factory.mktemp("flink-cluster")
    stack = StackSettings.from_env({}, state_dir=state)
    cluster = StandaloneCluster(
        ClusterSettings.from_env(
            {},
            stack,
            rest_port=free_port(),
            rpc_port=free_port(),
            taskmanagers=2,
            heartbeat_timeout_s=10,
            # Every process's metrics for Prometheus (test_metrics_prometheus.py).
            prometheus_ports=free_port_range(8),
        ),
        log=print,
    )
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
