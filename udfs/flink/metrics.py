"""tipoff's own metrics, registered in the operator's `tipoff` group.

Flink's Prometheus reporter exports them as `flink_taskmanager_job_task_operator_tipoff_*`
(counters as gauges, no `_total`), with the job, task and operator as labels and the
`topic` / `reason` groups as labels too; docs/operations.md lists each one and what it
means, and k8s/monitoring's alerts and dashboard use them.

PyFlink in thread mode has counters and a "distribution" that the reporter shows as the
last value set (platform notes): the gauges below are such last values, and the processing
time is summarised here (p50 / p99 over the last SUMMARY_WINDOW calls) because no histogram
reaches the JVM.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.datastream import RuntimeContext

GROUP = "tipoff"
# Counters (per topic; dead letters also per reason).
EVENTS_IN = "events_in"  # decode: every record read from an input topic
NOT_KEYED = "events_not_keyed"  # decode: valid, but nothing in this job counts it
ACCEPTED = "events_accepted"  # features: accepted into a key's state
DEAD_LETTERS = "dead_letters"  # decode and features, by reason (LATE is the late count)
EMITTED = "features_emitted"  # features: records and tombstones written (no topic label)
# Last-value gauges.
EVENT_TIME_LAG = "event_time_lag_ms"  # processing time - the keyed operator's watermark
FRESHNESS = "feature_freshness_ms"  # computed_at - feature_time of the latest emission
PROCESSING_P50 = "processing_time_p50_us"  # of the last SUMMARY_WINDOW calls
PROCESSING_P99 = "processing_time_p99_us"
PROCESSING_MAX = "processing_time_max_us"

SUMMARY_WINDOW = 1_000
# A gauge is scraped every few seconds and each update is a JNI call: on the per-record
# paths, one update per gauge per GAUGE_EVERY_MS is enough.
GAUGE_EVERY_MS = 100


class OperatorMetrics:
    """Counters and gauges of one operator instance. Counting is a JNI call per increment
    (about 4 µs in thread mode). Counts are not summed in Python to save it: a deferred
    count would wait for the operator's next call, which a quiet input never makes, and the
    counters must reach their totals (tests/integration/test_metrics_prometheus.py)."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self.group = ctx.get_metrics_group().add_group(GROUP)
        self.counters: dict[tuple[str, str | None, str | None], Any] = {}
        self.gauges: dict[str, Any] = {}
        self.updated: dict[str, int] = {}
        self.samples: list[int] = []

    def count(self, name: str, topic: str | None, reason: str | None = None, n: int = 1) -> None:
        key = (name, topic, reason)
        counter = self.counters.get(key)
        if counter is None:
            group = self.group if topic is None else self.group.add_group("topic", topic)
            if reason is not None:
                group = group.add_group("reason", reason)
            counter = self.counters[key] = group.counter(name)
        counter.inc(n)

    def due(self, name: str, now_ms: int) -> bool:
        """Whether gauge `name` should be updated now (at most once per GAUGE_EVERY_MS)."""
        if now_ms - self.updated.get(name, now_ms - GAUGE_EVERY_MS) < GAUGE_EVERY_MS:
            return False
        self.updated[name] = now_ms
        return True

    def gauge(self, name: str, value: int) -> None:
        g = self.gauges.get(name)
        if g is None:
            g = self.gauges[name] = self.group.distribution(name)
        g.update(int(value))

    def timed(self, started_ns: int) -> None:
        """Record one call's processing time; publish the summary every SUMMARY_WINDOW."""
        self.samples.append((time.perf_counter_ns() - started_ns) // 1_000)
        if len(self.samples) >= SUMMARY_WINDOW:
            p50, p99, top = summary(self.samples)
            self.gauge(PROCESSING_P50, p50)
            self.gauge(PROCESSING_P99, p99)
            self.gauge(PROCESSING_MAX, top)
            self.samples.clear()


def summary(samples: list[int]) -> tuple[int, int, int]:
    """(p50, p99, max) by the nearest-rank method."""
    s = sorted(samples)
    n = len(s)
    return s[(n - 1) // 2], s[min(n - 1, -(-99 * n // 100) - 1)], s[-1]
