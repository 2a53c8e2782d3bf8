"""`tipoff cluster | jobs | savepoint`: argument handling, job lookup, output, and how a
failed restore is explained (no JVM, no cluster: a fake REST client)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.cli import build_parser, main
from flink_jobs.cluster import commands as cc
from flink_jobs.cluster import common, restore
from flink_jobs.cluster import savepoint_commands as spc
from flink_jobs.cluster.rest import Failure, FlinkRestError, Job, parse_exceptions, summarize_trace
from flink_jobs.output import fmt_bytes

JOB_A = "f585b4bc44191ae424af89a0f760cf6b"
JOB_B = "c25e6e5e5a2da99217b025c4b1601fad"

CANNOT_MAP = "\n".join(
    [
        "org.apache.flink.runtime.client.JobInitializationException: Could not start the "
        "JobMaster.",
        "\tat org.apache.flink.runtime.jobmaster.DefaultJobMasterServiceProcess.x(X.java:97)",
        "Caused by: java.util.concurrent.CompletionException: java.lang.IllegalStateException: "
        "wrapped",
        "\t... 4 more",
        "Caused by: java.lang.IllegalStateException: Failed to rollback to checkpoint/savepoint "
        "file:/sp. Cannot map checkpoint/savepoint state for operator 271c to the new program, "
        "because the operator is not available in the new program.",
        "\t... 4 more",
    ]
)


# --- parsing ------------------------------------------------------------------------------


def test_cluster_options_parse() -> None:
    a = build_parser().parse_args(
        ["cluster", "up", "--taskmanagers", "3", "--rest-port", "18081", "--heartbeat-timeout", "5"]
    )
    assert (a.command, a.action, a.taskmanagers, a.rest_port, a.heartbeat_timeout) == (
        "cluster",
        "up",
        3,
        18081,
        5.0,
    )
    assert build_parser().parse_args(["cluster", "add-taskmanager"]).action == "add-taskmanager"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cluster", "restart"])


def test_savepoint_actions_parse() -> None:
    p = build_parser()
    a = p.parse_args(["savepoint", "stop", "user-features", "--drain", "--jobmanager", "h:1"])
    assert (a.savepoint_action, a.job, a.drain, a.jobmanager) == (
        "stop",
        "user-features",
        True,
        "h:1",
    )
    a = p.parse_args(["savepoint", "trigger", JOB_A])
    assert (a.savepoint_action, a.job, a.timeout, a.dir) == ("trigger", JOB_A, 300.0, None)
    a = p.parse_args(
        ["savepoint", "restore", "/sp", "--job", "game-features", "--parallelism", "2"]
    )
    assert (a.path, a.job, a.parallelism, a.allow_non_restored_state) == (
        "/sp",
        "game-features",
        2,
        False,
    )
    with pytest.raises(SystemExit):  # restore needs --job
        p.parse_args(["savepoint", "restore", "/sp"])
    with pytest.raises(SystemExit):
        p.parse_args(["savepoint"])
    assert p.parse_args(["savepoint", "dispose", "/sp"]).path == "/sp"
    assert p.parse_args(["jobs", "--running"]).running


def test_rest_address_forms() -> None:
    class Cluster:
        url = "http://127.0.0.1:8081"

    assert common.rest_url(None, Cluster()) == "http://127.0.0.1:8081"  # type: ignore[arg-type]
    assert common.rest_url("127.0.0.1:9999", Cluster()) == "http://127.0.0.1:9999"  # type: ignore[arg-type]
    assert common.rest_url("http://h:1/", Cluster()) == "http://h:1"  # type: ignore[arg-type]
    assert common.host_port("http://127.0.0.1:9999") == "127.0.0.1:9999"


# --- job lookup ---------------------------------------------------------------------------


def _job(jid: str, name: str, state: str, start: int = 0) -> Job:
    return Job(jid, name, state, start, 1000)


def test_job_found_by_id_prefix_or_name_running_first() -> None:
    jobs = [
        _job(JOB_A, "tipoff user-features", "FINISHED", 1),
        _job(JOB_B, "tipoff user-features", "RUNNING", 2),
    ]
    assert cc.resolve_job(jobs, JOB_A, "u").id == JOB_A
    assert cc.resolve_job(jobs, "f585", "u").id == JOB_A
    assert cc.resolve_job(jobs, "user-features", "u").id == JOB_B
    assert cc.resolve_job(jobs, "tipoff user-features", "u").id == JOB_B
    with pytest.raises(cc.JobNotFound, match=r"no job 'game-features'.*tipoff jobs"):
        cc.resolve_job(jobs, "game-features", "u")
    with pytest.raises(cc.JobNotFound):
        cc.resolve_job(jobs, "f5", "u")  # too short for a prefix


def test_all_names_the_combined_job_as_run_and_submit_name_it() -> None:
    combined = _job(JOB_A, "tipoff user-features+game-features", "RUNNING", 1)
    jobs = [combined, _job(JOB_B, "tipoff user-features", "RUNNING", 2)]
    assert cc.resolve_job(jobs, "all", "u").id == JOB_A
    assert cc.resolve_job(jobs, "tipoff user-features+game-features", "u").id == JOB_A
    with pytest.raises(cc.JobNotFound, match=r"no job 'all'"):
        cc.resolve_job(jobs[1:], "all", "u")


def test_finished_job_by_name_is_the_newest_and_ambiguity_lists_candidates() -> None:
    old = _job("a" * 32, "tipoff user-features", "FINISHED", 1)
    new = _job("b" * 32, "tipoff user-features", "CANCELED", 5)
    assert cc.resolve_job([old, new], "user-features", "u").id == new.id
    both = [
        _job("abcd" + "0" * 28, "tipoff user-features", "RUNNING"),
        _job("abcd" + "1" * 28, "tipoff game-features", "RUNNING"),
    ]
    with pytest.raises(cc.JobNotFound, match=r"matches several jobs.*full job id"):
        cc.resolve_job(both, "abcd", "u")


class FakeRest:
    """Just enough of FlinkRest for the commands."""

    def __init__(self, jobs: list[Job], details: list[dict[str, Any]] | None = None) -> None:
        self._jobs = jobs
        self.url = "http://127.0.0.1:1"
        self.details = details or []
        self.failures: list[Failure] = []
        self.cancelled: list[str] = []

    def jobs(self) -> list[Job]:
        return self._jobs

    def job(self, job_id: str) -> dict[str, Any]:
        return self.details.pop(0) if len(self.details) > 1 else self.details[0]

    def exceptions(self, job_id: str) -> list[Failure]:
        return self.failures

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


def test_savepoint_of_a_job_that_is_not_running_says_what_to_do(tmp_path: Path) -> None:
    import argparse

    rest = FakeRest([_job(JOB_A, "tipoff user-features", "FINISHED")])
    a = argparse.Namespace(job="f585b4", savepoint_action="trigger", dir=str(tmp_path))
    with pytest.raises(FlinkRestError, match=r"is FINISHED: only a RUNNING job.*savepoint list"):
        spc.take_savepoint(a, rest, None)  # type: ignore[arg-type]
    rest = FakeRest([_job(JOB_A, "tipoff user-features", "RESTARTING")])
    with pytest.raises(FlinkRestError, match=r"is RESTARTING.*wait until it runs again"):
        spc.take_savepoint(a, rest, None)  # type: ignore[arg-type]


# --- restore ------------------------------------------------------------------------------


def _vertices(*states: str) -> list[dict[str, str]]:
    return [{"status": s} for s in states]


def test_restore_watch_returns_when_every_task_runs() -> None:
    rest = FakeRest(
        [],
        [
            {"state": "RUNNING", "vertices": _vertices("INITIALIZING", "RUNNING")},
            {"state": "RUNNING", "vertices": _vertices("RUNNING", "RUNNING")},
        ],
    )
    logged: list[str] = []
    restore.watch_restore(rest, JOB_A, 10, logged.append)  # type: ignore[arg-type]
    assert logged and "INITIALIZING" in logged[0]
    assert rest.cancelled == []


def test_failed_restore_reports_the_root_cause_and_a_hint() -> None:
    rest = FakeRest([], [{"state": "FAILED", "vertices": []}])
    rest.failures = [Failure(1, "JobInitializationException", CANNOT_MAP, None)]
    with pytest.raises(restore.RestoreFailed) as e:
        restore.watch_restore(rest, JOB_A, 10, lambda _: None)  # type: ignore[arg-type]
    msg = str(e.value)
    assert f"job {JOB_A} is FAILED" in msg
    assert "Cannot map checkpoint/savepoint state" in msg
    assert "--allow-non-restored-state" in msg
    assert rest.cancelled == []  # nothing to cancel: it is over


def test_restore_that_keeps_restarting_is_cancelled_with_its_cause() -> None:
    rest = FakeRest([], [{"state": "RESTARTING", "vertices": _vertices("CANCELING")}])
    trace = (
        "java.lang.Exception: Exception while creating StreamOperatorStateContext.\n"
        "Caused by: org.apache.flink.util.StateMigrationException: The new state serializer "
        "is incompatible\n"
    )
    rest.failures = [
        Failure(2, "java.lang.Exception", trace + "(again)", "features"),
        Failure(1, "java.lang.Exception", trace, "features"),
    ]
    with pytest.raises(restore.RestoreFailed) as e:
        restore.watch_restore(rest, JOB_A, 10, lambda _: None)  # type: ignore[arg-type]
    assert rest.cancelled == [JOB_A]
    msg = str(e.value)
    assert "StateMigrationException" in msg and "incompatible state serializer" in msg
    assert "was cancelled" in msg


def test_restore_that_never_runs_times_out_with_what_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    rest = FakeRest([], [{"state": "RUNNING", "vertices": _vertices("DEPLOYING")}])
    with pytest.raises(restore.RestoreFailed, match=r"still RUNNING after 0s.*DEPLOYING"):
        restore.watch_restore(rest, JOB_A, 0.05, lambda _: None)  # type: ignore[arg-type]


def test_submitted_since_picks_the_newest_matching_job() -> None:
    jobs = [
        _job("a" * 32, "tipoff game-features", "FAILED", 100),
        _job("b" * 32, "tipoff game-features", "FAILED", 200),
        _job("c" * 32, "tipoff user-features", "FAILED", 300),
    ]
    assert restore.submitted_since(jobs, "tipoff game-features", 150) == "b" * 32
    assert restore.submitted_since(jobs, "tipoff game-features", 250) is None


def test_savepoint_path_must_be_a_complete_local_savepoint(tmp_path: Path) -> None:
    sp = tmp_path / "savepoint-f585b4-2730a72faf0f"
    with pytest.raises(FlinkRestError, match="does not exist"):
        common.savepoint_location(str(sp))
    sp.mkdir()
    with pytest.raises(FlinkRestError, match="no _metadata"):
        common.savepoint_location(str(sp))
    (sp / "_metadata").write_bytes(b"m")
    assert common.savepoint_location(str(sp)) == sp.resolve().as_uri()
    assert common.savepoint_location(sp.as_uri()) == sp.resolve().as_uri()
    assert common.savepoint_location(str(sp / "_metadata")) == sp.resolve().as_uri()
    assert common.savepoint_location("s3://bucket/sp") == "s3://bucket/sp"


# --- listing and formatting ---------------------------------------------------------------


def test_savepoints_listed_newest_first_with_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, name in enumerate(["savepoint-aaaaaa-1", "savepoint-bbbbbb-2", "savepoint-cccccc-3"]):
        d = tmp_path / name
        d.mkdir()
        if i != 2:
            (d / "_metadata").write_bytes(b"x" * (1000 * (i + 1)))
            os.utime(d / "_metadata", (1_700_000_000 + i * 60, 1_700_000_000 + i * 60))
        else:
            os.utime(d, (1_600_000_000, 1_600_000_000))
    (tmp_path / "not-a-savepoint").mkdir()
    found = spc.find_savepoints(tmp_path)
    assert [sp.path.name for sp in found] == [
        "savepoint-bbbbbb-2",
        "savepoint-aaaaaa-1",
        "savepoint-cccccc-3",
    ]
    assert [sp.complete for sp in found] == [True, True, False]
    assert found[0].size == 2000 and found[0].job_prefix == "bbbbbb"

    class Cluster:
        url = "http://127.0.0.1:9"  # nothing listens: jobs are not named, no error

    spc.list_savepoints(tmp_path, Cluster())  # type: ignore[arg-type]
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["CREATED", "SIZE", "JOB", "PATH"]
    assert "savepoint-bbbbbb-2" in out[1] and "2.0 KB" in out[1]
    assert "incomplete" in out[3]
    spc.list_savepoints(tmp_path / "none", Cluster())  # type: ignore[arg-type]
    assert "no savepoints in" in capsys.readouterr().out


def test_formatting() -> None:
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(6_541_534) == "6.2 MB"
    assert common.fmt_duration(0.4) == "0.4s"
    assert common.fmt_duration(52) == "52s"
    assert common.fmt_duration(303) == "5m03s"
    assert common.fmt_duration(7_260) == "2h01m"
    assert common.fmt_duration(90_000) == "1d01h"
    assert common.local_path("file:/tmp/a%20b") == Path("/tmp/a b")
    assert common.local_path("file:///tmp/x") == Path("/tmp/x")
    assert common.local_path("s3://b/x") is None


CHECKPOINTS: dict[str, Any] = {
    "counts": {"completed": 11, "failed": 4, "in_progress": 0},
    "latest": {
        "completed": {
            "id": 9,
            "is_savepoint": False,
            "latest_ack_timestamp": 1_795_676_265_805,
            "state_size": 7_739_577,
            "end_to_end_duration": 7_948,
            "external_path": "file:/cp/chk-9",
        },
        "savepoint": {
            "id": 12,
            "is_savepoint": True,
            "latest_ack_timestamp": 1_795_676_276_390,
            "state_size": 7_174_126,
            "end_to_end_duration": 4_472,
            "external_path": "file:/sp/savepoint-f585b4-15b0e001db9d",
        },
        "failed": {
            "id": 11,
            "failure_timestamp": 1_795_676_271_855,
            "failure_message": "Checkpoint Coordinator is suspending.",
        },
        "restored": {"is_savepoint": True, "external_path": "file:/sp/savepoint-old"},
    },
}


def test_job_lines_show_last_checkpoint_savepoint_failures_and_origin() -> None:
    lines = cc.job_lines(_job(JOB_A, "tipoff user-features", "FINISHED", 1), CHECKPOINTS)
    assert lines[0].startswith(f"{JOB_A}  FINISHED")
    assert (
        "last checkpoint #9" in lines[1] and "7.4 MB" in lines[1] and "file:/cp/chk-9" in lines[1]
    )
    assert "took 7.9s" in lines[1]
    assert "last savepoint #12" in lines[2] and "savepoint-f585b4" in lines[2]
    # the failure came before the savepoint: not news
    assert not any("failed at" in ln for ln in lines)
    assert "11 completed, 4 failed" in lines[3]
    assert lines[4] == "    restored from savepoint file:/sp/savepoint-old"

    fresh = {
        "counts": {"completed": 0, "failed": 1},
        "latest": {
            "failed": {"id": 1, "failure_timestamp": 5, "failure_message": "tasks not running"}
        },
    }
    lines = cc.job_lines(_job(JOB_B, "tipoff game-features", "RUNNING", 1), fresh)
    assert "no completed checkpoint yet" in lines[1]
    assert "checkpoint #1 failed" in lines[2] and "tasks not running" in lines[2]
    assert "not available" in cc.job_lines(_job(JOB_B, "x", "RUNNING"), None)[1]


def test_trace_summary_and_exception_history() -> None:
    assert summarize_trace(CANNOT_MAP).startswith(
        "org.apache.flink.runtime.client.JobInitializationException: Could not start the "
        "JobMaster. (root cause: java.lang.IllegalStateException: Failed to rollback"
    )
    assert summarize_trace("java.lang.RuntimeException: boom\n\tat x") == (
        "java.lang.RuntimeException: boom"
    )
    assert summarize_trace("") == "unknown cause"
    history = {
        "exceptionHistory": {
            "entries": [
                {"exceptionName": "A", "stacktrace": "A: old", "timestamp": 1, "taskName": None},
                {"exceptionName": "B", "stacktrace": "B: new", "timestamp": 2, "taskName": "t"},
            ]
        }
    }
    assert [f.name for f in parse_exceptions(history)] == ["B", "A"]
    legacy = parse_exceptions({"root-exception": "C: legacy\n\tat y", "timestamp": 3})
    assert legacy[0].name == "C: legacy" and legacy[0].summary == "C: legacy"
    assert parse_exceptions({"exceptionHistory": {"entries": []}}) == []


def test_cluster_status_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", "status", "--state-dir", str(tmp_path), "--rest-port", "9"]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["cluster", "down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing was running" in capsys.readouterr().err


def test_jobs_without_a_cluster_says_how_to_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "--state-dir", str(tmp_path), "--jobmanager", "127.0.0.1:9"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_stop_of_a_local_run_reports_the_savepoint_its_exiting_cluster_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tipoff run --rest-port` exits with its job, often before the savepoint's status can
    be read: the savepoint written meanwhile is reported."""
    import argparse

    class ExitingRest(FakeRest):
        def stop(self, job_id: str, directory: str, **kw: Any) -> None:
            sp = tmp_path / f"savepoint-{job_id[:6]}-0123456789ab"
            sp.mkdir()
            (sp / "_metadata").write_bytes(b"x" * 2048)
            raise FlinkRestError("Flink REST API at http://127.0.0.1:1 is unreachable (refused)")

        def wait_for_state(self, *a: Any) -> str:
            raise FlinkRestError("Flink REST API at http://127.0.0.1:1 is unreachable (refused)")

    rest = ExitingRest([_job(JOB_A, "tipoff user-features+game-features", "RUNNING")])
    a = argparse.Namespace(
        job=JOB_A, savepoint_action="stop", dir=str(tmp_path), drain=False, timeout=5.0
    )
    assert spc.take_savepoint(a, rest, None) == 0  # type: ignore[arg-type]
    out = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert out["savepoint"].endswith("savepoint-f585b4-0123456789ab")
    assert out["size"].startswith("2.0 KB on disk")
    assert "FINISHED" in out["job"]

    class DeadRest(ExitingRest):
        def stop(self, job_id: str, directory: str, **kw: Any) -> None:
            raise FlinkRestError("Flink REST API at http://127.0.0.1:1 is unreachable (refused)")

    a.job, rest = JOB_B, DeadRest([_job(JOB_B, "tipoff user-features", "RUNNING")])
    with pytest.raises(FlinkRestError, match="unreachable"):  # no savepoint: the error stands
        spc.take_savepoint(a, rest, None)  # type: ignore[arg-type]
