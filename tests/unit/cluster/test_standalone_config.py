"""The standalone cluster's generated home, config and process commands (no JVM)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_jobs.cluster.home import (
    JAVA_OPTS_ALL,
    JOBMANAGER,
    ClusterError,
    ClusterSettings,
    Layout,
    build_home,
    flink_config,
    process_command,
    process_env,
    prometheus_port_range,
    pyflink_home,
    render_yaml,
)
from flink_jobs.cluster.standalone import StandaloneCluster, heartbeat_age_s
from flink_jobs.settings import StackSettings
from flink_jobs.stack import artifacts
from flink_jobs.stack.processes import PortInUse, free_port

# PyYAML comes with apache-flink's dependencies; skip rather than fail without it.
yaml = pytest.importorskip("yaml")


def _settings(tmp_path: Path, **kw: object) -> ClusterSettings:
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "flink_jars_dir": tmp_path / "jars",
        "cache_dir": tmp_path / "cache",
        "python": "/opt/venv/bin/python",
        **kw,
    }
    return ClusterSettings(**values)  # type: ignore[arg-type]


def test_config_binds_loopback_and_sets_ports_slots_python_and_state_dirs(tmp_path: Path) -> None:
    c = _settings(tmp_path, rest_port=18081, rpc_port=16123)
    conf = flink_config(c)
    for key in (
        "jobmanager.rpc.address",
        "jobmanager.bind-host",
        "taskmanager.host",
        "taskmanager.bind-host",
        "rest.address",
        "rest.bind-address",
    ):
        assert conf[key] == "127.0.0.1", key
    assert conf["rest.port"] == "18081"
    assert conf["jobmanager.rpc.port"] == "16123"
    assert conf["taskmanager.numberOfTaskSlots"] == "1"
    assert conf["python.execution-mode"] == "thread"
    assert conf["python.executable"] == "/opt/venv/bin/python"
    assert conf["python.client.executable"] == "/opt/venv/bin/python"
    home = (tmp_path / "state" / "flink-cluster").resolve()
    assert conf["execution.checkpointing.dir"] == (home / "checkpoints").as_uri()
    assert conf["execution.checkpointing.savepoint-dir"] == (home / "savepoints").as_uri()
    assert conf["restart-strategy.type"] == "exponential-delay"
    assert conf["jobmanager.memory.process.size"] == "1024m"
    assert conf["taskmanager.memory.process.size"] == "1536m"
    assert conf["env.java.opts.all"] == JAVA_OPTS_ALL


def test_heartbeat_interval_stays_below_the_timeout(tmp_path: Path) -> None:
    for timeout_s, interval in ((10, "2000 ms"), (1, "500 ms"), (300, "10000 ms")):
        conf = flink_config(_settings(tmp_path, heartbeat_timeout_s=timeout_s))
        assert conf["heartbeat.timeout"] == f"{timeout_s * 1000} ms"
        assert conf["heartbeat.interval"] == interval


def test_rendered_yaml_parses_back_to_the_same_flat_keys(tmp_path: Path) -> None:
    conf = flink_config(_settings(tmp_path / "a dir: with 'quotes'"))
    assert yaml.safe_load(render_yaml(conf)) == conf


def test_java_opts_match_the_shipped_config() -> None:
    shipped = yaml.safe_load((pyflink_home() / "conf" / "config.yaml").read_text())
    assert shipped["env"]["java"]["opts"]["all"].split() == JAVA_OPTS_ALL.split()


def test_invalid_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="--taskmanagers"):
        _settings(tmp_path, taskmanagers=0)
    with pytest.raises(ClusterError, match="--heartbeat-timeout"):
        _settings(tmp_path, heartbeat_timeout_s=0)


def test_prometheus_reporter_is_off_unless_ports_are_given(tmp_path: Path) -> None:
    assert not any(k.startswith("metrics.reporter") for k in flink_config(_settings(tmp_path)))
    conf = flink_config(_settings(tmp_path, prometheus_ports="9249-9259"))
    assert conf["metrics.reporter.prom.port"] == "9249-9259"
    factory = conf["metrics.reporter.prom.factory.class"]
    assert factory == "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    # The reporter is a plugin of the distribution the cluster links in.
    assert list((pyflink_home() / "plugins" / "metrics-prometheus").glob("*.jar"))
    assert prometheus_port_range("9300") == range(9300, 9301)
    for bad in ("9259-9249", "x-1", "0-10", "9249-70000", ""):
        with pytest.raises(ClusterError, match="--prometheus-ports"):
            _settings(tmp_path, prometheus_ports=bad)


def _fake_dist(root: Path) -> Path:
    for d in ("bin", "lib", "opt", "conf", "plugins"):
        (root / d).mkdir(parents=True)
    (root / "bin" / "jobmanager.sh").write_text("#!/bin/bash\n")
    (root / "bin" / "taskmanager.sh").write_text("#!/bin/bash\n")
    for jar in ("flink-dist-2.2.1.jar", "flink-table-runtime-2.2.1.jar"):
        (root / "lib" / jar).write_bytes(b"jar")
    (root / "opt" / "flink-python-2.2.1.jar").write_bytes(b"jar")
    (root / "opt" / "flink-sql-client-2.2.1.jar").write_bytes(b"jar")
    (root / "conf" / "config.yaml").write_text("rest:\n  address: localhost\n")
    (root / "conf" / "log4j-console.properties").write_text(
        "appender.console.filter.threshold.level = ${sys:console.log.level:-ALL}\n"
    )
    (root / "conf" / "log4j.properties").write_text("x=1\n")
    return root


def test_home_has_copied_scripts_linked_jars_flink_python_connectors_and_config(
    tmp_path: Path,
) -> None:
    src = _fake_dist(tmp_path / "pyflink")
    connector = tmp_path / "jars" / "flink-sql-connector-kafka-5.0.0-2.2.jar"
    connector.parent.mkdir()
    connector.write_bytes(b"jar")
    c = _settings(tmp_path)
    home = build_home(c, [connector], source=src)
    lay = Layout(home)
    bin_dir = lay.dist / "bin"
    assert bin_dir.is_dir() and not bin_dir.is_symlink()  # scripts locate FLINK_HOME from it
    assert not (bin_dir / "jobmanager.sh").is_symlink()
    lib = {p.name: p for p in (lay.dist / "lib").iterdir()}
    assert set(lib) == {
        "flink-dist-2.2.1.jar",
        "flink-table-runtime-2.2.1.jar",
        "flink-python-2.2.1.jar",
        connector.name,
    }
    assert all(p.is_symlink() for p in lib.values())
    assert lib["flink-python-2.2.1.jar"].resolve() == (src / "opt" / "flink-python-2.2.1.jar")
    assert (lay.dist / "opt").resolve() == src / "opt"
    conf = yaml.safe_load((lay.conf / "config.yaml").read_text())
    assert conf == flink_config(c)
    assert (lay.conf / "log4j.properties").read_text() == "x=1\n"
    assert "console.log.level:-WARN" in (lay.conf / "log4j-console.properties").read_text()
    for d in (lay.checkpoints, lay.savepoints, lay.logs, lay.run, lay.tmp):
        assert d.is_dir()
    # again, from scratch: a newer pyflink replaces the old links
    (src / "lib" / "flink-table-runtime-2.2.1.jar").unlink()
    build_home(c, [connector], source=src)
    assert "flink-table-runtime-2.2.1.jar" not in {p.name for p in (lay.dist / "lib").iterdir()}


def test_commands_run_the_scripts_in_the_foreground_with_resource_ids(tmp_path: Path) -> None:
    c = _settings(tmp_path)
    dist_bin = Layout(c.home).dist / "bin"
    assert process_command(c, JOBMANAGER) == [
        "bash",
        str(dist_bin / "jobmanager.sh"),
        "start-foreground",
    ]
    assert process_command(c, "tm-3") == [
        "bash",
        str(dist_bin / "taskmanager.sh"),
        "start-foreground",
        "-D",
        "taskmanager.resource-id=tm-3",
    ]


def test_process_env_puts_the_venv_first_and_drops_foreign_flink_settings(tmp_path: Path) -> None:
    c = _settings(tmp_path)
    base = {
        "PATH": "/usr/bin:/opt/venv/bin:/bin",
        "FLINK_HOME": "/elsewhere",
        "FLINK_ENV_JAVA_OPTS": "-Xmx10g",
        "FLINK_CONF_DIR": "/elsewhere/conf",
        "HOME": "/root",
    }
    env = process_env(c, Path("/jdk/bin/java"), "tm-1", base)
    assert env["PATH"].split(os.pathsep) == ["/opt/venv/bin", "/usr/bin", "/bin"]
    assert env["JAVA_HOME"] == "/jdk"
    assert "FLINK_HOME" not in env and "FLINK_ENV_JAVA_OPTS" not in env
    lay = Layout(c.home)
    assert env["FLINK_CONF_DIR"] == str(lay.conf)
    assert env["FLINK_LOG_DIR"] == str(lay.logs)
    assert env["FLINK_PID_DIR"] == str(lay.run)
    assert env["FLINK_IDENT_STRING"] == "tm-1"
    assert env["HOME"] == "/root"


def test_ports_come_from_options_then_environment_then_the_last_cluster(tmp_path: Path) -> None:
    stack = StackSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state")
    assert ClusterSettings.from_env({}, stack).rest_port == 8081
    assert ClusterSettings.from_env({}, stack).rpc_port == 6123
    home = tmp_path / "state" / "flink-cluster"
    home.mkdir(parents=True)
    (home / "cluster.json").write_text(json.dumps({"rest_port": 18081, "rpc_port": 16123}))
    c = ClusterSettings.from_env({}, stack)
    assert (c.rest_port, c.rpc_port) == (18081, 16123)
    c = ClusterSettings.from_env({"TIPOFF_FLINK_REST_PORT": "28081"}, stack)
    assert (c.rest_port, c.rpc_port) == (28081, 16123)
    c = ClusterSettings.from_env(
        {"TIPOFF_FLINK_REST_PORT": "28081"}, stack, rest_port=38081, taskmanagers=None
    )
    assert c.rest_port == 38081 and c.taskmanagers == 2
    assert c.flink_jars_dir == stack.flink_jars_dir
    assert c.rest_url == "http://127.0.0.1:38081"


@pytest.fixture
def listening() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize(
    ("field", "option"), [("rest_port", "--rest-port"), ("rpc_port", "--rpc-port")]
)
def test_taken_port_fails_up_naming_port_and_option(
    tmp_path: Path, listening: int, field: str, option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before anything is fetched, built or started."""
    monkeypatch.setattr(artifacts, "flink_jars", lambda *a: pytest.fail("fetched jars"))
    ports = {"rest_port": free_port(), "rpc_port": free_port(), field: listening}
    cluster = StandaloneCluster(_settings(tmp_path, **ports), log=lambda _: None, env={})
    with pytest.raises(PortInUse) as e:
        cluster.up()
    assert str(listening) in str(e.value) and option in str(e.value)
    assert not Layout(cluster.s.home).dist.exists()


def test_nothing_running_is_reported_not_guessed(tmp_path: Path) -> None:
    cluster = StandaloneCluster(_settings(tmp_path), log=lambda _: None, env={})
    assert cluster.down() == []
    assert cluster.status().rows == []
    with pytest.raises(ClusterError, match="no TaskManager is running"):
        cluster.kill_taskmanager()
    with pytest.raises(ClusterError, match="tipoff cluster up"):
        cluster.add_taskmanager()


def test_heartbeat_age_reads_epoch_ms_or_a_duration() -> None:
    assert heartbeat_age_s(1_795_676_246_000, 1_795_676_250.0) == pytest.approx(4.0)
    assert heartbeat_age_s(2_500, 1_795_676_250.0) == pytest.approx(2.5)
