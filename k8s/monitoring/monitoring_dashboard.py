"""The Grafana dashboard generate.py writes to dashboard.json."""

from __future__ import annotations

from typing import Any

from monitoring_metrics import FRESHNESS_SLO, FRESHNESS_TARGET_MS, METRICS, m
from monitoring_rules import bad_ratio


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
