"""What the `tipoff cluster`, `tipoff jobs` and `tipoff savepoint` commands share: where
things are (cluster settings, REST URL, local paths of savepoints) and how they are shown."""

from __future__ import annotations

import argparse
import os
import time
import urllib.parse
from pathlib import Path

from flink_jobs.cluster.home import ClusterSettings, Layout
from flink_jobs.cluster.rest import FlinkRestError
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import Settings

ACTIVE = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "CANCELLING")
TERMINAL = ("FINISHED", "FAILED", "CANCELED", "SUSPENDED")


# --- where things are ---------------------------------------------------------------------


def cluster_settings(a: argparse.Namespace, s: Settings) -> ClusterSettings:
    return ClusterSettings.from_env(
        os.environ,
        s.stack,
        rest_port=getattr(a, "rest_port", None),
        rpc_port=getattr(a, "rpc_port", None),
        taskmanagers=getattr(a, "taskmanagers", None),
        jobmanager_memory=getattr(a, "jobmanager_memory", None),
        taskmanager_memory=getattr(a, "taskmanager_memory", None),
        heartbeat_timeout_s=getattr(a, "heartbeat_timeout", None),
        prometheus_ports=getattr(a, "prometheus_ports", None),
    )


def rest_url(jobmanager: str | None, cluster: StandaloneCluster) -> str:
    """--jobmanager as HOST:PORT or URL; default: tipoff's local cluster."""
    if not jobmanager:
        return cluster.url
    url = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
    return url.rstrip("/")


def checkpoints_uri(cluster: StandaloneCluster) -> str:
    """The local cluster's checkpoint folder, beside its savepoints."""
    return Layout(cluster.s.home).checkpoints.resolve().as_uri()


def host_port(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 80}"


def local_path(location: str) -> Path | None:
    """The local folder of a `file:` URI or plain path; None for remote file systems."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" and location:
        return Path(location).expanduser().resolve()
    return None


def dir_size(path: Path) -> tuple[int, int]:
    """Bytes and number of files under `path`."""
    total = files = 0
    for f in path.rglob("*"):
        if f.is_file():
            total += f.stat().st_size
            files += 1
    return total, files


def savepoint_location(path: str) -> str:
    """A savepoint argument as the URI the JobManager reads; local ones must be complete."""
    local = local_path(path)
    if local is None:
        return path  # a remote file system: the JobManager checks
    if local.name == "_metadata":
        local = local.parent
    if not (local / "_metadata").is_file():
        problem = "does not exist" if not local.exists() else "has no _metadata (incomplete?)"
        raise FlinkRestError(
            f"savepoint {local} {problem}; `tipoff savepoint list` shows the savepoints"
        )
    return local.resolve().as_uri()


# --- formatting ---------------------------------------------------------------------------


def fmt_duration(seconds: float) -> str:
    if seconds < 0:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def fmt_time(epoch_ms: float) -> str:
    if epoch_ms <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000))
