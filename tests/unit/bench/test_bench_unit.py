"""`tipoff bench` without a cluster: the SQL it submits, how rates and percentiles are
computed from samples, the options, and the report (table, JSON, chart)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.bench import jvm_jobs, measure, report
from flink_jobs.bench.cluster import small_taskmanagers
from flink_jobs.bench.freshness import latencies
from flink_jobs.bench.options import BenchError, Options, memory_bytes, options_from_args
from flink_jobs.bench.runner import state_target
from flink_jobs.cli import build_parser
from flink_jobs.config import AT_LEAST_ONCE, EXACTLY_ONCE, JobConfig, add_job_options
from udfs.serde import avsc

EP = jvm_jobs.Endpoints("127.0.0.1:9092", "http://127.0.0.1:8085/apis/ccompat/v7")


# --- the JVM jobs ---------------------------------------------------------------------------


def test_sql_types_follow_the_avro_confluent_mapping() -> None:
    assert jvm_jobs.sql_type("string") == "STRING NOT NULL"
    assert jvm_jobs.sql_type(["null", "string"]) == "STRING"
    assert jvm_jobs.sql_type(["null", "int"]) == "INT"
    assert jvm_jobs.sql_type({"type": "enum", "name": "E", "symbols": ["A"]}) == "STRING NOT NULL"
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    assert jvm_jobs.sql_type(ts) == "TIMESTAMP(3) NOT NULL"
    with pytest.raises(jvm_jobs.JvmJobError):
        jvm_jobs.sql_type(["null", "string", "int"])


def test_source_declares_every_reader_schema_field_in_order() -> None:
    ddl = jvm_jobs.source_ddl(EP, "t.sports.user_interactions", "g", 2_000)
    fields = [f["name"] for f in avsc.load(jvm_jobs.INTERACTIONS_SCHEMA)["fields"]]
    positions = [ddl.index(f"`{name}` ") for name in fields]
    assert positions == sorted(positions)
    assert "WATERMARK FOR event_time AS event_time - INTERVAL '2.000' SECOND" in ddl
    assert "'scan.bounded.mode' = 'latest-offset'" in ddl
    assert "'scan.startup.mode' = 'earliest-offset'" in ddl
    assert "'value.format' = 'avro-confluent'" in ddl
    # the pinned reader schema is a valid SQL string literal (quotes doubled, no docs)
    literal = ddl.split("'value.avro-confluent.schema' = '", 1)[1].rsplit("')", 1)[0]
    schema = json.loads(literal.replace("''", "'"))
    assert schema["name"] == "UserInteraction" and "doc" not in schema


@pytest.mark.parametrize("kind", jvm_jobs.JOBS)
def test_every_job_reads_one_source_and_writes_exactly_once(kind: str) -> None:
    job = jvm_jobs.build(
        kind,
        EP,
        "p.sports.user_interactions",
        "p.",
        run_id="r1",
        parallelism=2,
        checkpoint_interval_ms=10_000,
        jars=("/x/kafka.jar",),
    )
    assert sum(d.startswith("CREATE TABLE src ") for d in job.ddl) == 1
    sinks = [d for d in job.ddl if not d.startswith("CREATE TABLE src ")]
    assert sinks and all("'sink.delivery-guarantee' = 'exactly-once'" in d for d in sinks)
    prefixes = [d.split("'sink.transactional-id-prefix' = '")[1].split("'")[0] for d in sinks]
    assert len(set(prefixes)) == len(prefixes)  # one transactional id prefix per sink
    assert all(f"'topic' = 'p.jvm.{kind}'" in d for d in sinks)
    assert job.config["parallelism.default"] == "2"
    assert job.config["pipeline.jars"] == "file:///x/kafka.jar"
    script = job.script()
    compile(script, "bench_sql_job.py", "exec")
    assert "statements.execute()" in script


def test_reference_is_a_per_user_one_second_tumble_and_over_has_four_windows() -> None:
    tumble = jvm_jobs.build(
        "tumble", EP, "in", "p.", run_id="r", parallelism=1, checkpoint_interval_ms=1_000
    )
    (insert,) = tumble.inserts
    assert "TUMBLE(TABLE src, DESCRIPTOR(event_time), INTERVAL '1' SECOND)" in insert
    assert "GROUP BY user_id, window_start, window_end" in insert
    over = jvm_jobs.build(
        "over", EP, "in", "p.", run_id="r", parallelism=1, checkpoint_interval_ms=1_000
    )
    assert len(over.inserts) == 4
    assert all("OVER (PARTITION BY user_id ORDER BY event_time RANGE" in i for i in over.inserts)
    assert {i.split("INTERVAL '")[1].split(" PRECEDING")[0] for i in over.inserts} == {
        "1' MINUTE",
        "5' MINUTE",
        "1' HOUR",
        "24' HOUR",
    }
    with pytest.raises(jvm_jobs.JvmJobError):
        jvm_jobs.build("nope", EP, "in", "p.", run_id="r", parallelism=1, checkpoint_interval_ms=1)


# --- measuring ----------------------------------------------------------------------------


def test_offset_metrics_are_summed_per_source_and_topic() -> None:
    class Rest:
        def job(self, _job: str) -> dict[str, Any]:
            return {"vertices": [{"id": "v1"}, {"id": "v2"}]}

        def call(self, _method: str, path: str) -> Any:
            ids = {
                "v1": [
                    "Source__src[1].KafkaSourceReader.topic.p_in.partition.0.currentOffset",
                    "Source__src[1].KafkaSourceReader.topic.p_in.partition.1.currentOffset",
                    "Source__src[1].KafkaSourceReader.topic.other.partition.0.currentOffset",
                    "Source__src[1].numRecordsOut",
                ],
                "v2": ["Sink.numRecordsIn"],
            }
            vertex = path.split("/vertices/")[1].split("/")[0]
            if "?get=" not in path:
                return [{"id": i} for i in ids[vertex]]
            return [
                {"id": ids["v1"][0], "sum": 99.0},
                {"id": ids["v1"][1], "sum": -1.0},  # nothing read yet
            ]

    src = measure.SourceProgress(Rest(), "j", ["p.in"])  # type: ignore[arg-type]
    assert src.read() == {"Source__src[1]|p_in": 100}


def test_progress_is_the_slowest_source_and_waits_for_all() -> None:
    totals = {"a": 100, "b": 10}
    assert measure.progress({"x|a": 50}, totals, 110, sources=2) == 0.0
    assert measure.progress({"x|a": 50, "y|b": 10}, totals, 110, sources=2) == pytest.approx(55)
    assert measure.progress({"x|a": 100, "y|b": 10}, totals, 110, sources=2) == 110


def test_sustained_rate_skips_warmup_and_the_end() -> None:
    # 1,000 events/s after a slow start; the end of input at t=12
    points = [(0.0, 0.0, 0.0), (1.0, 100.0, 1.0), (2.0, 1_000.0, 2.0)]
    points += [(2.0 + i, 1_000.0 + 1_000 * i, 2.0 + i) for i in range(1, 9)]
    points += [(12.0, 10_000.0, 12.0)]
    rate = measure.sustained(points, 10_000, warmup_fraction=0.1)
    assert rate is not None
    assert rate.events_per_s == pytest.approx(1_000)
    assert rate.basis == "after warm-up"
    assert rate.cpu_s_per_million == pytest.approx(1_000)


def test_stale_metric_values_do_not_count_and_short_bounded_windows_end_at_finish() -> None:
    points = [(0.0, 100.0, 0.0), (0.25, 100.0, 0.1), (0.5, 100.0, 0.2), (1.0, 300.0, 0.5)]
    assert measure.fresh(points) == [(0.0, 100.0, 0.0), (1.0, 300.0, 0.5)]
    # a bounded job sampled over 2 s only: from the first sample past warm-up to the finish
    short = [(1.0, 200.0, 1.0), (2.0, 400.0, 2.0), (3.0, 600.0, 3.0)]
    rate = measure.sustained(short, 1_000, finish=(5.0, 5.0))
    assert rate is not None and rate.events_per_s == pytest.approx(200)
    assert rate.basis == "after warm-up to sources finished"
    # unbounded (no finish): the interior slope, however short
    rate = measure.sustained(short, 1_000)
    assert rate is not None and rate.events_per_s == pytest.approx(200)
    assert rate.basis == "after warm-up"


def test_sustained_rate_of_a_job_faster_than_sampling() -> None:
    points = [(10.0, 400.0, 1.0)]
    rate = measure.sustained(points, 1_000, finish=(10.5, 1.5))
    assert rate is not None and rate.events_per_s == pytest.approx(1_200)
    # everything read before the first sample: the sources' start to finish
    rate = measure.sustained([(10.0, 1_000.0, 1.0)], 1_000, finish=(10.5, 1.5), start=(9.5, 0.5))
    assert rate is not None and rate.events_per_s == pytest.approx(1_000)
    assert measure.sustained([(1.0, 0.0, 0.0)], 1_000) is None


def test_threads_are_grouped_by_name_and_costed_per_million_events() -> None:
    assert measure.thread_group("GC Thread#3") == "GC Thread"
    assert measure.thread_group("flink-metrics-14") == "flink-metrics"
    assert measure.thread_group("user-features: ") == "user-features:"
    snaps = [
        (0.0, {"a": 1.0}),
        (1.0, {"a": 2.0, "b": 0.0}),
        (3.0, {"a": 6.0, "b": 1.0}),
        (9.0, {"a": 50.0}),
    ]
    # window 1..3 holds 2,000 events: a spent 4 s, b 1 s
    assert measure.thread_breakdown(snaps, 1.0, 3.0, 2_000) == {"a": 2_000.0, "b": 500.0}
    assert measure.thread_breakdown(snaps, 1.0, 1.5, 2_000) == {}
    import os

    assert measure.thread_cpu([os.getpid()])


def test_percentiles_and_latency_window() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert measure.percentile(values, 50) == 50
    assert measure.percentile(values, 99) == 99
    assert measure.percentile(values, 100) == 100
    assert math.isnan(measure.percentile([], 50))
    seen = [(t + 2_500, t) for t in range(0, 10_000, 1_000)] + [(99_999, 20_000)]
    lat = latencies(seen, 1_000, 9_000)
    assert lat.records == 9 and lat.p50_ms == 2_500 and lat.p99_ms == 2_500


def test_proc_readers_see_this_process() -> None:
    import os

    assert measure.cpu_seconds(os.getpid()) > 0
    assert measure.rss_bytes(os.getpid()) > 1_000_000
    assert measure.cpu_seconds(2**22 + 1) == 0.0


# --- options ------------------------------------------------------------------------------


def test_quick_options_and_overrides() -> None:
    a = build_parser().parse_args(["bench", "--quick", "--events", "5000", "--skip", "over"])
    opts = options_from_args(a)
    assert opts.quick and opts.events == 5_000 and opts.freshness_duration_s == 30
    assert opts.skip == ("over",)
    full = options_from_args(build_parser().parse_args(["bench"]))
    assert full.events == 2_000_000 and full.freshness_rate is None and not full.quick
    # the full run sizes the TaskManagers it starts for its state and caps the slow OVER job
    assert (full.taskmanager_memory, full.over_max_s) == ("4g", 300.0)
    assert (opts.taskmanager_memory, opts.over_max_s) == ("1536m", None)
    given = ["bench", "--taskmanager-memory", "6g", "--over-seconds", "60"]
    mine = options_from_args(build_parser().parse_args(given))
    assert (mine.taskmanager_memory, mine.over_max_s) == ("6g", 60.0)
    assert full.state_backend == "hashmap"
    rocks = options_from_args(build_parser().parse_args(["bench", "--state-backend", "rocksdb"]))
    assert rocks.state_backend == "rocksdb"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--taskmanager-memory", "lots"], "'lots' is not a memory size"),
        (["--taskmanager-memory", "4t"], "'4t' is not a memory size"),
        (["--over-seconds", "0"], "--over-seconds must be positive"),
    ],
)
def test_bad_bench_options_are_named_before_any_work(argv: list[str], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        options_from_args(build_parser().parse_args(["bench", *argv]))


def test_memory_sizes_read_like_flinks() -> None:
    assert memory_bytes("1536m") == memory_bytes("1536mb") == 1536 * 2**20
    assert memory_bytes("4g") == memory_bytes("4 GB") == 4 * 2**30
    assert memory_bytes("4096") == 4096


def test_smaller_taskmanagers_than_asked_are_named_with_what_to_do() -> None:
    full = Options()
    note = small_taskmanagers([4 * 2**30, 1536 * 2**20], full)
    assert note is not None
    assert "1 of 2 TaskManagers" in note and "1,536 MiB" in note
    assert "tipoff cluster up --taskmanager-memory 4g" in note
    assert small_taskmanagers([4 * 2**30, 4 * 2**30], full) is None
    assert small_taskmanagers([0], full) is None  # not reported: no claim


def test_delivery_guarantee_is_a_job_option_passed_to_the_cluster() -> None:
    import argparse

    p = argparse.ArgumentParser()
    add_job_options(p)
    assert p.parse_args([]).delivery_guarantee == EXACTLY_ONCE
    assert p.parse_args(["--delivery-guarantee", AT_LEAST_ONCE]).delivery_guarantee == (
        AT_LEAST_ONCE
    )
    cfg = JobConfig(jobs=("user-features",), bootstrap_servers="b", registry_url="r")
    argv = JobConfig(**{**cfg.__dict__, "delivery_guarantee": AT_LEAST_ONCE}).to_argv()
    assert argv[argv.index("--delivery-guarantee") + 1] == AT_LEAST_ONCE


# --- the report ---------------------------------------------------------------------------


def sample_result() -> dict[str, Any]:
    def row(rate: float) -> dict[str, Any]:
        return {
            "events_per_s": rate,
            "window_s": 10.0,
            "basis": "after warm-up",
            "cpu_s_per_million": 20.0,
            "peak_rss_bytes": 2**31,
            "cpu_s_per_million_by_thread": {"user-features:": 12.0, "GC Thread": 3.0},
        }

    fresh = {
        "p50_ms": 2_400.0,
        "p95_ms": 2_800.0,
        "p99_ms": 3_000.0,
        "records": 1_000,
        "sent_rate": 5_000.0,
        "target_p99_ms": 3_500,
    }
    return {
        "started": "2026-01-01T00:00:00Z",
        "options": {**Options().__dict__, "results_dir": "x", "parallelism": 2},
        "machine": {"cpus": 2, "taskmanagers": 2},
        "input": {
            "records": 100,
            "interactions": 90,
            "game_events": 10,
            "users": 5,
            "games": 1,
            "event_time_s": 60.0,
        },
        "throughput": {
            "jvm_copy": row(400_000),
            "jvm_tumble": row(300_000),
            "jvm_over": row(30_000),
            "tipoff": row(20_000),
        },
        "ratios": {},
        "state": {"bytes_per_active_user": 1_500.0, "users": 5, "bytes_per_game": 9.0},
        "freshness": {
            "rate": 10_000.0,
            "at-least-once": fresh,
            "exactly-once": {**fresh, "p99_ms": 12_000.0, "target_p99_ms": 13_500},
        },
        "targets": {"throughput vs reference": {"met": False, "threshold": 150_000.0}},
    }


def test_table_shows_every_row_with_ratios() -> None:
    text = "\n".join(report.render_table(sample_result()))
    assert "400,000" in text and "20,000" in text
    assert "5.0%" in text and "6.7%" in text  # tipoff vs ceiling, vs reference
    assert "at-least-once" in text and "exactly-once" in text and "12,000" in text
    assert "NOT MET  throughput vs reference" in text
    assert "by thread: user-features: 12, GC Thread 3" in text


def test_write_keeps_the_json_and_draws_the_chart(tmp_path: Path) -> None:
    r = sample_result()
    has_mpl = importlib.util.find_spec("matplotlib") is not None
    path, png = report.write(r, tmp_path, chart=has_mpl)
    loaded = json.loads(path.read_text())
    assert all(k in loaded for k in ("machine", "options", "input", "throughput", "freshness"))
    if has_mpl:
        assert png is not None and png.stat().st_size > 10_000
        assert loaded["chart"] == png.name


def test_table_shows_the_rate_sent_beside_the_scheduled_one() -> None:
    """The freshness rows say what the simulator actually sent against what its schedule
    asked, and flag a sender that fell behind."""
    r = sample_result()
    fr = r["freshness"]
    fr["at-least-once"] = {**fr["at-least-once"], "sent_rate": 9_990.0, "scheduled_rate": 10_050}
    fr["exactly-once"] = {
        **fr["exactly-once"],
        "sent_rate": 7_100.0,
        "scheduled_rate": 10_050,
        "sender_behind": True,
    }
    text = "\n".join(report.render_table(r))
    assert "at-least-once (sent 9,990/s of 10,050/s)" in text
    assert "exactly-once (sent 7,100/s of 10,050/s, SENDER BEHIND)" in text


PER_KEY = {
    "user_keys": 5,
    "user_median_bytes": 1_800.0,
    "user_p10_bytes": 900.0,
    "user_p90_bytes": 3_100.0,
    "user_p99_bytes": 9_000.0,
    "user_max_bytes": 12_345,
    "user_state_shares": {"key-clock": 0.3, "_timer_state/event_user-timers": 0.55},
    "game_keys": 1,
    "game_median_bytes": 9.0,
}


def test_table_shows_the_median_per_user_beside_the_mean() -> None:
    """Since per-key sizes: median, p10/p90/p99, max over the users with state, the mean per
    active user beside it, the shares by state; an old result still shows its mean."""
    r = sample_result()
    r["state"] = {**r["state"], **PER_KEY, "savepoint_bytes": 3 * 2**20}
    text = "\n".join(report.render_table(r))
    assert (
        "state per user: median 1,800 B, p10 900 B, p90 3,100 B, p99 9,000 B, max 12,345 B "
        "over 5 users with state; 1,500 B per active user (mean over 5)"
    ) in text
    assert "state per game: median 9 B over 1 games, 9 B per game; savepoint 3 MiB" in text
    assert "user state by kind: _timer_state/event_user-timers 55%, key-clock 30%" in text
    old = "\n".join(report.render_table(sample_result()))
    assert "state: 1,500 B per active user (mean over 5), 9 B per game; savepoint -" in old
    assert "median" not in old


@pytest.mark.parametrize(
    ("state", "met", "detail"),
    [
        (
            {**PER_KEY, "bytes_per_active_user": 2_600.0},
            True,
            "median 1,800 B per user with state (p90 3,100 B, max 12,345 B, 5 users); mean "
            "2,600 B per active user; serialized bytes in a canonical savepoint, hashmap backend",
        ),
        ({**PER_KEY, "user_median_bytes": 2_048.0}, False, "median 2,048 B per user"),
        (
            {"bytes_per_active_user": 1_000.0, "per_key_error": "compressed"},
            None,
            "median not measured (compressed); mean 1,000 B per active user",
        ),
        ({}, None, "not measured"),
    ],
)
def test_the_state_target_is_the_median_per_user(
    state: dict[str, Any], met: bool | None, detail: str
) -> None:
    """product.md's target is the median under 2 KiB: the mean never decides it."""
    t = state_target(state, "hashmap")
    assert t["met"] is met and t["threshold"] == 2048
    assert t["detail"].startswith(detail)


