"""`tipoff bench --quick` end to end as a smoke test: on the shared real stack and the
shared standalone cluster, every phase runs and the report is produced and well formed.
No timing assertions: this machine runs other tests meanwhile, and a quick run is not a
measurement. About 3-5 minutes (2-core machine)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.settings import ENV_BOOTSTRAP, ENV_REGISTRY
from tests.support.realstack import RealStack


def positive(x: Any) -> bool:
    return isinstance(x, int | float) and not math.isnan(x) and x > 0


@pytest.mark.slow
def test_bench_quick_writes_a_complete_report(
    real_stack: RealStack, flink_cluster: StandaloneCluster, tmp_path: Path
) -> None:
    ep = real_stack.settings.endpoints
    env = {
        **real_stack.env,
        # the shared cluster lives in its own state folder (--state-dir below); the stack is
        # then reached through its endpoints
        ENV_BOOTSTRAP: ep.bootstrap_servers,
        ENV_REGISTRY: ep.registry_url,
    }
    results = tmp_path / "results"
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flink_jobs.cli",
            "bench",
            "--quick",
            "--events",
            "20000",
            "--parallelism",
            "1",
            "--freshness-duration",
            "15",
            "--freshness-warmup",
            "3",
            "--results",
            str(results),
            "--state-dir",
            str(flink_cluster.s.state_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(f"tipoff bench --quick: exit {proc.returncode} in {time.monotonic() - t0:.0f}s")
    print(proc.stdout + proc.stderr[-5000:])
    assert proc.returncode == 0, proc.stderr[-5000:]

    (path,) = results.glob("bench-*-quick.json")
    r = json.loads(path.read_text())
    for section in ("machine", "options", "input", "throughput", "ratios", "state", "freshness"):
        assert r[section], section
    assert r["input"]["records"] >= 20_000 and positive(r["input"]["users"])
    assert set(r["throughput"]) == {"jvm_copy", "jvm_tumble", "jvm_over", "tipoff"}
    for name, row in r["throughput"].items():
        for key in ("events_per_s", "window_s", "cpu_s_per_million", "peak_rss_bytes"):
            assert positive(row[key]), (name, key, row[key])
        assert row["series"], name
    assert positive(r["ratios"]["tipoff_vs_reference"])
    assert positive(r["ratios"]["tipoff_vs_ceiling"])
    assert positive(r["state"]["bytes_per_active_user"])
    assert positive(r["state"]["user_median_bytes"]) and positive(r["state"]["user_keys"])
    assert positive(r["state"]["game_median_bytes"])
    assert positive(r["state"]["bytes_per_game"])
    assert positive(r["freshness"]["rate"])
    for mode in ("at-least-once", "exactly-once"):
        m = r["freshness"][mode]
        for key in ("p50_ms", "p95_ms", "p99_ms", "records", "sent", "target_p99_ms"):
            assert positive(m[key]), (mode, key, m[key])
        assert m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"]
    assert set(r["targets"]) >= {
        "throughput vs reference",
        "throughput >= 100,000 events/s",
        "freshness p99 at-least-once",
        "freshness p99 exactly-once",
    }
    # the table on stdout names every phase
    for label in ("I/O ceiling", "reference", "OVER", "tipoff", "FRESHNESS"):
        assert label in proc.stdout
    if importlib.util.find_spec("matplotlib") is not None:  # the `test` extra installs it
        png = results / r["chart"]
        assert png.stat().st_size > 10_000
    # the bench cleans up: no job left running on the shared cluster, no bench topics left
    assert not flink_cluster.rest().running()
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": ep.bootstrap_servers}).list_topics(timeout=10)
    prefix = r["input"]["topic_prefix"]
    assert prefix.startswith("bench.")
    assert not [t for t in topics.topics if t.startswith(prefix)]
