"""The entry point each job module shares: parse the job options, build, execute."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flink_jobs.config import add_job_options, from_args, resolve
from flink_jobs.pipeline import execute
from flink_jobs.settings import Settings
from udfs import jobs as table


def main(module: str, argv: Sequence[str] | None = None) -> None:
    """Run the jobs of entry module `module` (its `__spec__.name`; udfs.jobs says which)."""
    p = argparse.ArgumentParser(prog=f"python -m {module}")
    add_job_options(p)
    cfg = from_args(p.parse_args(argv), table.job_of_module(module), Settings.load())
    execute(resolve(cfg))