@pytest.mark.parametrize("fails", [False, True])
def test_state_size_records_per_key_sizes_before_disposing(
    monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    """The savepoint's per-key distribution lands in the state section (or why not), and the
    savepoint is disposed either way."""
    from types import SimpleNamespace

    from flink_jobs.bench import state_phase
    from flink_jobs.cluster import keysizes, savepoints
    from flink_jobs.cluster.keystats import OperatorKeySizes
    from flink_jobs.cluster.keystream import KeySizeError, StateSpec
    from flink_jobs.cluster.savepoints import SavepointInfo, SavepointOperator
    from flink_jobs.pipeline import uid

    user_uid = uid("user-features", "features")
    disposed: list[str] = []
    rest = SimpleNamespace(
        trigger=lambda job, target, timeout_s: SimpleNamespace(path="file:/sp/savepoint-1"),
        dispose=disposed.append,
    )
    cluster = SimpleNamespace(rest=rest, savepoints=Path("/sp"))
    op = SavepointOperator("a" * 32, user_uid, None, 1, 128, keyed_bytes=4_000, has_state=True)
    info = SavepointInfo("file:/sp/savepoint-1", 1, "Savepoint (CANONICAL)", (op,))
    sizes = OperatorKeySizes(
        "file:/sp/savepoint-1",
        user_uid,
        (StateSpec("key-clock", "VALUE"),),
        {"u1": (1_000,), "u2": (2_000,)},
        (2,),
        4_000,
        990,
        10,
    )

    def measure(path: str, uids: list[str]) -> dict[str, OperatorKeySizes]:
        if fails:
            raise KeySizeError(f"{path}: compressed")
        return {user_uid: sizes}

    monkeypatch.setattr(savepoints, "inspect", lambda path: info)
    monkeypatch.setattr(keysizes, "measure_keys", measure)
    logged: list[str] = []
    feed = SimpleNamespace(users=4, games=1)
    st = state_phase.state_size(cluster, "job", feed, Options(), logged.append)  # type: ignore[arg-type]
    assert disposed == ["file:/sp/savepoint-1"]
    assert st["bytes_per_active_user"] == 1_000.0
    if fails:
        assert st["per_key_error"] == "file:/sp/savepoint-1: compressed"
        assert "user_median_bytes" not in st
    else:
        assert (st["user_keys"], st["user_median_bytes"], st["user_max_bytes"]) == (2, 1_500, 2_000)
        assert st["user_state_shares"] == {"key-clock": 1.0}
        assert "game_median_bytes" not in st
        assert any("median 1,500 B per user (2 keys)" in line for line in logged)


def test_live_feed_processes_hold_the_rate_within_partitions_and_cpus() -> None:
    from flink_jobs.bench import freshness

    per = freshness.LIVE_RATE_PER_PROCESS
    cpus = os.cpu_count() or 1
    assert freshness.processes_for(700, 4) == 1
    assert freshness.processes_for(per, 4) == 1
    assert freshness.processes_for(per + 1, 4) == min(2, cpus)
    assert freshness.processes_for(100 * per, 4) == min(4, cpus)
    assert freshness.processes_for(100 * per, 1) == 1
