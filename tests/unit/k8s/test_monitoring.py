"""k8s/monitoring/: the generated rules and dashboard are current, promtool accepts the
rules and their alerts fire (and stay quiet) on synthetic series, and the scrape config
matches the deployments."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.k8s.k8s_manifests import K8S, Doc, containers, deployments, job_options, of_kind


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "tipoff_monitoring", K8S / "monitoring" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()
# generate.py's parts, beside it: it put their folder on the path.
mon_metrics = importlib.import_module("monitoring_metrics")
mon_rules = importlib.import_module("monitoring_rules")
NS, JOB = "tipoff", "user-features"
WHERE = f'namespace="{NS}", deployment="{JOB}"'


def rules_file(tmp_path: Path, annotations: bool = True) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rules file."""
    groups = yaml.safe_load((K8S / "monitoring" / "prometheusrule.yaml").read_text())["spec"][
        "groups"
    ]
    if not annotations:  # promtool's alert tests compare annotations too; they test the exprs
        for g in groups:
            for r in g["rules"]:
                r.pop("annotations", None)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def alert_names() -> list[str]:
    groups = mon_rules.prometheus_rule()["spec"]["groups"]
    return [r["alert"] for g in groups for r in g["rules"] if "alert" in r]


def test_committed_files_are_the_generators_output() -> None:
    """prometheusrule.yaml and dashboard.json are exactly what generate.py writes: edit the
    generator (metric names are in one dict, in monitoring_metrics.py), not the outputs."""
    for path, text in gen.rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run k8s/monitoring/generate.py"


def test_promtool_accepts_the_rules(promtool: Path, tmp_path: Path) -> None:
    """`promtool check rules` on the PrometheusRule's groups (syntax, templates)."""
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    return {"series": f"{mon_metrics.METRICS[name]}{{{WHERE}{extra}}}", "values": values}


def _healthy(minutes: int) -> list[dict[str, str]]:
    """A running job: checkpoints every 10 s, no failures, low lag, fresh features."""
    both = [
        {
            "series": f"{mon_metrics.METRICS['running_jobs']}"
            f'{{namespace="{NS}", deployment="{d}"}}',
            "values": f"1x{minutes}",
        }
        for d in mon_metrics.DEPLOYMENTS
    ]
    return [
        *both,
        _series("uptime_ms", f"0+60000x{minutes}"),
        _series("completed_checkpoints", f"0+6x{minutes}"),
        _series("failed_checkpoints", f"0x{minutes}"),
        _series("checkpoint_duration_ms", f"800x{minutes}"),
        _series("restarts", f"0x{minutes}"),
        _series("event_time_lag_ms", f"2500x{minutes}"),
        _series("feature_freshness_ms", f"2400x{minutes}"),
        _series("events_in", f"0+6000x{minutes}", topic="sports.user_interactions"),
        _series("dead_letters", f"0+6x{minutes}", topic="sports.user_interactions", reason="LATE"),
        _series("schema_lookup_retries", f"0x{minutes}"),
    ]


def _replace(series: list[dict[str, str]], new: dict[str, str]) -> list[dict[str, str]]:
    """The healthy series with the one of the same metric (and labels) swapped."""
    return [s for s in series if s["series"] != new["series"]] + [new]


def _expect(alert: str, **labels: str) -> dict[str, Any]:
    return {"alertname": alert, "exp_alerts": [{"exp_labels": labels}]}


SEV = {"critical": "critical", "warning": "warning"}
M = 40  # minutes of synthetic series per case


CASES: list[tuple[str, list[dict[str, str]], dict[str, Any]]] = [
    (
        "job not running",
        _replace(
            _healthy(M),
            {"series": f"{mon_metrics.METRICS['running_jobs']}{{{WHERE}}}", "values": f"0x{M}"},
        ),
        _expect("TipoffJobNotRunning", severity="critical", namespace=NS, deployment=JOB),
    ),
    (
        "no metrics from game-features",
        [s for s in _healthy(M) if 'deployment="game-features"' not in s["series"]],
        _expect(
            "TipoffJobMetricsAbsentGameFeatures", severity="critical", deployment="game-features"
        ),
    ),
    (
        "checkpoints failing",
        _replace(_healthy(M), _series("failed_checkpoints", f"0+1x{M}")),
        _expect("TipoffCheckpointsFailing", severity="warning", namespace=NS, deployment=JOB),
    ),
    (
        "checkpoints stalled",
        _replace(_healthy(M), _series("completed_checkpoints", f"500x{M}")),
        _expect("TipoffCheckpointsStalled", severity="critical", namespace=NS, deployment=JOB),
    ),
    (
        "restarting",
        _replace(_healthy(M), _series("restarts", f"0+1x{M}")),
        _expect("TipoffRestarting", severity="warning", namespace=NS, deployment=JOB),
    ),
    (
        "event-time lag",
        _replace(_healthy(M), _series("event_time_lag_ms", f"45000x{M}")),
        _expect("TipoffEventTimeLagHigh", severity="warning", namespace=NS, deployment=JOB),
    ),
    (
        "dead letters",
        _replace(
            _healthy(M),
            _series("dead_letters", f"0+300x{M}", topic="sports.user_interactions", reason="LATE"),
        ),
        _expect(
            "TipoffDeadLetterRateHigh",
            severity="warning",
            namespace=NS,
            deployment=JOB,
            reason="LATE",
        ),
    ),
    (
        "schema lookups retried",
        _replace(_healthy(M), _series("schema_lookup_retries", f"0+3x{M}")),
        _expect("TipoffSchemaLookupRetries", severity="warning", namespace=NS, deployment=JOB),
    ),
    (
        "freshness budget burning",
        _replace(
            _healthy(M),
            _series("feature_freshness_ms", f"{mon_metrics.FRESHNESS_TARGET_MS + 1500}x{M}"),
        ),
        _expect("TipoffFreshnessBudgetBurnFast", severity="critical", namespace=NS, deployment=JOB),
    ),
]


