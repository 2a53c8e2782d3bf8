"""The PrometheusRule generate.py writes to prometheusrule.yaml: the freshness SLO's
recording rules and burn-rate alerts, and the Flink, Kafka and dead-letter alerts."""

from __future__ import annotations

from typing import Any

from monitoring_metrics import (
    BY,
    CHECKPOINT_INTERVAL_MS,
    DEAD_LETTER_RATIO,
    DEPLOYMENTS,
    EVENT_TIME_LAG_CRITICAL_MS,
    EVENT_TIME_LAG_WARNING_MS,
    FAILED_CHECKPOINTS_IN_15M,
    FAST_BURN,
    FRESHNESS_SLO,
    FRESHNESS_TARGET_MS,
    RESTARTS_IN_15M,
    SLOW_BURN,
    m,
    on,
)


def _rule(
    alert: str, expr: str, for_: str, severity: str, summary: str, desc: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": desc, "runbook": RUNBOOK}
    return rule


RUNBOOK = "docs/deploy.md#what-the-alerts-mean"
WINDOWS = ("5m", "30m", "1h", "6h")


def bad_ratio(window: str) -> str:
    return f"tipoff:freshness_bad:ratio_{window}"


def rule_groups() -> list[dict[str, Any]]:
    on_jobs = 'deployment=~"' + "|".join(DEPLOYMENTS) + '"'
    flink = [
        _rule(
            "TipoffJobNotRunning",
            f"max by ({BY}) ({m('running_jobs', on_jobs)}) < 1",
            "5m",
            "critical",
            "{{ $labels.deployment }} has no running Flink job",
            "The JobManager of {{ $labels.namespace }}/{{ $labels.deployment }} reports no "
            "RUNNING job for 5 minutes: failed (restarts exhausted), suspended or stuck "
            "restoring. No features are produced.",
        ),
        *[
            _rule(
                f"TipoffJobMetricsAbsent{''.join(p.title() for p in d.split('-'))}",
                f"absent_over_time({m('running_jobs', on(d))}[10m])",
                "0m",
                "critical",
                f"no metrics from {d} for 10 minutes",
                f"Prometheus scraped no JobManager of {d} for 10 minutes: the deployment is "
                "gone, its JobManager pod is down, or the PodMonitor does not match it.",
            )
            for d in DEPLOYMENTS
        ],
        _rule(
            "TipoffCheckpointsFailing",
            f"sum by ({BY}) (increase({m('failed_checkpoints')}[15m])) "
            f">= {FAILED_CHECKPOINTS_IN_15M}",
            "0m",
            "warning",
            "{{ $labels.deployment }}: {{ $value }} failed checkpoints in 15 minutes",
            "Checkpoints fail (object store, timeout, backpressure). Exactly-once output "
            "is committed only on checkpoints, so output stalls; a fourth failure in a row "
            "restarts the job.",
        ),
        _rule(
            "TipoffCheckpointsStalled",
            f"sum by ({BY}) (increase({m('completed_checkpoints')}[10m])) < 1 "
            f"and on ({BY}) max by ({BY}) ({m('uptime_ms')}) > 600000",
            "5m",
            "critical",
            "{{ $labels.deployment }} completed no checkpoint in 10 minutes",
            "The job runs but no checkpoint completes: read_committed consumers see no new "
            "features, and a restart would replay everything since the last one.",
        ),
        _rule(
            "TipoffCheckpointSlow",
            f"max by ({BY}) ({m('checkpoint_duration_ms')}) > {CHECKPOINT_INTERVAL_MS // 2}",
            "15m",
            "warning",
            "{{ $labels.deployment }}: checkpoints take {{ $value }} ms",
            "Checkpoints take more than half the checkpoint interval: the exactly-once "
            "commit delay, and so consumers' freshness, grows with it.",
        ),
        _rule(
            "TipoffRestarting",
            f"sum by ({BY}) (increase({m('restarts')}[15m])) > {RESTARTS_IN_15M}",
            "0m",
            "warning",
            "{{ $labels.deployment }} restarted {{ $value }} times in 15 minutes",
            "Failovers: a lost TaskManager, a registry outage that outlasted the retries, a "
            "crash loop. Read the JobManager's exceptions (docs/operations.md).",
        ),
    ]
    features = [
        _rule(
            "TipoffEventTimeLagHigh",
            f"max by ({BY}) ({m('event_time_lag_ms')}) > {EVENT_TIME_LAG_WARNING_MS}",
            "10m",
            "warning",
            "{{ $labels.deployment }} is {{ $value }} ms behind in event time",
            "The job processes events well behind their event time: a backlog (catching up "
            "after a restart or a traffic peak) or too little capacity.",
        ),
        _rule(
            "TipoffEventTimeLagCritical",
            f"max by ({BY}) ({m('event_time_lag_ms')}) > {EVENT_TIME_LAG_CRITICAL_MS}",
            "10m",
            "critical",
            "{{ $labels.deployment }} is {{ $value }} ms behind in event time",
            "Event-time lag above 5 minutes for 10 minutes: features are stale for every "
            "consumer. Scale out or find the bottleneck (busy / backpressured tasks).",
        ),
        _rule(
            "TipoffDeadLetterRateHigh",
            f"sum by ({BY}, reason) (rate({m('dead_letters')}[10m])) "
            f"/ ignoring (reason) group_left sum by ({BY}) (rate({m('events_in')}[10m])) "
            f"> {DEAD_LETTER_RATIO}",
            "15m",
            "warning",
            "{{ $labels.deployment }}: {{ $value | humanizePercentage }} of input "
            "dead-lettered as {{ $labels.reason }}",
            "A producer writes bad records (DECODE_ERROR, UNKNOWN_SCHEMA, INVALID), replays "
            "(DUPLICATE) or sends events late (LATE). `tipoff dlq inspect` shows examples.",
        ),
        _rule(
            "TipoffSchemaLookupRetries",
            f"sum by ({BY}) (increase({m('schema_lookup_retries')}[10m])) > 0",
            "0m",
            "warning",
            "{{ $labels.deployment }} retries schema lookups",
            "A record carries a schema id no cache knows while the registry does not "
            "answer: that task waits and then restarts until the registry is back.",
        ),
    ]
    slo_records: list[dict[str, Any]] = [
        {
            "record": "tipoff:feature_freshness_ms:max",
            "expr": f"max by ({BY}) ({m('feature_freshness_ms')})",
        },
        *[
            {
                "record": bad_ratio(w),
                "expr": f"avg_over_time((tipoff:feature_freshness_ms:max > bool "
                f"{FRESHNESS_TARGET_MS})[{w}:30s])",
            }
            for w in WINDOWS
        ],
    ]
    budget = round(1 - FRESHNESS_SLO, 6)
    slo_alerts = [
        _rule(
            "TipoffFreshnessBudgetBurnFast",
            f"{bad_ratio('1h')} > {FAST_BURN * budget:g} and {bad_ratio('5m')} > "
            f"{FAST_BURN * budget:g}",
            "2m",
            "critical",
            "{{ $labels.deployment }} burns its freshness budget fast",
            f"Features leave the job later than {FRESHNESS_TARGET_MS} ms after their "
            f"feature_time (tick + out-of-orderness + 500 ms) more than "
            f"{FAST_BURN * budget:.1%} of the last hour: at this rate the "
            f"{FRESHNESS_SLO:.0%} monthly objective is gone in about two days.",
        ),
        _rule(
            "TipoffFreshnessBudgetBurnSlow",
            f"{bad_ratio('6h')} > {SLOW_BURN * budget:g} and {bad_ratio('30m')} > "
            f"{SLOW_BURN * budget:g}",
            "15m",
            "warning",
            "{{ $labels.deployment }} burns its freshness budget",
            f"Features leave the job later than {FRESHNESS_TARGET_MS} ms after their "
            f"feature_time more than {SLOW_BURN * budget:.0%} of the last 6 hours.",
        ),
    ]
    return [
        {"name": "tipoff.flink", "rules": flink},
        {"name": "tipoff.features", "rules": features},
        {"name": "tipoff.freshness-slo", "rules": [*slo_records, *slo_alerts]},
    ]


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tipoff", "labels": {"app.kubernetes.io/part-of": "tipoff"}},
        "spec": {"groups": rule_groups()},
    }
