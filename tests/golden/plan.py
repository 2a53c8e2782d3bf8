"""The fixed input of the golden savepoints: the same records, keys and partitions (so the
same offsets) whenever it is written, before and after the savepoint was taken."""

from __future__ import annotations

from flink_jobs.sim import SimConfig

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


def keep_forever(bootstrap: str, topics: list[str]) -> None:
    """retention.ms=-1 on the golden input topics: the simulator stamps records with their
    event time, and this input's ends on END_MS, which a topic's default 7-day retention
    deletes as soon as it is written (the simulator refuses such a timeline)."""
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    from flink_jobs.stack.health import admin

    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            t,
            incremental_configs=[
                ConfigEntry("retention.ms", "-1", incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for t in topics
    ]
    client = admin(bootstrap)  # held until the futures resolve
    for fut in client.incremental_alter_configs(resources).values():
        fut.result()
