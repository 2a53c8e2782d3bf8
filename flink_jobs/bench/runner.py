"""`tipoff bench`: one invocation, one cluster, one preloaded topic; every job measured the
same way so the ratios compare like with like.

1. the local standalone cluster (started if it is not running, stopped again after;
   cluster.py);
2. N simulated events preloaded into fresh bench topics (preload.py);
3. the JVM jobs, one after another, bounded: copy (I/O ceiling), tumble (reference), over
   (jvm_phase.py);
4. tipoff (both jobs, exactly-once, unbounded) from the earliest offset until it has
   consumed everything (tipoff_phase.py); a savepoint then gives the state bytes per
   active user (state_phase.py);
5. freshness: tipoff again on empty topics, the simulator live at a fixed rate (default:
   half of what tipoff sustained in 4), at-least-once and then exactly-once
   (freshness_phase.py);
6. the table, the JSON result and the chart (report.py).

This module runs the phases in that order and judges the result against the targets.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flink_jobs.bench import jvm_jobs, preload, report
from flink_jobs.bench.cluster import Cluster, open_cluster
from flink_jobs.bench.freshness_phase import run_freshness
from flink_jobs.bench.jvm_phase import run_jvm_job
from flink_jobs.bench.options import BenchError, Options, options_from_args
from flink_jobs.bench.tipoff_phase import run_tipoff
from flink_jobs.cluster.rest import FlinkRestError
from flink_jobs.cluster.standalone import StandaloneCluster
from flink_jobs.config import EXACTLY_ONCE
from flink_jobs.output import Log
from flink_jobs.settings import Settings


def machine(cluster: Cluster | None) -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    java = shutil.which("java")
    java_version = ""
    if java:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        java_version = (proc.stderr.splitlines() or [""])[0]
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java_version,
        "flink": (cluster.rest.overview().get("flink-version") if cluster else None),
        "taskmanagers": cluster.taskmanagers if cluster else None,
        "taskmanager_process_bytes": cluster.taskmanager_bytes if cluster else None,
        "load_average_at_start": list(load),
        "metrics_fetch_interval_ms": _fetch_interval(cluster),
    }


def _fetch_interval(cluster: Cluster | None) -> int | None:
    """The cluster's metrics.fetcher.update-interval: how stale a sampled offset can be."""
    if cluster is None:
        return None
    try:
        conf = cluster.rest.call("GET", "/jobmanager/config")
    except FlinkRestError:
        return None
    value = next((c["value"] for c in conf if c["key"] == "metrics.fetcher.update-interval"), None)
    return int(value) if value is not None and str(value).isdigit() else 10_000


def targets(r: dict[str, Any], opts: Options) -> dict[str, Any]:
    tp = r["throughput"]
    tip = (tp.get("tipoff") or {}).get("events_per_s")
    ref = (tp.get("jvm_tumble") or {}).get("events_per_s")
    out: dict[str, Any] = {}
    if tip and ref:
        out["throughput vs reference"] = {
            "met": tip >= 0.5 * ref,
            "threshold": 0.5 * ref,
            "detail": f"tipoff {tip:,.0f}/s is {tip / ref:.1%} of the reference {ref:,.0f}/s "
            "(target >= 50%)",
        }
    else:
        out["throughput vs reference"] = {"met": None, "detail": "not measured"}
    out["throughput >= 100,000 events/s"] = {
        "met": None if not tip else tip >= 100_000,
        "threshold": 100_000,
        "detail": f"tipoff {tip:,.0f}/s" if tip else "not measured",
    }
    for mode in report.MODES:
        m = (r["freshness"] or {}).get(mode)
        name = f"freshness p99 {mode}"
        if not m:
            out[name] = {"met": None, "detail": "not measured"}
            continue
        out[name] = {
            "met": m["p99_ms"] < m["target_p99_ms"],
            "threshold": m["target_p99_ms"],
            "detail": f"p99 {m['p99_ms']:,.0f} ms (target < {m['target_p99_ms']:,} ms = tick + "
            "bound + 500 ms" + (" + checkpoint interval)" if mode == EXACTLY_ONCE else ")"),
        }
    out["state per active user < 2 KiB"] = state_target(r["state"] or {}, opts.state_backend)
    return out


def state_target(st: dict[str, Any], backend: str) -> dict[str, Any]:
    """product.md: the *median* keyed state per active user under 2 KiB on the heap
    backend, here in a canonical savepoint's serialized bytes; the mean beside it."""
    median, mean = st.get("user_median_bytes"), st.get("bytes_per_active_user")
    mean_text = f"mean {mean:,.0f} B per active user" if mean is not None else "no mean"
    if median is None:
        if mean is None and not st.get("per_key_error"):
            return {"met": None, "threshold": 2048, "detail": "not measured"}
        why = f" ({st['per_key_error']})" if st.get("per_key_error") else ""
        return {"met": None, "threshold": 2048, "detail": f"median not measured{why}; {mean_text}"}
    return {
        "met": median < 2048,
        "threshold": 2048,
        "detail": f"median {median:,.0f} B per user with state (p90 "
        f"{st.get('user_p90_bytes') or 0:,.0f} B, max {st.get('user_max_bytes') or 0:,} B, "
        f"{st.get('user_keys') or 0:,} users); {mean_text}; serialized bytes in a canonical "
        f"savepoint, {backend} backend",
    }


