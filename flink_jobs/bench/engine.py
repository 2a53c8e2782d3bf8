"""The feature engines alone, without Flink: CPU per input event over the benchmark's feed.

    python -m flink_jobs.bench.engine --events 300000
    python -m flink_jobs.bench.engine --events 2000000 --engines v2

Drives the pure state machines (udfs.features, first generation "v1"; udfs.features.v2,
"v2") as the pure drivers do — arrivals in send order, a watermark trailing the largest
event time by the bench's out-of-orderness bound, timers fired as it passes them — over
the feed `tipoff bench` preloads (the same simulator, seed, users, games and event rate).
It reports CPU microseconds per input event for each tenth of the feed, so cost that
grows with history shows as a rising row, and for the whole feed. The end-of-input flush
(ticks up to 30 days past the last event, which a streaming run never reaches) is timed
apart.

The drivers keep every output record and accepted event in memory, which a job does not:
Python's cyclic garbage collector would charge their growing number to the engine, so it
is off while an engine runs (and collected between runs).

`--store` counts what an adapter must add to keep the state in Flink: "encode" encodes
each changed state (v2: its explicit encoding, a game's core and tiles; v1: the pickles
the release-2 adapter writes), "none" does not. Numbers are process CPU time, one core:
run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import pickle
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flink_jobs.sim import SimConfig, Simulation
from udfs.features import driver as v1_driver
from udfs.features.common import Event
from udfs.features.families import FAMILIES
from udfs.features.v2 import driver as v2_driver

TOPIC = {"game": "sports.game_events", "interaction": "sports.user_interactions"}
PARTITIONS = 4
TENTHS = 10


def feed(events: int, users: int, games: int, event_rate: float, seed: int) -> list[Event]:
    """The bench's preload as decoded events, in send order, with Kafka-like coordinates
    (a stable hash of the key picks one of 4 partitions; offsets count per partition)."""
    from flink_jobs.tools import simulate

    cfg = SimConfig(seed=seed, games=games, users=users)
    cfg = simulate.plan(cfg, 0, int(time.time() * 1000), max(60.0, events / event_rate), events)
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for em in Simulation(cfg):
        part = zlib.crc32(em.key.encode()) % PARTITIONS
        n = offsets.get((em.kind, part), 0)
        offsets[(em.kind, part)] = n + 1
        out.append(Event(em.record["event_time"], TOPIC[em.kind], part, n, em.kind, em.record))
    return out


@dataclass
class Timing:
    engine: str
    family: str
    store: str
    events: int
    per_tenth_us: list[float]  # CPU µs per input event in each tenth of the feed
    streaming_us: float  # CPU µs per input event over the whole feed, flush excluded
    flush_s: float  # the end-of-input flush (CPU s)
    outputs: int

    @property
    def growth(self) -> float:
        """Last tenth over the first (1.0: flat)."""
        return self.per_tenth_us[-1] / self.per_tenth_us[0]


def _timed(events: list[Event], marks: list[float]) -> Iterator[Event]:
    """Yields the events, noting the process CPU time at the start and after each tenth."""
    n = len(events)
    bounds = {n * (i + 1) // TENTHS for i in range(TENTHS)}
    marks.append(time.process_time())
    for i, ev in enumerate(events, 1):
        yield ev
        if i in bounds:
            marks.append(time.process_time())


def _v1_pickling(family: str) -> Any:
    """The v1 machine, pickling its state after every evaluation as the release-2 adapter
    writes it (the feature state and the clock, each with the pickle protocol PyFlink
    uses), so its numbers include that cost like v2's "encode"."""
    machine = FAMILIES[family].machine

    def on_tick(state: Any, tick: int, tick_ms: int) -> Any:
        step = machine.on_tick(state, tick, tick_ms)
        if step.state is not None and step.changed:
            clock = step.state.clock
            pending, seen = clock.pending, clock.seen
            clock.pending, clock.seen = [], {}
            pickle.dumps(step.state, protocol=pickle.HIGHEST_PROTOCOL)
            clock.pending, clock.seen = pending, seen
        return step

    return SimpleNamespace(new_state=machine.new_state, on_tick=on_tick)


def measure(engine: str, family: str, store: str, events: list[Event], bound: int) -> Timing:
    gc.collect()
    gc.disable()
    try:
        return _measure(engine, family, store, events, bound)
    finally:
        gc.enable()


def _measure(engine: str, family: str, store: str, events: list[Event], bound: int) -> Timing:
    marks: list[float] = []
    stream = _timed(events, marks)
    if engine == "v1":
        machine = _v1_pickling(family) if store == "encode" else None
        res = v1_driver.run(family, stream, out_of_orderness_ms=bound, machine=machine)
    else:
        res = v2_driver.run(family, stream, out_of_orderness_ms=bound, store=store)
    end = time.process_time()
    n = len(events)
    per = [(b - a) * 1e6 / (n / TENTHS) for a, b in itertools.pairwise(marks)]
    return Timing(
        engine,
        family,
        store,
        n,
        [round(x, 1) for x in per],
        round((marks[-1] - marks[0]) * 1e6 / n, 1),
        round(end - marks[-1], 2),
        len(res.outputs),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flink_jobs.bench.engine",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Writes bench-results/engine-<UTC stamp>.json beside the table.",
    )
    p.add_argument("--events", type=int, default=300_000, help="input events (300,000)")
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--games", type=int, default=24)
    p.add_argument("--event-rate", type=float, default=1_000.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out-of-orderness-ms", type=int, default=2_000)
    p.add_argument("--engines", default="v1,v2", help="comma-separated: v1 (first generation), v2")
    p.add_argument("--families", default="user,game", help="comma-separated: user, game")
    p.add_argument("--store", choices=("none", "encode"), default="encode")
    p.add_argument("--results", type=Path, default=Path("bench-results"))
    a = p.parse_args(argv)
    engines = [e for e in a.engines.split(",") if e]
    families = [f for f in a.families.split(",") if f]
    bad = [e for e in engines if e not in ("v1", "v2")] + [
        f for f in families if f not in ("user", "game")
    ]
    if bad or a.events <= 0:
        p.error(f"unknown engine or family {bad}, or --events not positive")
    started = time.process_time()
    events = feed(a.events, a.users, a.games, a.event_rate, a.seed)
    print(
        f"feed: {len(events):,} events ({a.users:,} users, {a.games} games, seed {a.seed}) "
        f"built in {time.process_time() - started:.0f} CPU s",
        file=sys.stderr,
    )
    timings = []
    for family in families:
        for engine in engines:
            print(f"{engine} {family} ...", file=sys.stderr, flush=True)
            timings.append(measure(engine, family, a.store, events, a.out_of_orderness_ms))
    print(f"CPU µs per input event, by tenth of the feed ({len(events):,} events, store={a.store})")
    print(f"{'engine':<6} {'family':<6} {'whole':>7} {'last/1st':>8}  tenths")
    for t in timings:
        tenths = " ".join(f"{x:6.1f}" for x in t.per_tenth_us)
        print(f"{t.engine:<6} {t.family:<6} {t.streaming_us:7.1f} {t.growth:8.2f}  {tenths}")
    a.results.mkdir(parents=True, exist_ok=True)
    out = a.results / f"engine-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
    out.write_text(
        json.dumps(
            {
                "options": options,
                "events": len(events),
                "timings": [{**vars(t), "growth": round(t.growth, 2)} for t in timings],
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
