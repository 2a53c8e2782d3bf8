"""The home of the local standalone Flink cluster, rendered from its settings: where it
lives (`<state>/flink-cluster/`), its folders, its generated `conf/config.yaml`, and the
start command and environment of each of its processes.

`build_home` assembles a FLINK_HOME under the cluster home: a copy of pyflink's `bin/`;
`lib/` links to pyflink's jars plus `flink-python` from `opt/` and the connector jars
tipoff uses; `conf/` with the generated `config.yaml`. Everything binds to 127.0.0.1.
Starting and stopping the processes is flink_jobs/cluster/standalone.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.settings import StackSettings

CLUSTER_DIR = "flink-cluster"
JOBMANAGER = "jobmanager"
DEFAULT_REST_PORT = 8081
DEFAULT_RPC_PORT = 6123
DEFAULT_TASKMANAGERS = 2

# env.java.opts.all of the config.yaml shipped with Flink 2.2.1 (the JVM module opens Flink
# needs on Java 17+); a unit test checks it against pyflink/conf/config.yaml.
JAVA_OPTS_ALL = (
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED "
    "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED "
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED "
    "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED "
    "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED "
    "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED "
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED "
    "--add-opens=java.base/java.lang=ALL-UNNAMED "
    "--add-opens=java.base/java.net=ALL-UNNAMED "
    "--add-opens=java.base/java.io=ALL-UNNAMED "
    "--add-opens=java.base/java.nio=ALL-UNNAMED "
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED "
    "--add-opens=java.base/java.text=ALL-UNNAMED "
    "--add-opens=java.base/java.time=ALL-UNNAMED "
    "--add-opens=java.base/java.util=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"
)

# Variables that would make Flink's scripts look elsewhere than the home built here.
_FOREIGN_ENV = (
    "FLINK_HOME",
    "_FLINK_HOME_DETERMINED",
    "FLINK_LIB_DIR",
    "FLINK_OPT_DIR",
    "FLINK_PLUGINS_DIR",
    "FLINK_BIN_DIR",
    "FLINK_ENV_JAVA_OPTS",
    "FLINK_ENV_JAVA_OPTS_JM",
    "FLINK_ENV_JAVA_OPTS_TM",
    "HADOOP_CLASSPATH",
)


class ClusterError(RuntimeError):
    pass


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ClusterError(f"{name} must be positive, not {value:g}")


@dataclass(frozen=True)
class ClusterSettings:
    """Where the cluster lives, its loopback ports and its sizes."""

    state_dir: Path
    flink_jars_dir: Path
    cache_dir: Path
    rest_port: int = DEFAULT_REST_PORT
    rpc_port: int = DEFAULT_RPC_PORT
    taskmanagers: int = DEFAULT_TASKMANAGERS
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "1536m"
    # Low, so a killed TaskManager leaves the cluster (and its jobs fail over) within
    # seconds; Flink's default is 50 s. The interval must stay below the timeout.
    heartbeat_timeout_s: float = 10.0
    python: str = field(default_factory=lambda: sys.executable)
    # "FROM-TO": Flink's Prometheus reporter in every process, on the first free port.
    prometheus_ports: str | None = None

    def __post_init__(self) -> None:
        if self.taskmanagers < 1:
            raise ClusterError(f"--taskmanagers must be at least 1, not {self.taskmanagers}")
        if self.prometheus_ports is not None:
            prometheus_port_range(self.prometheus_ports)
        _positive("--heartbeat-timeout", self.heartbeat_timeout_s)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], stack: StackSettings, **overrides: Any
    ) -> ClusterSettings:
        """Ports: option, else TIPOFF_FLINK_REST_PORT / TIPOFF_FLINK_RPC_PORT, else those of
        the cluster last started from this state folder, else 8081 / 6123."""
        home = stack.state_dir / CLUSTER_DIR
        previous = read_json(home / "cluster.json")
        values: dict[str, Any] = {
            "state_dir": stack.state_dir,
            "flink_jars_dir": stack.flink_jars_dir,
            "cache_dir": stack.cache_dir,
            "rest_port": int(
                env.get("TIPOFF_FLINK_REST_PORT", previous.get("rest_port", DEFAULT_REST_PORT))
            ),
            "rpc_port": int(
                env.get("TIPOFF_FLINK_RPC_PORT", previous.get("rpc_port", DEFAULT_RPC_PORT))
            ),
            "prometheus_ports": env.get("TIPOFF_FLINK_PROMETHEUS_PORTS"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def home(self) -> Path:
        return self.state_dir / CLUSTER_DIR

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


@dataclass(frozen=True)
class Layout:
    """The folders of one cluster home."""

    home: Path

    @property
    def dist(self) -> Path:  # FLINK_HOME: bin/, lib/, opt/, plugins/
        return self.home / "dist"

    @property
    def conf(self) -> Path:
        return self.home / "conf"

    @property
    def logs(self) -> Path:
        return self.home / "log"

    @property
    def run(self) -> Path:  # the scripts' pid files (FLINK_PID_DIR)
        return self.home / "run"

    @property
    def tmp(self) -> Path:
        return self.home / "tmp"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def savepoints(self) -> Path:
        return self.home / "savepoints"

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"


def flink_config(c: ClusterSettings) -> dict[str, str]:
    """The cluster's config.yaml, as flat Flink keys (Flink 2.x reads only config.yaml)."""
    lay = Layout(c.home)
    heartbeat_ms = int(c.heartbeat_timeout_s * 1000)
    interval_ms = max(500, min(10_000, heartbeat_ms // 5))
    return {
        # Loopback only: RPC, data and REST.
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": str(c.rpc_port),
        "jobmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(c.rest_port),
        # Sizes for a 2-core machine: modest heaps, one slot per TaskManager (thread-mode
        # Python shares one GIL per TaskManager: scale with TaskManagers, not slots).
        "jobmanager.memory.process.size": c.jobmanager_memory,
        "taskmanager.memory.process.size": c.taskmanager_memory,
        "taskmanager.memory.managed.fraction": "0.2",
        "taskmanager.numberOfTaskSlots": "1",
        "parallelism.default": "1",
        "jobmanager.execution.failover-strategy": "region",
        # Python runs inside the TaskManager JVM, with this virtualenv's interpreter.
        "python.execution-mode": "thread",
        "python.executable": c.python,
        "python.client.executable": c.python,
        # Checkpoints and savepoints on local disk, under the cluster home.
        "execution.checkpointing.dir": lay.checkpoints.resolve().as_uri(),
        "execution.checkpointing.savepoint-dir": lay.savepoints.resolve().as_uri(),
        "execution.checkpointing.num-retained": "3",
        "state.backend.type": "hashmap",
        # Jobs set their own strategy; this is the default for anything else submitted.
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "60 s",
        "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
        "restart-strategy.exponential-delay.reset-backoff-threshold": "10 min",
        "restart-strategy.exponential-delay.jitter-factor": "0.1",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "10",
        "heartbeat.interval": f"{interval_ms} ms",
        "heartbeat.timeout": f"{heartbeat_ms} ms",
        # A TaskManager started before the JobManager listens retries after 1 s, not 10 s.
        "cluster.registration.error-delay": "1 s",
        # Metrics read over REST (tipoff bench samples the Kafka sources' offsets) are at
        # most 0.5 s old instead of Flink's default 10 s. The JobManager fetches them from the
        # TaskManagers only when asked.
        "metrics.fetcher.update-interval": "500",
        **(prometheus_reporter(c.prometheus_ports) if c.prometheus_ports else {}),
        "io.tmp.dirs": str(lay.tmp.resolve()),
        "env.java.opts.all": JAVA_OPTS_ALL,
        "env.pid.dir": str(lay.run.resolve()),
        "env.log.dir": str(lay.logs.resolve()),
    }


def prometheus_port_range(ports: str) -> range:
    """ "9249-9259" (or one port) as a range; a clear error for anything else."""
    lo, _, hi = ports.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        first = last = -1
    if not 0 < first <= last < 65536:
        raise ClusterError(
            f"--prometheus-ports {ports!r}: expected FROM-TO, e.g. 9249-9259, or one port"
        )
    return range(first, last + 1)


def prometheus_reporter(ports: str) -> dict[str, str]:
    """Flink's Prometheus reporter (plugins/metrics-prometheus of the distribution): each
    process takes the first free port of the range, as on Kubernetes (k8s/)."""
    return {
        "metrics.reporter.prom.factory.class": (
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        ),
        "metrics.reporter.prom.port": ports,
    }


def render_yaml(conf: Mapping[str, str]) -> str:
    """Flat `key: value` lines; every value a double-quoted (JSON) string, valid YAML."""
    lines = [
        "# Generated by `tipoff cluster up`; rewritten on every start. Change the options of",
        "# `tipoff cluster up` rather than this file.",
    ]
    lines += [f"{k}: {json.dumps(v)}" for k, v in conf.items()]
    return "\n".join(lines) + "\n"


# The shipped log4j-console.properties, except that the console (the process's stdout,
# kept in log/<name>.out) gets warnings only: the full log is the rolling file.
def _console_log4j(src: Path) -> str:
    text = src.read_text()
    return text.replace("${sys:console.log.level:-ALL}", "${sys:console.log.level:-WARN}")


def pyflink_home() -> Path:
    """The Flink distribution inside apache-flink (found without importing pyflink)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise ClusterError("apache-flink is not installed in this Python environment")
    return Path(spec.origin).resolve().parent


def build_home(c: ClusterSettings, connector_jars: list[Path], source: Path | None = None) -> Path:
    """Assemble FLINK_HOME and conf/ under the cluster home (again, from scratch)."""
    src = source or pyflink_home()
    lay = Layout(c.home)
    for d in (lay.home, lay.conf, lay.logs, lay.run, lay.tmp, lay.checkpoints, lay.savepoints):
        d.mkdir(parents=True, exist_ok=True)
    if lay.dist.exists():
        shutil.rmtree(lay.dist)
    # A copy, not a link: the scripts take FLINK_HOME from their own resolved location.
    shutil.copytree(src / "bin", lay.dist / "bin")
    lib = lay.dist / "lib"
    lib.mkdir()
    jars = sorted((src / "lib").glob("*.jar"))
    # flink-python in lib/ (the parent classloader): the JobManager needs its classes
    # (CustomTimestampAssigner), and a second thread-mode job on a TaskManager fails
    # without it (the embedded Python's native library loaded twice).
    jars += sorted((src / "opt").glob("flink-python-*.jar"))
    jars += connector_jars
    for jar in jars:
        (lib / jar.name).symlink_to(jar.resolve())
    for name in ("opt", "plugins"):
        if (src / name).is_dir():
            (lay.dist / name).symlink_to((src / name).resolve())
    for f in (src / "conf").iterdir():
        if f.name != "config.yaml" and f.is_file():
            shutil.copy2(f, lay.conf / f.name)
    (lay.conf / "log4j-console.properties").write_text(
        _console_log4j(src / "conf" / "log4j-console.properties")
    )
    (lay.conf / "config.yaml").write_text(render_yaml(flink_config(c)))
    return lay.home


def process_env(
    c: ClusterSettings, java: Path, name: str, base: Mapping[str, str]
) -> dict[str, str]:
    """Environment of one cluster process: this home, this Java, the virtualenv first on PATH."""
    lay = Layout(c.home)
    env = {k: v for k, v in base.items() if k not in _FOREIGN_ENV}
    env["JAVA_HOME"] = str(java.parent.parent)
    venv_bin = str(Path(c.python).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env["PATH"] = os.pathsep.join([venv_bin, *path])
    env["FLINK_CONF_DIR"] = str(lay.conf)
    env["FLINK_LOG_DIR"] = str(lay.logs)
    env["FLINK_PID_DIR"] = str(lay.run)
    env["FLINK_IDENT_STRING"] = name  # log files: log/flink-<name>-<service>-0-<host>.log
    return env


def process_command(c: ClusterSettings, name: str) -> list[str]:
    """The start command of the JobManager or of TaskManager `name` (foreground: the script
    `exec`s the JVM, so the spawned pid is the JVM's)."""
    bin_dir = Layout(c.home).dist / "bin"
    if name == JOBMANAGER:
        return ["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"]
    # The resource id names the TaskManager in the REST API (/taskmanagers) and the web UI.
    return [
        "bash",
        str(bin_dir / "taskmanager.sh"),
        "start-foreground",
        "-D",
        f"taskmanager.resource-id={name}",
    ]


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
