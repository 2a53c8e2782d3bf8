"""What `tipoff bench` can be asked (no heavy imports: the CLI parser reads the defaults)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flink_jobs.cliopts import Subparsers, stack_options

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


def add_parser(sub: Subparsers) -> None:
    """The `bench` command's parser (its handler: flink_jobs.bench.runner.main)."""
    d = Options()
    bn = sub.add_parser(
        "bench",
        help="throughput and freshness of tipoff against JVM-only Flink SQL jobs",
        description="In one invocation, on the local standalone cluster (started if it is not "
        "running) and the configured Kafka + registry: preload N simulated events into fresh "
        "bench topics; measure a JVM copy job (I/O ceiling), the JVM reference (Flink SQL "
        "per-user 1 s tumbling counts) and JVM OVER-window counts, then tipoff's full pipeline "
        "(both jobs, exactly-once), each from the earliest offset; the state per active user "
        "from a savepoint; then freshness with the simulator live at a fixed rate, "
        "at-least-once and exactly-once. Prints a table, writes a JSON result and a PNG chart "
        "under --results. See BENCHMARKS.md.",
    )
    bn.add_argument(
        "--quick",
        action="store_true",
        help="a short version (100,000 events, 30 s freshness runs): a smoke test, not a "
        "measurement",
    )
    bn.add_argument("--events", type=int, help=f"simulated events to preload ({d.events:,})")
    bn.add_argument("--users", type=int, help=f"simulated users ({d.users:,})")
    bn.add_argument("--games", type=int, help=f"simulated games ({d.games})")
    bn.add_argument(
        "--event-rate",
        type=float,
        help=f"preload: events per second of event time ({d.event_rate:,.0f})",
    )
    bn.add_argument("--seed", type=int, help=f"simulator seed ({d.seed})")
    bn.add_argument(
        "--parallelism", type=int, help="of every job (default: the number of TaskManagers)"
    )
    bn.add_argument(
        "--taskmanagers",
        type=int,
        help=f"TaskManagers when the bench starts the cluster ({d.taskmanagers})",
    )
    bn.add_argument(
        "--taskmanager-memory",
        metavar="SIZE",
        help=f"process size of each TaskManager when the bench starts the cluster "
        f"({d.taskmanager_memory}; --quick: {Options.quick_defaults()['taskmanager_memory']}): "
        "tipoff's heap state of the full feed fills smaller ones. A running cluster is used as "
        "it is; smaller TaskManagers there are named in the report",
    )
    bn.add_argument(
        "--over-seconds",
        type=float,
        metavar="S",
        help=f"measure the OVER job (context only, slow) for at most S seconds, then cancel it "
        f"({d.over_max_s:.0f}; --quick: to the end of its input)",
    )
    bn.add_argument(
        "--checkpoint-interval",
        type=int,
        metavar="MS",
        help=f"of every job: the exactly-once commit interval ({d.checkpoint_interval_ms})",
    )
    bn.add_argument(
        "--state-backend",
        choices=["hashmap", "rocksdb"],
        help=f"tipoff's state backend ({d.state_backend}; rocksdb checkpoints incrementally)",
    )
    bn.add_argument(
        "--rate",
        type=float,
        help="freshness: simulated events/s (default: half of tipoff's measured rate)",
    )
    bn.add_argument(
        "--freshness-duration",
        type=float,
        metavar="S",
        help=f"seconds of live input per delivery guarantee ({d.freshness_duration_s:.0f})",
    )
    bn.add_argument(
        "--freshness-warmup",
        type=float,
        metavar="S",
        help=f"seconds of ticks not counted at the start ({d.freshness_warmup_s:.0f})",
    )
    bn.add_argument("--results", type=Path, help=f"folder for the JSON and PNG ({d.results_dir})")
    bn.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=PHASES,
        metavar="PHASE",
        help=f"leave out phases: {', '.join(PHASES)}",
    )
    bn.add_argument(
        "--keep-topics", action="store_true", help="keep the bench topics (default: deleted)"
    )
    bn.add_argument("--no-chart", action="store_true", help="no PNG (no matplotlib needed)")
    bn.add_argument("--rest-port", type=int, help="the local cluster's REST port (8081)")
    bn.add_argument("--rpc-port", type=int, help="the local cluster's RPC port (6123)")
    stack_options(bn)
