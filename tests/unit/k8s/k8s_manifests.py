"""Rendering k8s/ and checking it offline: the operator's CRD schemas, Flink config keys.

No Kubernetes API server exists here, so two of its checks are done the same way it
would: schema validation against the CRD's OpenAPI schema, and strict field validation
(`kubectl apply` rejects unknown fields by default: a field the schema does not declare is
an error, not silently pruned). Flink's `flinkConfiguration` is a free-form string map, so
its keys are checked against Flink 2.2 itself (the config-option classes in pyflink's jars)
and, for the operator's and plugins' keys, against lists taken from their docs.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import re
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from flink_jobs.config import add_job_options

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "k8s"
# Every kustomization of the repository, by a short name.
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "base/schemas": K8S / "base" / "schemas",
    "dev": K8S / "overlays" / "dev",
    "dev/schemas": K8S / "overlays" / "dev" / "schemas",
    "prod": K8S / "overlays" / "prod",
    "prod/schemas": K8S / "overlays" / "prod" / "schemas",
    "monitoring": K8S / "monitoring",
}
OVERLAYS = {"dev": "tipoff-dev", "prod": "tipoff"}  # overlay -> namespace
SECRET_NAME = "tipoff-credentials"
SECRET_KEYS = {
    "kafka-bootstrap-servers",
    "schema-registry-url",
    "s3-access-key-id",
    "s3-secret-access-key",
}

Doc = dict[str, Any]


def pinned_flink() -> str:
    """The apache-flink version pyproject.toml pins (`apache-flink==X.Y.Z`)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        m = re.fullmatch(r"apache-flink==(\d+\.\d+\.\d+)", dep.replace(" ", ""))
        if m:
            return m.group(1)
    raise AssertionError("pyproject.toml pins no apache-flink==X.Y.Z")


def operator_flink_version(version: str) -> str:
    """The FlinkDeployment `flinkVersion` of a Flink release: 2.2.1 -> v2_2."""
    major, minor, _ = version.split(".")
    return f"v{major}_{minor}"


def docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def of_kind(resources: list[Doc], kind: str) -> list[Doc]:
    return [r for r in resources if r.get("kind") == kind]


def deployments(rendered: Mapping[str, list[Doc]], overlay: str) -> dict[str, Doc]:
    """An overlay's FlinkDeployments by name."""
    return {d["metadata"]["name"]: d for d in of_kind(rendered[overlay], "FlinkDeployment")}


def job_options(deployment: Doc) -> argparse.Namespace:
    """The deployment's job args as the job module's own parser reads them."""
    args = deployment["spec"]["job"]["args"]
    p = argparse.ArgumentParser(prog=args[1])
    add_job_options(p)
    try:
        return p.parse_args(args[2:])
    except SystemExit as e:  # argparse reports and exits on unknown or malformed options
        raise AssertionError(f"{args[1]} rejects its args {args[2:]}") from e


# --- CRD schemas ---------------------------------------------------------------------


