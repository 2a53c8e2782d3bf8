"""flinkConfiguration is a free-form map in the CRD: its keys are checked against Flink
2.2 itself (and the operator's and plugins' documented keys), so a typo fails here."""

from __future__ import annotations

import pytest

from tests.unit.k8s.k8s_manifests import Doc, deployments, flink_defines, unknown_config

GOOD = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_every_key_is_known(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Every flinkConfiguration entry of every deployment is a real Flink 2.2, operator,
    autoscaler, S3 or reporter option."""
    for name, d in deployments(rendered, overlay).items():
        assert unknown_config(d["spec"]["flinkConfiguration"]) == [], (overlay, name)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("execution.checkpointing.intervall", "10 s"),  # typo
        ("execution.checkpointing.inter", "10 s"),  # a prefix of a real key is not a key
        ("high-availability.storagedir", "s3://b/ha"),  # case matters
        ("python.execution.mode", "thread"),
        ("kubernetes.operator.periodic.savepoint.intervall", "1h"),
        ("job.autoscaler.enable", "true"),
        ("s3.secret-key", "x"),  # credentials never go into flinkConfiguration
        ("metrics.reporter.prom.portt", "9249"),
        ("metrics.reporter.prom.factory.class", "org.apache.flink.metrics.prometheus.Nope"),
        # a class of the plugin, but not a registered reporter factory
        ("metrics.reporter.prom.factory.class", GOOD.removesuffix("Factory")),
    ],
)
def test_a_wrong_key_is_reported(key: str, value: str) -> None:
    """Misspelled, truncated, mis-cased or invented keys and a wrong reporter class are
    each reported."""
    assert unknown_config({key: value}) == [f"{key}: {value}"]


def test_the_key_lookup_reads_flink_itself() -> None:
    """The Flink 2.2 lookup finds keys of several option classes and not a near miss."""
    for key in ("execution.checkpointing.dir", "high-availability.type", "python.executable"):
        assert flink_defines(key), key
    assert not flink_defines("execution.checkpointing.directory")
    assert unknown_config({"metrics.reporter.prom.factory.class": GOOD}) == []
