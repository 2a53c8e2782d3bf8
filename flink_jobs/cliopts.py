"""Options several `tipoff` commands share: the local stack's, the JobManager address and
the JOB argument. Each command's parser lives beside its handler; this module is what they
have in common (flink_jobs.cli puts them together)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from flink_jobs.settings import Settings
from udfs.jobs import ALL, JOB_NAMES

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# A JOB argument: one job of the table (udfs.jobs) or all of them in one Flink job.
JOB_CHOICES = [*JOB_NAMES, ALL]
JOBS_TEXT = f"{', '.join(JOB_NAMES)} or {ALL} (every job in one Flink job)"


def stack_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("local stack")
    g.add_argument("--kafka-port", type=int, help="Kafka broker port (default 9092)")
    g.add_argument("--controller-port", type=int, help="KRaft controller port (default 9093)")
    g.add_argument("--registry-port", type=int, help="schema registry port (default 8085)")
    g.add_argument("--state-dir", type=Path, help="stack data folder")
    g.add_argument("--cache-dir", type=Path, help="download cache folder")


def settings_of(a: argparse.Namespace) -> Settings:
    return Settings.load(
        kafka_port=getattr(a, "kafka_port", None),
        controller_port=getattr(a, "controller_port", None),
        registry_port=getattr(a, "registry_port", None),
        state_dir=getattr(a, "state_dir", None),
        cache_dir=getattr(a, "cache_dir", None),
    )


def jobmanager_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobmanager",
        metavar="HOST:PORT",
        help="Flink REST address, e.g. of `tipoff run --rest-port` (default: tipoff's local "
        "cluster)",
    )
