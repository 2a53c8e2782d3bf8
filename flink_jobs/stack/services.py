"""The local stack: a KRaft Kafka broker and an Apicurio schema registry on loopback.

`up` starts what is not already running, waits until both answer and records pids and
ports in `<state>/stack.json`; `down` stops only the processes recorded there. Data
lives under the state folder, so `down` then `up` keeps topics, records and schemas.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.output import Log
from flink_jobs.settings import ENV_BOOTSTRAP, ENV_REGISTRY, Endpoints, StackSettings
from flink_jobs.stack import artifacts, health
from flink_jobs.stack import processes as proc
from flink_jobs.stack.java import env_with_java, find_java

KAFKA_MARKER = "kafka.Kafka"
REGISTRY_MARKER = "quarkus-run.jar"
# Flink's KafkaSink asks for 1 h transactions by default; the broker's 15 min cap would
# make every exactly-once sink fail at start, so the cap is raised instead.
TRANSACTION_MAX_TIMEOUT_MS = 3_600_000


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class UpResult:
    started: list[str]
    already_running: list[str]
    endpoints: Endpoints


class LocalStack:
    def __init__(self, settings: StackSettings, log: Log = print) -> None:
        self.s = settings
        self.log = log
        self.state_file = settings.state_dir / "stack.json"
        self.logs = settings.state_dir / "logs"

    # --- state file -------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        self.s.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.state_file)

    def _pid(self, name: str) -> int | None:
        pid = self._read().get("services", {}).get(name, {}).get("pid")
        return int(pid) if pid else None

    def running(self, name: str) -> bool:
        marker = KAFKA_MARKER if name == "kafka" else REGISTRY_MARKER
        return proc.alive(self._pid(name), marker)

    # --- up ---------------------------------------------------------------------------
    def up(self, env: dict[str, str] | None = None, timeout_s: float = 180.0) -> UpResult:
        env = dict(os.environ) if env is None else env
        wanted = [
            name
            for name, var in (("kafka", ENV_BOOTSTRAP), ("registry", ENV_REGISTRY))
            if not env.get(var)
        ]
        running = [n for n in wanted if self.running(n)]
        to_start = [n for n in wanted if n not in running]
        ports = {
            "kafka": [
                (self.s.kafka_port, "Kafka broker", "--kafka-port / TIPOFF_KAFKA_PORT"),
                (
                    self.s.controller_port,
                    "Kafka KRaft controller",
                    "--controller-port / TIPOFF_CONTROLLER_PORT",
                ),
            ],
            "registry": [
                (self.s.registry_port, "schema registry", "--registry-port / TIPOFF_REGISTRY_PORT")
            ],
        }
        for name in to_start:
            for port, what, option in ports[name]:
                if not proc.port_free(port):
                    raise proc.PortInUse(port, what, option)
        artifacts.flink_jars(self.s.flink_jars_dir, self.log)
        data = self._read()
        data["ports"] = {
            "kafka_port": self.s.kafka_port,
            "controller_port": self.s.controller_port,
            "registry_port": self.s.registry_port,
        }
        services = data.setdefault("services", {})
        if "kafka" in to_start:
            services["kafka"] = self._start_kafka(env, timeout_s)
            self._write(data)
        if "registry" in to_start:
            services["registry"] = self._start_registry(env, timeout_s)
        self._write(data)
        return UpResult(to_start, running, Endpoints.resolve(env, self.s))

    def _start_kafka(self, env: dict[str, str], timeout_s: float) -> dict[str, Any]:
        lib = artifacts.kafka_lib(self.s.cache_dir, self.log)
        java, _ = find_java(17, env, self.s.cache_dir, self.log)
        home = self.s.state_dir / "kafka"
        data_dir = home / "data"
        home.mkdir(parents=True, exist_ok=True)
        props = home / "server.properties"
        props.write_text(self._kafka_properties(data_dir))
        log4j = home / "log4j2.yaml"
        log4j.write_text(_LOG4J2)
        cp = f"{lib}/*"
        if not (data_dir / "meta.properties").is_file():
            self.log(f"formatting Kafka storage in {data_dir} (KRaft, transactions v1)")
            cluster_id = self._java_out(
                [str(java), "-cp", cp, "kafka.tools.StorageTool", "random-uuid"]
            )
            # Transactions v1: Kafka 4.1 formats v2 by default, and the Flink connector's
            # exactly-once recovery has open issues with v2 after a producer-epoch bump.
            self._java_out(
                [
                    str(java),
                    "-cp",
                    cp,
                    f"-Dlog4j2.configurationFile={log4j}",
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster_id.strip(),
                    "-c",
                    str(props),
                    "--feature",
                    "transaction.version=1",
                ]
            )
        self.log(f"starting Kafka {artifacts.KAFKA_VERSION} on {self.s.bootstrap_servers}")
        cmd = [
            str(java),
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            cp,
            KAFKA_MARKER,
            str(props),
        ]
        return self._launch(
            "kafka",
            cmd,
            home,
            java,
            KAFKA_MARKER,
            artifacts.KAFKA_VERSION,
            lambda: health.kafka_ok(self.s.bootstrap_servers),
            f"Kafka did not become ready on {self.s.bootstrap_servers}",
            timeout_s,
        )

    def _kafka_properties(self, data_dir: Path) -> str:
        b, c = self.s.kafka_port, self.s.controller_port
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{c}",
                f"listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{b}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={data_dir}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                f"transaction.max.timeout.ms={TRANSACTION_MAX_TIMEOUT_MS}",
                "log.cleaner.min.compaction.lag.ms=0",
                "",
            ]
        )

    def _start_registry(self, env: dict[str, str], timeout_s: float) -> dict[str, Any]:
        app = artifacts.apicurio_app(self.s.cache_dir, self.log)
        java, major = find_java(21, env, self.s.cache_dir, self.log)
        home = self.s.state_dir / "registry"
        home.mkdir(parents=True, exist_ok=True)
        self.log(
            f"starting Apicurio Registry {artifacts.APICURIO_VERSION} (Java {major}) "
            f"on {self.s.registry_url}"
        )
        cmd = [
            str(java),
            "-Xms64m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.s.registry_port}",
            # The management interface (health, metrics) defaults to 0.0.0.0:9000, which
            # is neither loopback nor free for a second stack: a random loopback port.
            "-Dquarkus.management.host=127.0.0.1",
            "-Dquarkus.management.port=0",
            # SQL storage on a file-backed H2 database: survives restarts and does not make
            # a broker outage a registry outage (unlike kafkasql).
            "-Dapicurio.storage.kind=sql",
            "-Dapicurio.storage.sql.kind=h2",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{home / 'db' / 'registry'}",
            "-Dapicurio.rules.global.compatibility=BACKWARD",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=20",
            "-jar",
            str(app / REGISTRY_MARKER),
        ]
        return self._launch(
            "registry",
            cmd,
            home,
            java,
            REGISTRY_MARKER,
            artifacts.APICURIO_VERSION,
            lambda: health.registry_ok(self.s.registry_url),
            f"the schema registry did not answer on {self.s.registry_url}",
            timeout_s,
        )

    def _launch(
        self,
        name: str,
        cmd: list[str],
        home: Path,
        java: Path,
        marker: str,
        version: str,
        ready: Callable[[], bool],
        failure: str,
        timeout_s: float,
    ) -> dict[str, Any]:
        """Start one service, wait until `ready`, and describe it for the state file."""
        log_file = self.logs / f"{name}.log"
        child = proc.spawn(cmd, home, log_file, env_with_java(java))
        # The Popen handle, not /proc: right after exec the command line can read empty.
        if not proc.wait_until(ready, timeout_s, lambda: child.poll() is None):
            proc.stop(child.pid, marker, 5)
            raise StackError(
                f"{failure} within {timeout_s:.0f}s; last lines of {log_file}:\n"
                f"{proc.log_tail(log_file)}"
            )
        return {
            "pid": child.pid,
            "version": version,
            "log": str(log_file),
            "started_at": time.time(),
        }

    def _java_out(self, cmd: list[str]) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise StackError(f"{' '.join(cmd[-6:])} failed:\n{out.stdout}{out.stderr}")
        return out.stdout

    # --- down / status ----------------------------------------------------------------
    def down(self, only: Sequence[str] = ("registry", "kafka")) -> list[str]:
        """Stop what `up` started (registry first, it is the client), or only the named
        services (`up` starts them again). Returns what was stopped."""
        stopped = []
        for name, marker in (("registry", REGISTRY_MARKER), ("kafka", KAFKA_MARKER)):
            pid = self._pid(name)
            if name in only and pid and proc.stop(pid, marker, grace_s=60.0):
                stopped.append(name)
        data = self._read()
        for name, svc in data.get("services", {}).items():
            if name in only:
                svc["pid"] = None
        if data:
            self._write(data)
        return stopped

    def kill(self, name: str) -> int:
        """SIGKILL one service, as a crash would (for failure tests); its pid. `up` restarts
        it on the same data."""
        marker = KAFKA_MARKER if name == "kafka" else REGISTRY_MARKER
        pid = self._pid(name)
        if pid is None or not proc.alive(pid, marker):
            raise StackError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        while proc.alive(pid, marker):
            time.sleep(0.05)
        return pid

    def status(self, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
        env = dict(os.environ) if env is None else env
        ep = Endpoints.resolve(env, self.s)
        services = self._read().get("services", {})
        rows = []
        for name, var, addr, check in (
            ("kafka", ENV_BOOTSTRAP, ep.bootstrap_servers, health.kafka_detail),
            ("registry", ENV_REGISTRY, ep.registry_url, health.registry_detail),
        ):
            svc = services.get(name, {})
            external = bool(env.get(var))
            rows.append(
                {
                    "service": name,
                    "managed": not external,
                    "pid": None if external or not self.running(name) else svc.get("pid"),
                    "address": addr,
                    "version": "external" if external else svc.get("version", "-"),
                    "health": check(addr),
                    "log": None if external else svc.get("log"),
                }
            )
        return rows


_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: kafka.coordinator.transaction
        level: WARN
      - name: org.apache.kafka.storage.internals.log
        level: WARN
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
"""
