"""Job options: one table (config.OPTIONS) builds the parser, from_args and to_argv, so a
config survives the trip to a job module unchanged; from_args does no I/O."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from flink_jobs.config import OPTIONS, JobConfig, add_job_options, from_args
from flink_jobs.settings import Settings, Topics


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_job_options(p)
    return p


def _settings(tmp_path: Path) -> Settings:
    return Settings.load({"HOME": str(tmp_path)})


def test_every_config_field_is_an_option_or_set_by_the_caller() -> None:
    by_caller = {"jobs", "topics", "transaction_timeout_ms"}
    fields = {f.name for f in dataclasses.fields(JobConfig)}
    assert {o.field for o in OPTIONS} | by_caller == fields
    assert len({o.field for o in OPTIONS}) == len(OPTIONS)


def test_defaults_come_from_the_config(tmp_path: Path) -> None:
    cfg = from_args(_parser().parse_args([]), ("user-features",), _settings(tmp_path))
    for f in ("parallelism", "checkpoint_interval_ms", "tick_ms", "state_cache_keys"):
        assert getattr(cfg, f) == getattr(JobConfig, f)


ARGS = [
    "--bootstrap-servers",
    "k:9",
    "--registry-url",
    "http://r",
    "--bounded",
    "--parallelism",
    "3",
    "--checkpoint-interval",
    "2500",
    "--delivery-guarantee",
    "at-least-once",
    "--state-backend",
    "rocksdb",
    "--checkpoint-dir",
    "file:///c",
    "--tick-ms",
    "500",
    "--out-of-orderness-ms",
    "700",
    "--idleness-ms",
    "9000",
    "--jar",
    "/a.jar",
    "--jar",
    "/b.jar",
    "--schema-cache-dir",
    "/sc",
    "--restart-attempts",
    "0",
    "--state-cache-keys",
    "7",
    "--topic-user-interactions",
    "x.ui",
]


@pytest.mark.parametrize("extra", [[], ["--schemas-dir", "/s"]])
def test_to_argv_rebuilds_the_same_config(tmp_path: Path, extra: list[str]) -> None:
    settings = _settings(tmp_path)
    cfg = from_args(_parser().parse_args([*ARGS, *extra]), ("game-features",), settings)
    assert cfg.parallelism == 3 and cfg.jars == ("/a.jar", "/b.jar") and cfg.bounded
    assert cfg.topics == dataclasses.replace(Topics(), user_interactions="x.ui")
    again = from_args(_parser().parse_args(cfg.to_argv()), ("game-features",), settings)
    assert again == cfg


def test_options_not_passed_on() -> None:
    cfg = JobConfig(("user-features",), "b", "r", from_savepoint="/sp", rest_port=1)
    argv = cfg.to_argv()
    assert "--from-savepoint" not in argv and "--rest-port" not in argv
    assert "--bounded" not in argv