def _strict(node: Any) -> Any:
    """The schema with Kubernetes' structural semantics made explicit for jsonschema: an
    object that lists its properties accepts no others (unless it preserves unknown fields)."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class CrdSchemas:
    """(apiVersion, kind) -> validator for every version of every CRD file in a folder."""

    validators: Mapping[tuple[str, str], jsonschema.protocols.Validator]
    flink_versions: tuple[str, ...]  # the FlinkDeployment flinkVersion enum as shipped

    @classmethod
    def load(cls, folder: Path, also_accept_flink_version: str | None = None) -> CrdSchemas:
        validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        shipped: tuple[str, ...] = ()
        for f in sorted(folder.glob("*-v1.yml")):  # apiextensions.k8s.io/v1 CRDs
            crd = yaml.safe_load(f.read_text())
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                if kind == "FlinkDeployment":
                    enum = schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
                    shipped = tuple(enum)
                    if also_accept_flink_version and also_accept_flink_version not in enum:
                        enum.append(also_accept_flink_version)
                schema["properties"].update(
                    apiVersion={"type": "string"}, kind={"type": "string"}, metadata=METADATA_SCHEMA
                )
                schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
                strict = _strict(schema)
                jsonschema.Draft7Validator.check_schema(strict)
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    strict
                )
        if not validators:
            raise AssertionError(f"no CRD files (*-v1.yml) in {folder}")
        return cls(validators, shipped)

    def errors(self, resource: Doc) -> list[str]:
        """Schema violations of one custom resource, as `path: message` lines."""
        key = (resource.get("apiVersion", ""), resource.get("kind", ""))
        if key not in self.validators:
            return [f"no CRD for apiVersion/kind {key}"]
        found = self.validators[key].iter_errors(resource)
        return sorted(
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found
        )

    def covers(self, resource: Doc) -> bool:
        return (resource.get("apiVersion", ""), resource.get("kind", "")) in self.validators


# --- Flink configuration keys ---------------------------------------------------------

# Per-resource options of the Flink Kubernetes Operator (its docs, "dynamic" section).
OPERATOR_KEYS = frozenset(
    f"kubernetes.operator.{k}"
    for k in (
        "checkpoint.trigger.grace-period",
        "checkpoint.type",
        "cluster.health-check.checkpoint-progress.enabled",
        "cluster.health-check.checkpoint-progress.window",
        "cluster.health-check.enabled",
        "cluster.health-check.restarts.threshold",
        "cluster.health-check.restarts.window",
        "deployment.readiness.timeout",
        "deployment.rollback.enabled",
        "jm-deployment-recovery.enabled",
        "jm-deployment.shutdown-ttl",
        "jm-deployment.startup.probe.enabled",
        "job.drain-on-savepoint-deletion",
        "job.restart.failed",
        "job.savepoint-on-deletion",
        "job.upgrade.ignore-pending-savepoint",
        "job.upgrade.inplace-scaling.enabled",
        "job.upgrade.last-state-fallback.enabled",
        "job.upgrade.last-state.job-cancel.enabled",
        "job.upgrade.last-state.max.allowed.checkpoint.age",
        "periodic.checkpoint.interval",
        "periodic.savepoint.interval",
        "pod-template.merge-arrays-by-name",
        "savepoint.cleanup.enabled",
        "savepoint.dispose-on-delete",
        "savepoint.format.type",
        "savepoint.history.max.age",
        "savepoint.history.max.count",
        "savepoint.trigger.grace-period",
        "snapshot.resource.enabled",
    )
)
# The operator's autoscaler (its docs, autoscaler configuration).
AUTOSCALER_KEYS = frozenset(
    f"job.autoscaler.{k}"
    for k in (
        "backlog-processing.lag-threshold",
        "catch-up.duration",
        "enabled",
        "excluded.periods",
        "history.max.age",
        "history.max.count",
        "memory.tuning.enabled",
        "metrics.busy-time.aggregator",
        "metrics.window",
        "restart.time",
        "restart.time-tracking.enabled",
        "scale-down.interval",
        "scale-down.max-factor",
        "scale-up.max-factor",
        "scaling.enabled",
        "stabilization.interval",
        "target.utilization",
        "target.utilization.boundary",
        "vertex.max-parallelism",
        "vertex.min-parallelism",
    )
)
# Options of the S3 filesystem plugins (Flink's S3 docs); credentials are deliberately absent:
# they come from the Secret as environment variables, never from flinkConfiguration.
S3_KEYS = frozenset({"s3.endpoint", "s3.path.style.access"})
REPORTER = re.compile(r"metrics\.reporter\.[a-z0-9_-]+\.(?P<option>.+)")


def _pyflink() -> Path:
    spec = importlib.util.find_spec("pyflink")
    assert spec is not None and spec.origin is not None, "apache-flink is not installed"
    return Path(spec.origin).parent


def _utf8_constant(text: str) -> bytes:
    """How a class file stores the string constant `text` (CONSTANT_Utf8, ASCII text)."""
    raw = text.encode()
    return b"\x01" + len(raw).to_bytes(2, "big") + raw


@cache
def _option_classes() -> bytes:
    """The config-option classes of Flink (lib/ and flink-python), concatenated."""
    root = _pyflink()
    jars = [
        *sorted((root / "lib").glob("*.jar")),
        *sorted((root / "opt").glob("flink-python-*.jar")),
    ]
    parts = []
    for jar in jars:
        with zipfile.ZipFile(jar) as z:
            for info in z.infolist():
                if re.search(r"(Options|Config)[^/]*\.class$", info.filename):
                    parts.append(z.read(info))
    return b"\0".join(parts)


@cache
def _plugin_classes() -> dict[str, bytes]:
    """Class name -> bytes of every class in the distribution's plugins/ jars."""
    out = {}
    for jar in sorted((_pyflink() / "plugins").glob("*/*.jar")):
        with zipfile.ZipFile(jar) as z:
            for info in z.infolist():
                if info.filename.endswith(".class"):
                    out[info.filename[:-6].replace("/", ".")] = z.read(info)
    return out


@cache
def _reporter_factories() -> frozenset[str]:
    """Metric reporter factories the distribution's plugins register (service files)."""
    service = "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"
    found: set[str] = set()
    for jar in sorted((_pyflink() / "plugins").glob("*/*.jar")):
        with zipfile.ZipFile(jar) as z:
            if service in z.namelist():
                lines = z.read(service).decode().splitlines()
                found.update(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))
    return frozenset(found)


def flink_defines(key: str) -> bool:
    """Whether Flink 2.2 (the installed apache-flink) declares `key` as a config option."""
    return _utf8_constant(key) in _option_classes()


def unknown_config(conf: Mapping[str, str]) -> list[str]:
    """flinkConfiguration entries that nothing in Flink 2.2, the operator or the plugins
    declares: a typo, a key renamed in Flink 2.0, or a reporter class that does not exist."""
    bad = []
    for key, value in conf.items():
        if key.startswith("kubernetes.operator."):
            ok = key in OPERATOR_KEYS
        elif key.startswith("job.autoscaler."):
            ok = key in AUTOSCALER_KEYS
        elif key.startswith("s3."):
            ok = key in S3_KEYS
        elif m := REPORTER.fullmatch(key):
            option = m.group("option")
            if option == "factory.class":
                ok = flink_defines("factory.class") and str(value) in _reporter_factories()
            else:
                ok = any(_utf8_constant(option) in c for c in _plugin_classes().values())
        else:
            ok = flink_defines(key)
        if not ok:
            bad.append(f"{key}: {value}")
    return bad


_UNITS_MS = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """A Flink duration ('10 s', '1h', '500') in milliseconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", text)
    assert m, f"not a duration: {text!r}"
    return int(m.group(1)) * _UNITS_MS[m.group(2) or "ms"]


def containers(resource: Doc) -> Iterator[Doc]:
    """Every container spec of a FlinkDeployment's pod templates or a Job's pod."""
    spec = resource.get("spec", {})
    templates = [
        spec.get("podTemplate"),
        spec.get("jobManager", {}).get("podTemplate"),
        spec.get("taskManager", {}).get("podTemplate"),
        spec.get("template"),
    ]
    for t in templates:
        if t:
            pod = t.get("spec", {})
            yield from pod.get("initContainers", [])
            yield from pod.get("containers", [])
