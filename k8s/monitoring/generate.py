"""Write prometheusrule.yaml and dashboard.json from the metric names and thresholds below.

    .venv/bin/python k8s/monitoring/generate.py      # rewrite both files
    .venv/bin/python k8s/monitoring/generate.py --check   # exit 1 if they are stale

Every metric name the alerts and the dashboard use is in METRICS, so a rename is one edit
here and a rerun; tests/unit/k8s/test_monitoring.py fails while the committed files differ
from this output, and tests/integration/test_metrics_prometheus.py fails if a name here
is not in a real scrape of the jobs.

Names follow Flink's Prometheus reporter: `flink_<scope>_<metric>` with dots as `_`;
counters are exported as gauges (no `_total`), so rates use rate()/increase() on gauges.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from udfs import jobs

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "prometheusrule.yaml"
DASHBOARD_FILE = HERE / "dashboard.json"

METRICS = {
    # Flink's own (JobManager scope: one series per job, labels job_name, job_id).
    "running_jobs": "flink_jobmanager_numRunningJobs",
    "uptime_ms": "flink_jobmanager_job_uptime",
    "restarts": "flink_jobmanager_job_numRestarts",
    "failed_checkpoints": "flink_jobmanager_job_numberOfFailedCheckpoints",
    "completed_checkpoints": "flink_jobmanager_job_numberOfCompletedCheckpoints",
    "checkpoint_duration_ms": "flink_jobmanager_job_lastCheckpointDuration",
    "checkpoint_size_bytes": "flink_jobmanager_job_lastCheckpointFullSize",
    "busy_ms_per_s": "flink_taskmanager_job_task_busyTimeMsPerSecond",
    "backpressured_ms_per_s": "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
    "kafka_pending_records": "flink_taskmanager_job_task_operator_pendingRecords",
    # tipoff's own (udfs/flink/metrics.py), user group `tipoff` on its operators, as a real
    # scrape shows them (tests/integration/test_metrics_prometheus.py checks every name
    # here was scraped): the reporter puts a key-value group's key (topic, reason) into the
    # name as well as into a label.
    "events_in": "flink_taskmanager_job_task_operator_tipoff_topic_events_in",  # topic
    "events_accepted": "flink_taskmanager_job_task_operator_tipoff_topic_events_accepted",
    "dead_letters": "flink_taskmanager_job_task_operator_tipoff_topic_reason_dead_letters",
    "features_emitted": "flink_taskmanager_job_task_operator_tipoff_features_emitted",
    "event_time_lag_ms": "flink_taskmanager_job_task_operator_tipoff_event_time_lag_ms",
    "feature_freshness_ms": "flink_taskmanager_job_task_operator_tipoff_feature_freshness_ms",
    "processing_p99_us": "flink_taskmanager_job_task_operator_tipoff_processing_time_p99_us",
    "processing_max_us": "flink_taskmanager_job_task_operator_tipoff_processing_time_max_us",
    "schema_lookup_retries": "flink_taskmanager_job_task_operator_tipoff_schema_lookup_retries",
}

# Labels the PodMonitor adds from the pods: the FlinkDeployment name and the namespace.
BY = "namespace, deployment"
# The FlinkDeployments are named after their jobs (k8s/<job>.yaml; tests/unit/k8s checks it).
DEPLOYMENTS = jobs.JOB_NAMES

# Freshness SLO (product.md): p99 of (receive - feature_time) under tick + out-of-orderness
# + 500 ms at-least-once, plus the checkpoint interval exactly-once. The freshness gauge is
# computed_at - feature_time of the last emitted record: the part before the commit. It
# must stay under tick + out-of-orderness + 500 ms in either mode (exactly-once adds the
# commit wait, at most the checkpoint interval plus the checkpoint's own duration, which
# TipoffCheckpointSlow watches). Keep TICK_MS / OUT_OF_ORDERNESS_MS equal to the jobs'
# --tick-ms / --out-of-orderness-ms (the test checks the rendered manifests).
TICK_MS = 1_000
OUT_OF_ORDERNESS_MS = 2_000
DELIVERY_SLACK_MS = 500
CHECKPOINT_INTERVAL_MS = 10_000
FRESHNESS_TARGET_MS = TICK_MS + OUT_OF_ORDERNESS_MS + DELIVERY_SLACK_MS
FRESHNESS_SLO = 0.99  # share of time the freshness gauge is within target
# Multi-window burn rates for a 30-day budget (Google SRE workbook): 2% of the budget in
# 1 h pages, 5% in 6 h opens a ticket.
FAST_BURN, SLOW_BURN = 14.4, 6.0

DEAD_LETTER_RATIO = 0.01  # of a job's input, per reason
EVENT_TIME_LAG_WARNING_MS = 30_000
EVENT_TIME_LAG_CRITICAL_MS = 300_000
RESTARTS_IN_15M = 2
FAILED_CHECKPOINTS_IN_15M = 2


def m(name: str, selector: str = "") -> str:
    return METRICS[name] + (f"{{{selector}}}" if selector else "")


def on(deployment: str) -> str:
    return f'deployment="{deployment}"'


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


def _target(expr: str, legend: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": "A"}


DS = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace="$namespace"'
SEL = NS + ', deployment=~"$deployment"'


def _panel(
    title: str, targets: list[tuple[str, str]], unit: str, kind: str = "timeseries"
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {**_target(e, legend), "refId": chr(ord("A") + i)}
            for i, (e, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    by = "by (deployment)"
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        (
            "Jobs",
            [
                _panel(
                    "Running jobs",
                    [(f"max {by} ({m('running_jobs', SEL)})", "{{deployment}}")],
                    "none",
                    "stat",
                ),
                _panel(
                    "Uptime",
                    [(f"max {by} ({m('uptime_ms', SEL)})", "{{deployment}}")],
                    "ms",
                    "stat",
                ),
                _panel(
                    "Restarts (15 min)",
                    [(f"sum {by} (increase({m('restarts', SEL)}[15m]))", "{{deployment}}")],
                    "none",
                ),
                _panel(
                    "Checkpoints (15 min)",
                    [
                        (
                            f"sum {by} (increase({m('completed_checkpoints', SEL)}[15m]))",
                            "{{deployment}} completed",
                        ),
                        (
                            f"sum {by} (increase({m('failed_checkpoints', SEL)}[15m]))",
                            "{{deployment}} failed",
                        ),
                    ],
                    "none",
                ),
                _panel(
                    "Checkpoint duration",
                    [(f"max {by} ({m('checkpoint_duration_ms', SEL)})", "{{deployment}}")],
                    "ms",
                ),
                _panel(
                    "State size (full)",
                    [(f"max {by} ({m('checkpoint_size_bytes', SEL)})", "{{deployment}}")],
                    "bytes",
                ),
            ],
        ),
        (
            "Records",
            [
                _panel(
                    "Events in by topic",
                    [
                        (
                            f"sum by (deployment, topic) (rate({m('events_in', SEL)}[1m]))",
                            "{{deployment}} {{topic}}",
                        )
                    ],
                    "ops",
                ),
                _panel(
                    "Events accepted by topic",
                    [
                        (
                            f"sum by (deployment, topic) (rate({m('events_accepted', SEL)}[1m]))",
                            "{{deployment}} {{topic}}",
                        )
                    ],
                    "ops",
                ),
                _panel(
                    "Feature records emitted",
                    [
                        (
                            f"sum {by} (rate({m('features_emitted', SEL)}[1m]))",
                            "{{deployment}}",
                        )
                    ],
                    "ops",
                ),
                _panel(
                    "Dead letters by reason",
                    [
                        (
                            f"sum by (deployment, reason) (rate({m('dead_letters', SEL)}[5m]))",
                            "{{deployment}} {{reason}}",
                        )
                    ],
                    "ops",
                ),
                _panel(
                    "Dead-letter share of input",
                    [
                        (
                            f"sum by (deployment, reason) (rate({m('dead_letters', SEL)}[10m])) "
                            "/ ignoring (reason) group_left "
                            f"sum by (deployment) (rate({m('events_in', SEL)}[10m]))",
                            "{{deployment}} {{reason}}",
                        )
                    ],
                    "percentunit",
                ),
            ],
        ),
        (
            "Time",
            [
                _panel(
                    "Event-time lag",
                    [(f"max {by} ({m('event_time_lag_ms', SEL)})", "{{deployment}}")],
                    "ms",
                ),
                _panel(
                    "Feature freshness (computed_at - feature_time)",
                    [
                        (f"max {by} ({m('feature_freshness_ms', SEL)})", "{{deployment}}"),
                        (
                            f"vector({FRESHNESS_TARGET_MS})",
                            "target (tick + out-of-orderness + 500 ms)",
                        ),
                    ],
                    "ms",
                ),
                _panel(
                    "Python time per call (last 1,000 calls, worst operator)",
                    [
                        (f"max {by} ({m('processing_p99_us', SEL)})", "{{deployment}} p99"),
                        (f"max {by} ({m('processing_max_us', SEL)})", "{{deployment}} max"),
                    ],
                    "µs",
                ),
                _panel(
                    "Freshness: share of time over target",
                    [
                        (f"{bad_ratio('1h')}{{{SEL}}}", "{{deployment}} 1h"),
                        (f"{bad_ratio('6h')}{{{SEL}}}", "{{deployment}} 6h"),
                        (f"vector({round(1 - FRESHNESS_SLO, 6)})", "budget"),
                    ],
                    "percentunit",
                ),
            ],
        ),
        (
            "Capacity and dependencies",
            [
                _panel(
                    "Busy time (max task)",
                    [
                        (
                            f"max by (deployment, task_name) ({m('busy_ms_per_s', SEL)})",
                            "{{deployment}} {{task_name}}",
                        )
                    ],
                    "ms",
                ),
                _panel(
                    "Backpressured time (max task)",
                    [
                        (
                            f"max by (deployment, task_name) ({m('backpressured_ms_per_s', SEL)})",
                            "{{deployment}} {{task_name}}",
                        )
                    ],
                    "ms",
                ),
                _panel(
                    "Kafka consumer lag (records)",
                    [(f"sum {by} ({m('kafka_pending_records', SEL)})", "{{deployment}}")],
                    "none",
                ),
                _panel(
                    "Schema lookup retries (10 min)",
                    [
                        (
                            f"sum {by} (increase({m('schema_lookup_retries', SEL)}[10m]))",
                            "{{deployment}}",
                        )
                    ],
                    "none",
                ),
            ],
        ),
    ]
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in rows:
        panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        for i, p in enumerate(row):
            p["gridPos"] = {"h": 8, "w": 8, "x": (i % 3) * 8, "y": y + (i // 3) * 8}
            panels.append(p)
        y += ((len(row) + 2) // 3) * 8
    for n, p in enumerate(panels, start=1):
        p["id"] = n
    label_var = {
        "type": "query",
        "datasource": DS,
        "refresh": 2,
        "includeAll": False,
        "multi": False,
    }
    return {
        "title": "tipoff",
        "uid": "tipoff",
        "tags": ["tipoff", "flink"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {
                    **label_var,
                    "name": "namespace",
                    "query": f"label_values({METRICS['running_jobs']}, namespace)",
                },
                {
                    **label_var,
                    "name": "deployment",
                    "includeAll": True,
                    "multi": True,
                    "query": f"label_values({m('running_jobs', NS)}, deployment)",
                },
            ]
        },
        "panels": panels,
    }


HEADER = "# Generated by k8s/monitoring/generate.py: edit that file and rerun it, not this one.\n"


def rendered() -> dict[Path, str]:
    rules = HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=1_000)
    board = json.dumps(dashboard(), indent=2) + "\n"
    return {RULES_FILE: rules, DASHBOARD_FILE: board}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--check", action="store_true", help="exit 1 if a file is not up to date")
    a = p.parse_args(argv)
    stale = [f for f, text in rendered().items() if not f.is_file() or f.read_text() != text]
    if a.check:
        for f in stale:
            print(f"{f} is stale: run {Path(__file__).name}", file=sys.stderr)
        return 1 if stale else 0
    for f, text in rendered().items():
        f.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