def run(
    local: StandaloneCluster, s: Settings, opts: Options, env: dict[str, str], log: Log
) -> dict[str, Any]:
    started = datetime.now(UTC).replace(microsecond=0)
    run_id = started.strftime("%Y%m%d%H%M%S")
    prefix = f"bench.{run_id}."
    t0 = time.monotonic()
    cluster = open_cluster(local, opts, log)
    try:
        return _run(cluster, s, opts, env, log, started, run_id, prefix, t0)
    finally:
        if not opts.keep_topics:
            preload.delete_topics(s, prefix, log)
        if cluster.started:
            log("bench: stopping the cluster it started")
            cluster.local.down()


def _run(
    cluster: Cluster,
    s: Settings,
    opts: Options,
    env: dict[str, str],
    log: Log,
    started: datetime,
    run_id: str,
    prefix: str,
    t0: float,
) -> dict[str, Any]:
    """The phases, on an open cluster; `run` cleans up after them."""
    r: dict[str, Any] = {
        "version": 1,
        "started": started.isoformat().replace("+00:00", "Z"),
        "command": "tipoff bench" + (" --quick" if opts.quick else ""),
        "options": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "parallelism": cluster.parallelism,
        },
        "machine": machine(cluster),
        "notes": [],
    }
    if cluster.memory_note:
        log(f"note: {cluster.memory_note}")
        r["notes"].append(cluster.memory_note)
    if (r["machine"]["metrics_fetch_interval_ms"] or 0) > 1_000:
        r["notes"].append(
            "the cluster refreshes metrics every "
            f"{r['machine']['metrics_fetch_interval_ms']} ms: short jobs are timed coarsely "
            "(tipoff cluster up sets 500 ms)"
        )
    bs = preload.bench_settings(s, prefix)
    preload.create(bs, opts.partitions, log)
    feed = preload.preload(
        bs,
        opts.events,
        users=opts.users,
        games=opts.games,
        event_rate=opts.event_rate,
        seed=opts.seed,
        log=log,
    )
    r["input"] = {
        "records": feed.records,
        "interactions": feed.per_topic[bs.topics.user_interactions],
        "game_events": feed.per_topic[bs.topics.game_events],
        "users": feed.users,
        "games": feed.games,
        "event_time_s": feed.event_time_s,
        "preload_s": feed.seconds,
        "topic_prefix": prefix,
    }
    tp: dict[str, Any] = {}
    for kind in jvm_jobs.JOBS:
        if kind in opts.skip:
            continue
        try:
            tp[f"jvm_{kind}"] = run_jvm_job(kind, cluster, bs, prefix, feed, opts, run_id, log)
        except BenchError as e:
            if kind != "over":  # the ceiling and the reference are what the ratios need
                raise
            log(f"bench: the OVER job (context only) failed; going on without it: {e}")
            r["notes"].append(f"jvm over failed: {e}"[:500])
    state: dict[str, Any] = {}
    if "tipoff" not in opts.skip:
        tp["tipoff"], state = run_tipoff(cluster, bs, feed, opts, log)
    r["throughput"], r["state"] = tp, state
    ceiling = (tp.get("jvm_copy") or {}).get("events_per_s")
    reference = (tp.get("jvm_tumble") or {}).get("events_per_s")
    r["ratios"] = {
        f"{k}_vs_{name}": v["events_per_s"] / base
        for name, base in (("ceiling", ceiling), ("reference", reference))
        if base
        for k, v in tp.items()
    }
    r["freshness"] = {}
    if "freshness" not in opts.skip:
        tip = (tp.get("tipoff") or {}).get("events_per_s")
        rate = opts.freshness_rate or (tip / 2 if tip else None)
        if rate is None:
            raise BenchError("freshness needs --rate when the tipoff phase is skipped")
        r["freshness"] = run_freshness(cluster, s, run_id, rate, opts, env, log)
    r["targets"] = targets(r, opts)
    r["seconds"] = time.monotonic() - t0
    if opts.quick:
        r["notes"].append("quick run: small input and short phases; not a measurement")
    return r


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # so `finally` cancels jobs and stops what the bench started


def main(a: argparse.Namespace, s: Settings, local: StandaloneCluster, log: Log) -> int:
    opts = options_from_args(a)
    signal.signal(signal.SIGTERM, _interrupt)
    r = run(local, s, opts, dict(os.environ), log)
    json_path, png = report.write(r, opts.results_dir, chart=opts.chart)
    print("\n".join(report.render_table(r)))
    print(f"\nresult {json_path}" + (f"\nchart  {png}" if png else ""))
    return 0
