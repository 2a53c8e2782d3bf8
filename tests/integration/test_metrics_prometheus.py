"""tipoff's metrics through Flink's Prometheus reporter, scraped by a real Prometheus server.

The standalone cluster runs with the reporter on (`tipoff cluster up --prometheus-ports`);
Prometheus (Debian's package, unpacked into the cache) scrapes every process on loopback.
Valid simulated input and malformed records go in; once the job has read everything, the
counters Prometheus holds must add up to what was produced, per job and topic (accepted +
dead-lettered (+ not keyed) = produced), the dead letters by reason must equal those in
the dead-letter topic, and every metric k8s/monitoring's rules and dashboard query must
have been scraped (so the dashboard shows only real series).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flink_jobs.cluster.home import prometheus_port_range
from flink_jobs.cluster.rest import FlinkRest
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig
from flink_jobs.stack.processes import free_port
from flink_jobs.tools import schemas, simulate
from tests.support import debian
from tests.support.e2e import ClusterJob, hostile_batches
from tests.support.kafka_io import Values, consume_all, produce
from tests.support.realstack import RealStack
from udfs.flink import metrics

REPO = Path(__file__).resolve().parents[2]
OPERATOR = "flink_taskmanager_job_task_operator_tipoff_"
JOBS = ("user-features", "game-features")


def _monitoring_metrics() -> ModuleType:
    """k8s/monitoring/monitoring_metrics.py: the metric names generate.py renders from."""
    spec = importlib.util.spec_from_file_location(
        "tipoff_monitoring_metrics", REPO / "k8s" / "monitoring" / "monitoring_metrics.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Prometheus:
    """A Prometheus server on loopback scraping the given targets every second."""

    def __init__(self, binary: Path, home: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "flink", "static_configs": [{"targets": targets}]}],
        }
        home.mkdir(parents=True, exist_ok=True)
        (home / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = (home / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, (home / "prometheus.log").read_text()[-2000:]
            time.sleep(0.5)
        raise AssertionError("prometheus did not become ready in 60 s")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def names(self) -> set[str]:
        return set(self.api("label/__name__/values"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def prometheus(
    flink_cluster: StandaloneCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    ports = flink_cluster.s.prometheus_ports
    assert ports, "the session cluster runs without --prometheus-ports"
    tools = debian.prometheus(Settings.load().stack.cache_dir, print)
    targets = [f"127.0.0.1:{p}" for p in prometheus_port_range(ports)]
    server = Prometheus(tools.prometheus, tmp_path_factory.mktemp("prometheus"), targets)
    try:
        yield server
    finally:
        server.stop()


def _series(prom: Prometheus, name: str, job_id: str) -> list[dict[str, Any]]:
    """The series of tipoff metric `name` of a job. Flink's reporter puts the key of a
    key-value group (topic, reason) into the name as well as into a label, so the exported
    name is looked up: OPERATOR + [group keys_] + name."""
    found = [
        n
        for n in prom.names()
        if n.startswith(OPERATOR) and (n == OPERATOR + name or n.endswith("_" + name))
    ]
    assert len(found) == 1, (name, found)
    return prom.query(f'{found[0]}{{job_id="{job_id}"}}')


def _by(prom: Prometheus, name: str, job_id: str, *labels: str) -> Counter[tuple[str, ...]]:
    """Sum of a tipoff counter over subtasks, by operator's job and the given labels."""
    out: Counter[tuple[str, ...]] = Counter()
    for r in _series(prom, name, job_id):
        m = r["metric"]
        out[(_job_of(m), *(m.get(label, "") for label in labels))] += int(float(r["value"][1]))
    return out


def _job_of(labels: dict[str, str]) -> str:
    """Which feature job an operator's series belongs to (operators are named "<job>: ...";
    the reporter turns characters other than [a-zA-Z0-9:_] of label values into `_`)."""
    name = labels["operator_name"]
    found = [j for j in JOBS if name.startswith(j.replace("-", "_"))]
    assert len(found) == 1, name
    return found[0]


