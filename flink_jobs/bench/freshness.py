"""Freshness: how long after its tick a feature record reaches a consumer.

The simulator runs live (event_time = wall clock) at a fixed rate in its own process; a
read_committed consumer in this process notes, for every feature record and tombstone,
its arrival time minus its `feature_time` header. Only ticks inside the steady part of
the run count: after a warm-up, and before the end of input (the last ticks fire only when
later events move the watermark, which stops with the input).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer

from flink_jobs.bench.measure import percentile
from flink_jobs.pipeline import FEATURE_TIME_HEADER


class LatencyConsumer(threading.Thread):
    """Reads topics from the beginning with isolation.level=read_committed and records
    (arrival ms, feature_time ms) of every record that has the header."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"tipoff-bench-freshness-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                # Do not let the consumer itself wait: fetches return as soon as data exists.
                "fetch.wait.max.ms": 10,
                "log_level": 3,
            }
        )
        self.consumer.subscribe(list(topics))
        self.seen: list[tuple[int, int]] = []  # (arrival ms, feature_time ms)
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                batch = self.consumer.consume(num_messages=5000, timeout=0.05)
                now = int(time.time() * 1000)
                for m in batch:
                    if m.error() is not None:
                        continue
                    header = dict(m.headers() or []).get(FEATURE_TIME_HEADER)
                    if header is not None:
                        self.seen.append((now, int(header)))
        except BaseException as e:  # reported by the caller
            self.error = e
        finally:
            self.consumer.close()

    def stop(self) -> list[tuple[int, int]]:
        self._halt.set()
        self.join(30)
        return self.seen


@dataclass(frozen=True)
class Latency:
    records: int  # records in the measured window
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    window_s: float  # span of feature times measured


def latencies(seen: Sequence[tuple[int, int]], first_tick_ms: int, last_tick_ms: int) -> Latency:
    """Percentiles of arrival − feature_time over records whose tick is in the window."""
    values = sorted(a - t for a, t in seen if first_tick_ms <= t <= last_tick_ms)
    return Latency(
        len(values),
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        float(values[-1]) if values else float("nan"),
        (last_tick_ms - first_tick_ms) / 1000,
    )


# Live events/s one simulator process holds with room to spare beside a busy cluster on
# the 2-core machine kind (docs/simulator.md, "Send rates": one process sends about 30,000/s
# on a free core; every process also generates the whole feed).
LIVE_RATE_PER_PROCESS = 8_000


def processes_for(rate: float, partitions: int) -> int:
    """Producer processes for a live feed at `rate`: enough to hold it, at most one per
    partition (each sends whole partitions) and per CPU."""
    want = max(1, math.ceil(rate / LIVE_RATE_PER_PROCESS))
    return max(1, min(want, partitions, os.cpu_count() or 1))


@dataclass(frozen=True)
class LiveFeed:
    sent: int
    seconds: float
    start_ms: int
    end_ms: int
    output: str
    processes: int = 1
    # What the simulator reports of its timeline (records/s): the rate the schedule asked
    # and the rate it actually kept, and its largest delay behind the schedule.
    scheduled_rate: float = 0.0
    achieved_rate: float = 0.0
    max_lag_s: float = 0.0
    warning: str = ""

    @property
    def behind(self) -> bool:
        return bool(self.warning)


def simulate_live(
    env: Mapping[str, str],
    rate: float,
    duration_s: float,
    users: int,
    games: int,
    seed: int,
    processes: int = 1,
) -> LiveFeed:
    """`tipoff simulate --rate R --duration D --processes P` in a subprocess (its own GILs
    and CPU)."""
    cmd = [
        sys.executable,
        "-m",
        "flink_jobs.cli",
        "simulate",
        "--rate",
        f"{rate:g}",
        "--duration",
        f"{duration_s:g}",
        "--users",
        str(users),
        "--games",
        str(games),
        "--seed",
        str(seed),
        # No sends 30-120 s late: they would keep the simulator running two more minutes
        # and are dead-lettered anyway (duplicates and <= 1.5 s disorder stay).
        "--late-share",
        "0",
        "--processes",
        str(processes),
        "--quiet",
    ]
    start = int(time.time() * 1000)
    proc = subprocess.run(
        cmd, env=dict(env), capture_output=True, text=True, timeout=duration_s + 300, check=False
    )
    end = int(time.time() * 1000)
    if proc.returncode != 0:
        raise RuntimeError(f"live simulator failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    found = re.search(r"sent (\d+) records in ([\d.]+)s", proc.stdout)
    sent, seconds = (int(found[1]), float(found[2])) if found else (0, (end - start) / 1000)
    live = re.search(
        r"live: achieved ([\d.]+)/s of ([\d.]+)/s scheduled.*max send lag ([\d.]+)s",
        proc.stdout,
    )
    if live is None:
        raise RuntimeError(f"live simulator printed no achieved rate: {proc.stdout[-2000:]}")
    warning = next((ln for ln in proc.stderr.splitlines() if ln.startswith("WARNING:")), "")
    return LiveFeed(
        sent,
        seconds,
        start,
        end,
        proc.stdout,
        processes,
        scheduled_rate=float(live[2]),
        achieved_rate=float(live[1]),
        max_lag_s=float(live[3]),
        warning=warning,
    )
