"""`tipoff cluster`, `tipoff jobs` and `tipoff savepoint` against a real standalone Flink
session cluster (JobManager + TaskManager processes) on free loopback ports in a temporary
state folder: start, inspect, lose a TaskManager to `kill -9`, replace it, run a tipoff job,
stop it with a savepoint, restore it with another parallelism, dispose, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flink_jobs.cluster.home import ClusterSettings
from flink_jobs.cluster.rest import FlinkRest
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import StackSettings
from flink_jobs.sim import SimConfig
from flink_jobs.stack.processes import free_port
from flink_jobs.tools import schemas, simulate
from tests.support.realstack import RealStack

HEARTBEAT_TIMEOUT_S = 10


def tipoff(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> tuple[str, str]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "flink_jobs.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=400,
    )
    print(f"tipoff {' '.join(args[:3])}: exit {proc.returncode} in {time.monotonic() - t0:.1f}s")
    print(proc.stdout + proc.stderr)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, proc.stderr


@dataclass(frozen=True)
class Cluster:
    state_dir: Path
    options: tuple[str, ...]  # --state-dir ... --rest-port ... --rpc-port ...
    api: StandaloneCluster
    rest: FlinkRest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("cluster")
    rest_port, rpc_port = free_port(), free_port()
    options = (
        "--state-dir",
        str(state),
        "--rest-port",
        str(rest_port),
        "--rpc-port",
        str(rpc_port),
    )
    t0 = time.monotonic()
    out, _ = tipoff(
        "cluster",
        "up",
        "--taskmanagers",
        "2",
        "--heartbeat-timeout",
        str(HEARTBEAT_TIMEOUT_S),
        *options,
    )
    print(f"cluster up (JobManager + 2 TaskManagers): {time.monotonic() - t0:.1f}s")
    assert out.strip() == f"http://127.0.0.1:{rest_port}"
    stack = StackSettings.from_env(dict(os.environ), state_dir=state)
    api = StandaloneCluster(ClusterSettings.from_env({}, stack), log=print)
    try:
        yield Cluster(state, options, api, FlinkRest(out.strip()))
    finally:
        pids = [int(p["pid"]) for p in api.processes().values()]
        _, err = tipoff("cluster", "down", *options, ok=False)
        print(err)
        assert not any(api.alive(n) for n in api.processes()), "cluster down left processes"
        for pid in pids:
            assert not Path(f"/proc/{pid}/cmdline").exists() or str(state) not in Path(
                f"/proc/{pid}/cmdline"
            ).read_text(errors="replace")


def test_up_is_idempotent_and_status_lists_jobmanager_and_taskmanagers(cluster: Cluster) -> None:
    out, err = tipoff("cluster", "up", *cluster.options)
    assert "already running: jobmanager, tm-1, tm-2" in err
    assert out.strip() == cluster.rest.url
    out, _ = tipoff("cluster", "status", *cluster.options)
    rows = {line.split()[0]: line for line in out.splitlines()[1:4]}
    assert set(rows) == {"jobmanager", "tm-1", "tm-2"}
    assert "UP: Flink 2.2.1, 2 TaskManager(s), slots 2" in rows["jobmanager"]
    assert all("registered, slots 1" in rows[tm] for tm in ("tm-1", "tm-2"))
    assert "slots: 2 total" in out
    assert cluster.api.registered() == ["tm-1", "tm-2"]
    # every process listens on loopback only
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    pids = {str(p["pid"]) for p in cluster.api.processes().values()}
    ours = [ln for ln in ss.splitlines() if any(f"pid={pid}," in ln for pid in pids)]
    hosts = {ln.split()[3].rsplit(":", 1)[0] for ln in ours}
    assert ours and hosts <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, ours


def test_killed_taskmanager_leaves_and_a_replacement_joins(cluster: Cluster) -> None:
    name, pid = cluster.api.kill_taskmanager()
    t0 = time.monotonic()
    while name in cluster.api.registered():
        assert time.monotonic() - t0 < HEARTBEAT_TIMEOUT_S + 15, "still registered"
        time.sleep(0.5)
    print(f"kill -9 {name} (pid {pid}): gone from /taskmanagers after {time.monotonic() - t0:.1f}s")
    out, _ = tipoff("cluster", "status", *cluster.options, ok=False)
    assert f"{name} " in out and "DOWN: process gone" in out
    t0 = time.monotonic()
    out, _ = tipoff("cluster", "add-taskmanager", *cluster.options)
    print(f"replacement {out.strip()} registered in {time.monotonic() - t0:.1f}s")
    assert out.strip() == "tm-3"
    assert cluster.api.registered() == sorted({"tm-1", "tm-2", "tm-3"} - {name})
    assert cluster.rest.overview()["slots-total"] == 2
    out, _ = tipoff("cluster", "status", *cluster.options)  # the dead record is gone: exit 0
    assert name not in out


@pytest.mark.slow
def test_job_stops_with_a_savepoint_and_restores_with_another_parallelism(
    cluster: Cluster, real_stack: RealStack
) -> None:
    s = real_stack.fresh()
    schemas.register(s, 2, None, log=print)
    cfg = simulate.plan(
        SimConfig(seed=3, games=6, users=500), 0, int(time.time() * 1000), 600, 4_000
    )
    assert not simulate.run(s, cfg, live=False, log=print, progress=False).failed
    env = {**real_stack.env, **s.topics.env()}
    endpoints = (
        "--bootstrap-servers",
        s.endpoints.bootstrap_servers,
        "--registry-url",
        s.endpoints.registry_url,
    )
    state = ("--state-dir", str(cluster.state_dir))
    host = cluster.rest.url.removeprefix("http://")

    out, _ = tipoff(
        "submit",
        "user-features",
        "--jobmanager",
        host,
        "--checkpoint-interval",
        "2000",
        *endpoints,
        *state,
        env=env,
    )
    job_id = out.strip()
    deadline = time.monotonic() + 120
    while not (cluster.rest.checkpoints(job_id).get("latest") or {}).get("completed"):
        assert time.monotonic() < deadline, "no checkpoint completed within 120 s"
        assert cluster.rest.job(job_id)["state"] in ("CREATED", "INITIALIZING", "RUNNING")
        time.sleep(1)
    out, _ = tipoff("jobs", *state, env=env)
    assert job_id in out and "RUNNING" in out and "last checkpoint #" in out

    out, _ = tipoff("savepoint", "stop", "user-features", *state, env=env)
    fields = dict(line.split(maxsplit=1) for line in out.splitlines())
    savepoint = fields["savepoint"]
    assert "FINISHED (stopped with the savepoint)" in fields["job"]
    assert "on disk" in fields["size"]
    folder = Path(savepoint.removeprefix("file:"))
    assert folder.parent == cluster.state_dir / "flink-cluster" / "savepoints"
    assert (folder / "_metadata").is_file()
    out, _ = tipoff("savepoint", "list", *state, env=env)
    assert str(folder) in out.splitlines()[1]  # the newest first

    out, err = tipoff(
        "savepoint",
        "restore",
        str(folder),
        "--job",
        "user-features",
        "--parallelism",
        "2",
        "--checkpoint-interval",
        "2000",
        *endpoints,
        *state,
        env=env,
    )
    restored = out.strip()
    assert "RUNNING with parallelism 2" in err
    detail = cluster.rest.job(restored)
    assert detail["state"] == "RUNNING"
    assert max(v["parallelism"] for v in detail["vertices"]) == 2
    origin = (cluster.rest.checkpoints(restored).get("latest") or {}).get("restored") or {}
    assert origin.get("external_path", "").rstrip("/") == savepoint.rstrip("/")

    cluster.rest.cancel(restored)
    cluster.rest.wait_for_state(restored, {"CANCELED"}, 60)

    # the same savepoint into the other job: its state maps to no operator there
    out, err = tipoff(
        "savepoint",
        "restore",
        str(folder),
        "--job",
        "game-features",
        *endpoints,
        *state,
        env=env,
        ok=False,
    )
    assert "restore failed" in err and "Cannot map checkpoint/savepoint state" in err
    assert "--allow-non-restored-state" in err

    out, _ = tipoff("savepoint", "dispose", str(folder), *state, env=env)
    assert "disposed" in out
    assert not folder.exists()
