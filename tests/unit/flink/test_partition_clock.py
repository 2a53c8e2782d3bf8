"""Per-partition event-time progress for the watermark (udfs/flink/partition_clock.py)."""

from __future__ import annotations

import pytest

from udfs.flink.partition_clock import (
    MIN,
    PartitionClock,
    java_string_hash,
    owned_partitions,
    split_owner,
)

A, B = ("t", 0), ("t", 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    # values printed by java.lang.String.hashCode in jshell (Java 17)
    [
        ("hello", 99162322),
        ("sports.user_interactions", 1377917926),
        ("t1234abcd.sports.game_events", 385203149),
        ("é€x", 483317),
    ],
)
def test_java_string_hash(text: str, expected: int) -> None:
    """The owner formula needs Java's String.hashCode exactly, overflow and UTF-16 included."""
    assert java_string_hash(text) == expected


def test_partitions_are_split_over_readers_like_flink() -> None:
    """Every partition has exactly one owner, consecutive partitions go to consecutive readers."""
    parts = {"sports.user_interactions": 4, "sports.game_events": 3}
    owned = [owned_partitions(parts, r, 2) for r in range(2)]
    assert owned[0].isdisjoint(owned[1]) and len(owned[0] | owned[1]) == 7
    owners = [split_owner("sports.user_interactions", p, 2) for p in range(4)]
    assert owners in ([0, 1, 0, 1], [1, 0, 1, 0])


def test_basis_is_min_over_partitions_of_their_max() -> None:
    """A lagging partition holds the basis back; its own progress releases it."""
    c = PartitionClock([A, B], None, idle_ms=30_000, start_ms=0)
    assert c.observe(A, 0, 1_000, now_ms=1) == MIN  # B has not spoken yet
    assert c.observe(A, 1, 9_000, now_ms=2) == MIN
    assert c.observe(B, 0, 2_000, now_ms=3) == 2_000
    assert c.observe(B, 1, 1_500, now_ms=4) == 2_000  # monotone
    assert c.observe(B, 2, 12_000, now_ms=5) == 9_000


def test_idle_partition_stops_holding_back() -> None:
    """A partition silent for longer than the idle time no longer holds the basis."""
    c = PartitionClock([A, B], None, idle_ms=100, start_ms=0)
    c.observe(B, 0, 500, now_ms=0)
    assert c.observe(A, 0, 5_000, now_ms=50) == 500
    assert c.observe(A, 1, 6_000, now_ms=200) == 6_000


def test_finished_and_empty_partitions_do_not_hold_back() -> None:
    """In a bounded run a partition read to its end offset (or empty) is done."""
    c = PartitionClock([A, B, ("t", 2)], {A: 2, B: 10, ("t", 2): 0}, idle_ms=30_000, start_ms=0)
    c.observe(A, 0, 100, now_ms=0)
    assert c.observe(B, 0, 7_000, now_ms=1) == 100
    assert c.observe(A, 1, 200, now_ms=2) == 7_000  # A reached its end offset


def test_unexpected_partition_is_adopted() -> None:
    """A partition the owner formula did not predict still takes part."""
    c = PartitionClock([A], None, idle_ms=30_000, start_ms=0)
    c.observe(A, 0, 5_000, now_ms=0)
    assert c.observe(("u", 0), 0, 3_000, now_ms=1) == 5_000
    assert c.observe(A, 1, 9_000, now_ms=2) == 5_000
