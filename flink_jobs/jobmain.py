"""The entry point each job module shares: parse the job options, build, execute."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flink_jobs.config import add_job_options, from_args
from flink_jobs.pipeline import execute
from flink_jobs.settings import Settings


def main(jobs: Sequence[str], argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog=f"python -m flink_jobs.{jobs[0].replace('-', '_')}")
    add_job_options(p)
    cfg = from_args(p.parse_args(argv), jobs, Settings.load())
    execute(cfg)
