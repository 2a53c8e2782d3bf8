"""What `tipoff bench` can be asked (no heavy imports: the CLI parser reads the defaults)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHASES = ("copy", "tumble", "over", "tipoff", "freshness")


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    events: int = 2_000_000
    users: int = 20_000
    games: int = 24
    event_rate: float = 1_000.0  # events per second of event time in the preload
    seed: int = 42
    partitions: int = 4
    parallelism: int | None = None  # default: the number of TaskManagers
    taskmanagers: int = 2  # when the bench starts the cluster
    # Process size of each TaskManager when the bench starts the cluster: tipoff's heap
    # state of the full feed fills 1.5 GB TaskManagers (BENCHMARKS.md, "Full runs").
    taskmanager_memory: str = "4g"
    checkpoint_interval_ms: int = 10_000
    state_backend: str = "hashmap"  # tipoff's (the JVM OVER job always runs on RocksDB)
    tick_ms: int = 1_000
    out_of_orderness_ms: int = 2_000
    freshness_rate: float | None = None  # default: half of tipoff's sustained rate
    freshness_duration_s: float = 120.0
    freshness_warmup_s: float = 20.0
    warmup_fraction: float = 0.1
    job_timeout_s: float = 3_600.0
    # The OVER job (context only) runs about 1,300 events/s on the full feed: measured over
    # at most this long, then cancelled. None: to the end of its input.
    over_max_s: float | None = 300.0
    results_dir: Path = Path("bench-results")
    skip: tuple[str, ...] = ()
    keep_topics: bool = False
    chart: bool = True
    quick: bool = False

    @classmethod
    def quick_defaults(cls) -> dict[str, Any]:
        """--quick: about a minute of work per phase, the same code paths."""
        return {
            "events": 100_000,
            "users": 5_000,
            "games": 12,
            "freshness_duration_s": 30.0,
            "freshness_warmup_s": 5.0,
            "job_timeout_s": 600.0,
            "taskmanager_memory": "1536m",
            "over_max_s": None,
        }


def options_from_args(a: argparse.Namespace) -> Options:
    values: dict[str, Any] = Options.quick_defaults() if a.quick else {}
    given = {
        "events": a.events,
        "users": a.users,
        "games": a.games,
        "event_rate": a.event_rate,
        "seed": a.seed,
        "parallelism": a.parallelism,
        "taskmanagers": a.taskmanagers,
        "taskmanager_memory": a.taskmanager_memory,
        "over_max_s": a.over_seconds,
        "checkpoint_interval_ms": a.checkpoint_interval,
        "state_backend": a.state_backend,
        "freshness_rate": a.rate,
        "freshness_duration_s": a.freshness_duration,
        "freshness_warmup_s": a.freshness_warmup,
        "results_dir": a.results,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    if a.taskmanager_memory is not None:
        memory_bytes(a.taskmanager_memory)  # a clear error now, not after the preload
    if a.over_seconds is not None and a.over_seconds <= 0:
        raise BenchError(f"--over-seconds must be positive, not {a.over_seconds}")
    unknown = sorted(set(a.skip) - set(PHASES))
    if unknown:
        raise BenchError(f"--skip: unknown phase(s) {', '.join(unknown)} (of {', '.join(PHASES)})")
    return Options(
        **values,
        skip=tuple(a.skip),
        keep_topics=a.keep_topics,
        chart=not a.no_chart,
        quick=a.quick,
    )


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}


def memory_bytes(size: str) -> int:
    """A Flink memory size ("1536m", "4g", "4096mb") in bytes."""
    text = size.strip().lower()
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = text[len(digits) :].strip()
    if not digits.isdigit() or unit not in _UNITS:
        raise BenchError(
            f"--taskmanager-memory: {size!r} is not a memory size; use e.g. 1536m or 4g"
        )
    return int(digits) * _UNITS[unit]
