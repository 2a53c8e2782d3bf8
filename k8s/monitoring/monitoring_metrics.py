"""The metric names and thresholds the alerts (monitoring_rules.py) and the dashboard
(monitoring_dashboard.py) use; generate.py renders both. A rename is one edit here and a
rerun of generate.py.

Names follow Flink's Prometheus reporter: `flink_<scope>_<metric>` with dots as `_`;
counters are exported as gauges (no `_total`), so rates use rate()/increase() on gauges.
"""

from __future__ import annotations

from udfs import jobs

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