def _label(value: str) -> str:
    """A label value as the reporter exports it."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", value)


def _settled(read: Any, seconds: float = 6, timeout_s: float = 180) -> Any:
    """A value that stayed the same for `seconds` (metrics of a job that has read all)."""
    deadline = time.monotonic() + timeout_s
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return now
    raise AssertionError(f"metrics still changing after {timeout_s}s: {last}")


def _next_checkpoint(rest: FlinkRest, job_id: str, timeout_s: float = 60) -> None:
    """Wait until a checkpoint started after now has completed (its transactions commit)."""

    def completed() -> int:
        return int(rest.checkpoints(job_id)["counts"]["completed"])

    first = completed()
    deadline = time.monotonic() + timeout_s
    while completed() < first + 2:  # the one in flight may have started before now
        assert time.monotonic() < deadline, "no checkpoint completed"
        time.sleep(0.5)


@pytest.mark.slow
def test_prometheus_scrapes_every_metric_and_the_counts_add_up(
    flink_cluster: StandaloneCluster,
    prometheus: Prometheus,
    real_stack: RealStack,
    tmp_path: Path,
) -> None:
    s = real_stack.fresh()
    schemas.register(s, 3, None, log=print)
    cfg = SimConfig(seed=71, users=300, games=9, late_share=0.01, duplicate_share=0.02)
    plan = simulate.plan(cfg, 200.0, int(time.time() * 1000), None, 2_500)
    report = simulate.run(s, plan, live=False, log=print, progress=False)
    assert not report.failed
    bad: Counter[str] = Counter()
    for topic, records in hostile_batches(s, cfg, 40, seed=7):
        produce(s.endpoints.bootstrap_servers, topic, records)
        bad[topic] += len(records)
    rest: FlinkRest = flink_cluster.rest(30)
    if int(rest.overview().get("slots-available", 0)) == 0:
        flink_cluster.add_taskmanager()
    job = ClusterJob(real_stack, s, rest, ("--checkpoint-interval", "2000")).submit()
    try:
        job.wait_consumed()
        produced = {
            t: len(consume_all(s.endpoints.bootstrap_servers, t))
            for t in (s.topics.game_events, s.topics.user_interactions)
        }
        print(f"produced {produced}, of which malformed {bad}")

        def counters() -> dict[str, Counter[tuple[str, ...]]]:
            return {
                "in": _by(prometheus, metrics.EVENTS_IN, job.job_id, "topic"),
                "accepted": _by(prometheus, metrics.ACCEPTED, job.job_id, "topic"),
                "not_keyed": _by(prometheus, metrics.NOT_KEYED, job.job_id, "topic"),
                "dead": _by(prometheus, metrics.DEAD_LETTERS, job.job_id, "topic", "reason"),
                "emitted": _by(prometheus, metrics.EMITTED, job.job_id),
            }

        c = _settled(counters)
        print(json.dumps({k: {"|".join(x): n for x, n in v.items()} for k, v in c.items()}))
        dead_by_topic: Counter[tuple[str, str]] = Counter()
        for (jb, topic, _reason), n in c["dead"].items():
            dead_by_topic[(jb, topic)] += n
        for jb in JOBS:
            topics = [s.topics.user_interactions]
            if jb == "game-features":
                topics.append(s.topics.game_events)
            for t in topics:
                key = (jb, _label(t))
                assert c["in"][key] == produced[t], (key, c["in"][key], produced[t])
                counted = c["accepted"][key] + dead_by_topic[key] + c["not_keyed"][key]
                assert counted == produced[t], (key, c, produced)
        assert c["not_keyed"][("user-features", _label(s.topics.user_interactions))] == 0
        assert c["not_keyed"][("game-features", _label(s.topics.user_interactions))] > 0

        # Dead letters by job and reason: the counters equal the dead-letter topic.
        letters: Counter[tuple[str, str]] = Counter()
        dl_values = consume_all(s.endpoints.bootstrap_servers, s.topics.dead_letters)
        values = Values(s.endpoints.registry_url)
        for msg in dl_values:
            dl = values(msg.value)
            assert dl is not None
            letters[(dl["job"], dl["reason"])] += 1
        by_reason: Counter[tuple[str, str]] = Counter()
        for (jb, _topic, reason), n in c["dead"].items():
            by_reason[(jb, reason)] += n
        assert by_reason == letters
        assert {r for _, r in letters} >= {"DECODE_ERROR", "UNKNOWN_SCHEMA", "INVALID"}

        # Every feature record the jobs emitted is in the output topics once a checkpoint
        # after the emission has committed (asked again while ticks still fire).
        bootstrap = s.endpoints.bootstrap_servers
        for _ in range(10):
            before = _by(prometheus, metrics.EMITTED, job.job_id)
            _next_checkpoint(rest, job.job_id)
            out = {
                (jb,): len(consume_all(bootstrap, topic))
                for jb, topic in zip(
                    JOBS, (s.topics.user_features, s.topics.game_features), strict=True
                )
            }
            if _by(prometheus, metrics.EMITTED, job.job_id) == before:
                break
        assert before == out and all(out.values()), (before, out)

        # Gauges: present, per job, and sensible.
        for name in (metrics.EVENT_TIME_LAG, metrics.FRESHNESS):
            got = _series(prometheus, name, job.job_id)
            assert {_job_of(r["metric"]) for r in got} == set(JOBS), name
        for jb in JOBS:
            p = {
                name: max(
                    float(r["value"][1])
                    for r in _series(prometheus, name, job.job_id)
                    if _job_of(r["metric"]) == jb
                )
                for name in (metrics.PROCESSING_P50, metrics.PROCESSING_P99, metrics.PROCESSING_MAX)
            }
            assert 0 < p[metrics.PROCESSING_P50] <= p[metrics.PROCESSING_MAX], p

        # What k8s/monitoring queries was scraped: the dashboard and the rules only use
        # names in monitoring_metrics.py's METRICS (tests/unit/k8s/test_monitoring.py).
        seen = prometheus.names()
        wanted = set(_monitoring_metrics().METRICS.values())
        assert wanted <= seen, sorted(wanted - seen)
        ours = {n for n in seen if n.startswith(OPERATOR)}
        print("tipoff metrics scraped:", sorted(ours))
    finally:
        job.cancel()
