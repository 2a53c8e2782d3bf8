"""The fixed input of the golden savepoints: the same records, keys and partitions (so the
same offsets) whenever it is written, before and after the savepoint was taken."""

from __future__ import annotations

from udfs.sim import SimConfig

PREFIX = "golden1."
PARTITIONS = 3
END_MS = 1_795_651_200_000  # 2026-11-26T00:00:00Z: the input's event time ends here
EVENTS = 3_000


def plan() -> tuple[SimConfig, slice, slice]:
    """The simulation, and which of its emissions come before and after the savepoint."""
    from flink_jobs.tools import simulate

    cfg = SimConfig(seed=71, users=300, games=8, late_share=0.004, duplicate_share=0.01)
    cfg = simulate.plan(cfg, 0, END_MS, 1_200, EVENTS)
    half = EVENTS // 2
    return cfg, slice(0, half), slice(half, None)
