"""The entry point each job module shares: parse the job options, build, execute."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flink_jobs.config import add_job_options, from_args, resolve
from flink_jobs.pipeline import execute
from flink_jobs.settings import Settings
from udfs import jobs as table


def main(jobs: Sequence[str], argv: Sequence[str] | None = None) -> None:
    module = table.JOB[jobs[0]].module if len(jobs) == 1 else table.ALL_MODULE
    p = argparse.ArgumentParser(prog=f"python -m {module}")
    add_job_options(p)
    cfg = from_args(p.parse_args(argv), jobs, Settings.load())
    execute(resolve(cfg))