@pytest.mark.parametrize(("case", "series", "expected"), CASES, ids=[c[0] for c in CASES])
def test_alert_fires(
    promtool: Path,
    tmp_path: Path,
    case: str,
    series: list[dict[str, str]],
    expected: dict[str, Any],
) -> None:
    """Each alert fires on series that show its problem (promtool test rules)."""
    _promtool_test(promtool, tmp_path, series, [{"eval_time": f"{M}m", **expected}])


def test_healthy_jobs_raise_no_alert(promtool: Path, tmp_path: Path) -> None:
    """Two healthy running jobs raise none of the alerts."""
    quiet = [{"eval_time": f"{M}m", "alertname": a, "exp_alerts": []} for a in alert_names()]
    _promtool_test(promtool, tmp_path, _healthy(M), quiet)


def _promtool_test(
    promtool: Path, tmp_path: Path, series: list[dict[str, str]], tests: list[dict[str, Any]]
) -> None:
    rules = rules_file(tmp_path, annotations=False)
    spec = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.run(
        [str(promtool), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_thresholds_follow_the_jobs(rendered: dict[str, list[Doc]]) -> None:
    """The freshness target is built from the tick, out-of-orderness and checkpoint
    interval the deployed jobs really use."""
    for overlay in ("dev", "prod"):
        for d in deployments(rendered, overlay).values():
            a = job_options(d)
            assert (a.tick_ms, a.out_of_orderness_ms) == (
                mon_metrics.TICK_MS,
                mon_metrics.OUT_OF_ORDERNESS_MS,
            )
            assert a.checkpoint_interval == mon_metrics.CHECKPOINT_INTERVAL_MS
    assert (
        mon_metrics.FRESHNESS_TARGET_MS
        == mon_metrics.TICK_MS + mon_metrics.OUT_OF_ORDERNESS_MS + 500
    )


def test_pod_monitor_scrapes_the_flink_pods(rendered: dict[str, list[Doc]]) -> None:
    """The PodMonitor's port is the pods' `metrics` port and its selector matches the
    labels the FlinkDeployments put on their pods (plus the one Flink adds)."""
    (monitor,) = of_kind(rendered["monitoring"], "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.pop("type") == "flink-native-kubernetes"  # set by Flink on its pods
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert {"deployment", "namespace"} <= targets, "the rules group by these labels"
    for overlay in ("dev", "prod"):
        for d in deployments(rendered, overlay).values():
            labels = d["spec"]["podTemplate"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
            ports = [p["name"] for c in containers(d) for p in c.get("ports", [])]
            assert endpoint["port"] in ports


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in {"expr", "query"} and isinstance(v, str)] + [
            e for v in node.values() for e in _exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_dashboard_uses_only_known_metrics(rendered: dict[str, list[Doc]]) -> None:
    """Every metric the dashboard and the rules query is in monitoring_metrics.py's METRICS or is a
    recording rule; every METRICS name is used; the ConfigMap carries the dashboard."""
    board = json.loads((K8S / "monitoring" / "dashboard.json").read_text())
    rule = mon_rules.prometheus_rule()
    recorded = {r["record"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}
    known = set(mon_metrics.METRICS.values()) | recorded
    used: set[str] = set()
    for expr in _exprs(board) + _exprs(rule):
        names = set(re.findall(r"\b(flink_[A-Za-z0-9_]+|tipoff:[a-z0-9_:]+)", expr))
        assert names <= known, (expr, names - known)
        used |= names
    assert set(mon_metrics.METRICS.values()) <= used, set(mon_metrics.METRICS.values()) - used
    (cm,) = of_kind(rendered["monitoring"], "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["tipoff.json"]) == board
