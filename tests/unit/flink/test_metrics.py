"""The processing-time summary published as gauges (PyFlink has no histogram in thread mode)."""

from __future__ import annotations

from udfs.flink.metrics import summary


def test_nearest_rank_percentiles() -> None:
    assert summary(list(range(1, 101))) == (50, 99, 100)
    assert summary([7]) == (7, 7, 7)
    # Unsorted input; p99 of 1,000 values is the 990th smallest.
    values = list(range(1000, 0, -1))
    assert summary(values) == (500, 990, 1000)


def test_a_gauge_is_due_at_most_once_per_interval() -> None:
    from udfs.flink.metrics import GAUGE_EVERY_MS, OperatorMetrics

    m = OperatorMetrics.__new__(OperatorMetrics)  # no Flink context needed for the timing
    m.updated = {}
    assert m.due("lag", 1_000)  # the first update always goes out
    assert not m.due("lag", 1_000 + GAUGE_EVERY_MS - 1)
    assert m.due("freshness", 1_001)  # per gauge
    assert m.due("lag", 1_000 + GAUGE_EVERY_MS)
