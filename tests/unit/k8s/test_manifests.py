"""k8s/: every kustomization renders; what it renders is valid for the operator's CRDs and
Kubernetes, and says what tipoff's jobs need (image, versions, args, storage, secrets)."""

from __future__ import annotations

import copy
import importlib.util
import re
from typing import Any

import pytest

from flink_jobs.cli import build_parser
from flink_jobs.settings import Topics
from flink_jobs.submit import MODULES
from tests.unit.k8s.k8s_manifests import (
    OVERLAYS,
    REPO,
    SECRET_KEYS,
    SECRET_NAME,
    CrdSchemas,
    Doc,
    containers,
    deployments,
    docs,
    duration_ms,
    job_options,
    of_kind,
    operator_flink_version,
    pinned_flink,
)

K8S_BASE = REPO / "k8s" / "base"
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|SASL|JAAS|AUTH", re.I)


def test_every_kustomization_renders(rendered: dict[str, list[Doc]]) -> None:
    """Each base, overlay and the monitoring kustomization renders to named resources."""
    for name, resources in rendered.items():
        assert resources, name
        for r in resources:
            assert r.get("apiVersion") and r.get("kind"), (name, r)
            assert r.get("metadata", {}).get("name"), (name, r)


@pytest.mark.parametrize("overlay", [*OVERLAYS, *(f"{o}/schemas" for o in OVERLAYS)])
def test_overlay_resources_live_in_its_namespace(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Every resource an overlay renders is namespaced to that overlay's namespace."""
    namespace = OVERLAYS[overlay.split("/")[0]]
    assert {r["metadata"].get("namespace") for r in rendered[overlay]} == {namespace}


def test_custom_resources_match_the_operator_crds(
    rendered: dict[str, list[Doc]], crds: CrdSchemas
) -> None:
    """Every flink.apache.org resource, rendered or in k8s/examples, is valid for the
    operator's CRD schema (strict: unknown fields are errors)."""
    examples = [
        d for f in sorted((REPO / "k8s" / "examples").glob("*.yaml")) for d in docs(f.read_text())
    ]
    checked = 0
    for name, resources in [*rendered.items(), ("examples", examples)]:
        for r in resources:
            if r["apiVersion"].startswith("flink.apache.org/"):
                assert crds.errors(r) == [], (name, r["metadata"]["name"])
                checked += 1
    assert checked >= 5  # 2 deployments x (base, dev, prod) + the snapshot example
    assert of_kind(examples, "FlinkStateSnapshot"), "the on-demand savepoint example is missing"


def _set(doc: Doc, path: str, value: Any) -> Doc:
    out = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    node[leaf] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        ("spec.job.parallelism", "2", "is not of type 'integer'"),
        ("spec.job.upgradeMode", "savepoints", "is not one of"),
        ("spec.job.state", "started", "is not one of"),
        ("spec.job.upgradeModes", "savepoint", "Additional properties"),
        ("spec.jobb", {}, "Additional properties"),
        ("spec.flinkVersion", "v2_9", "is not one of"),
        ("spec.flinkConfiguration.taskmanager.numberOfTaskSlots", 1, "is not of type 'string'"),
        ("spec.taskManager.resource.memory", 4096, "is not of type 'string'"),
        ("spec.podTemplate.spec.containers", {"name": "x"}, "is not of type 'array'"),
        ("metadata.name", "User_Features", "does not match"),
    ],
)
def test_validator_rejects_broken_deployments(
    rendered: dict[str, list[Doc]], crds: CrdSchemas, path: str, value: Any, complaint: str
) -> None:
    """A wrong type, an unknown enum value or a misspelled field makes validation fail,
    so the passing check above means something."""
    good = deployments(rendered, "prod")["user-features"]
    if path.startswith("spec.flinkConfiguration."):
        broken = copy.deepcopy(good)
        broken["spec"]["flinkConfiguration"][path.split(".", 2)[2]] = value
    else:
        broken = _set(good, path, value)
    errors = crds.errors(broken)
    assert errors and any(complaint in e for e in errors), errors


def test_validator_rejects_a_broken_snapshot(crds: CrdSchemas) -> None:
    """The snapshot schema is checked too: a job reference of an unknown kind fails."""
    snapshot = docs((REPO / "k8s" / "examples" / "savepoint-user-features.yaml").read_text())[0]
    broken = _set(snapshot, "spec.jobReference.kind", "Deployment")
    assert any("is not one of" in e for e in crds.errors(broken))


def test_one_deployment_per_job_module(rendered: dict[str, list[Doc]]) -> None:
    """dev and prod each run exactly the two jobs, each through the Python driver with the
    module `tipoff submit` uses for it, and that module exists in the package."""
    jobs = {name: module for name, module in MODULES.items() if name != "all"}
    for overlay in OVERLAYS:
        found = deployments(rendered, overlay)
        assert set(found) == set(jobs), overlay
        for name, d in found.items():
            job = d["spec"]["job"]
            assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
            assert job["jarURI"] == f"local:///opt/flink/opt/flink-python-{pinned_flink()}.jar"
            assert job["args"][:2] == ["-pym", jobs[name]], (overlay, name)
            spec = importlib.util.find_spec(jobs[name])
            assert spec is not None and spec.origin is not None, jobs[name]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_versions_and_image(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """flinkVersion is the pinned PyFlink's; the image is the overlay's tagged tipoff image,
    the same one its schema Job runs."""
    import pyflink.version

    assert pyflink.version.__version__ == pinned_flink()
    job_images = {
        c["image"] for j in of_kind(rendered[f"{overlay}/schemas"], "Job") for c in containers(j)
    }
    for d in deployments(rendered, overlay).values():
        assert d["spec"]["flinkVersion"] == operator_flink_version(pinned_flink())
        image = d["spec"]["image"]
        assert re.fullmatch(r"[^\s:]+(:\d+)?/[^\s:]+:[\w][\w.-]*", image), image
        assert not image.endswith(":latest"), image
        assert job_images == {image}, (overlay, job_images, image)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_job_args_parse_and_agree_with_the_flink_configuration(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """The job's own parser accepts the args, and what the job sets from them in code
    (pipeline.py: parallelism, checkpointing, state backend, restarts) agrees with
    flinkConfiguration, which the operator reads: the job's values would win silently."""
    for name, d in deployments(rendered, overlay).items():
        spec, conf = d["spec"], d["spec"]["flinkConfiguration"]
        a = job_options(d)
        assert a.parallelism == spec["job"]["parallelism"], name
        assert a.checkpoint_dir == conf["execution.checkpointing.dir"], name
        assert a.checkpoint_interval == duration_ms(conf["execution.checkpointing.interval"])
        assert a.state_backend == conf["state.backend.type"], name
        assert conf["python.execution-mode"] == "thread"
        if a.restart_attempts > 0:
            assert conf["restart-strategy.type"] == "exponential-delay"
            key = "restart-strategy.exponential-delay.attempts-before-reset-backoff"
            assert int(conf[key]) == a.restart_attempts
        # Never from args: addresses come from the Secret, state from the operator.
        assert a.bootstrap_servers is None and a.registry_url is None, name
        assert not a.bounded and a.from_savepoint is None and a.rest_port is None
        assert a.jar == [], "connector jars are in the image's lib/"
        assert a.delivery_guarantee == "exactly-once"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_state_storage_upgrades_and_savepoints(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Checkpoints, savepoints and HA metadata go to S3 paths of their own per job; upgrades
    keep state; the operator takes periodic savepoints and prunes them."""
    seen: set[str] = set()
    for name, d in deployments(rendered, overlay).items():
        spec, conf = d["spec"], d["spec"]["flinkConfiguration"]
        assert spec["job"]["upgradeMode"] in {"savepoint", "last-state"}
        assert spec["job"]["state"] == "running"
        assert conf["high-availability.type"] == "kubernetes"
        for key in (
            "execution.checkpointing.dir",
            "execution.checkpointing.savepoint-dir",
            "high-availability.storageDir",
        ):
            path = conf[key]
            assert path.startswith("s3://") and f"/{name}/" in path, (key, path)
            assert path not in seen, f"{path} is shared by two deployments"
            seen.add(path)
        assert conf["s3.path.style.access"] == "true" and conf["s3.endpoint"]
        duration_ms(conf["kubernetes.operator.periodic.savepoint.interval"])
        duration_ms(conf["kubernetes.operator.savepoint.history.max.age"])
        assert int(conf["kubernetes.operator.savepoint.history.max.count"]) > 0
        assert conf["taskmanager.numberOfTaskSlots"] == "1", "one GIL per TaskManager"
        assert d["spec"]["serviceAccount"] == "flink"


def test_prod_is_highly_available_and_autoscaled(rendered: dict[str, list[Doc]]) -> None:
    """prod: Kubernetes HA, RocksDB with incremental checkpoints, the autoscaler, and
    rollback of upgrades that do not become healthy."""
    for d in deployments(rendered, "prod").values():
        conf = d["spec"]["flinkConfiguration"]
        assert conf["high-availability.type"] == "kubernetes"
        assert conf["high-availability.storageDir"].startswith("s3://")
        assert conf["state.backend.type"] == "rocksdb"
        assert conf["execution.checkpointing.incremental"] == "true"
        assert conf["job.autoscaler.enabled"] == "true"
        assert conf["kubernetes.operator.deployment.rollback.enabled"] == "true"
        low, high = (int(conf[f"job.autoscaler.vertex.{k}-parallelism"]) for k in ("min", "max"))
        assert 1 <= low <= high <= int(conf["pipeline.max-parallelism"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_port_is_exposed(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """The Prometheus reporter listens on the port the pod template names `metrics`, which
    the PodMonitor scrapes."""
    for d in deployments(rendered, overlay).values():
        conf = d["spec"]["flinkConfiguration"]
        factory = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        assert conf["metrics.reporter.prom.factory.class"] == factory
        main = [c for c in containers(d) if c["name"] == "flink-main-container"]
        assert len(main) == 1
        ports = {p["name"]: p["containerPort"] for p in main[0].get("ports", [])}
        assert ports.get("metrics") == int(conf["metrics.reporter.prom.port"])


@pytest.mark.parametrize("overlay", [*OVERLAYS, *(f"{o}/schemas" for o in OVERLAYS)])
def test_credentials_come_only_from_the_secret(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """No Secret is rendered (none is baked into the manifests); Kafka, registry and object
    store settings reach the containers only through secretKeyRef of the documented Secret,
    and no secret-looking value is written into flinkConfiguration or args."""
    resources = rendered[overlay]
    assert not of_kind(resources, "Secret")
    refs = 0
    for r in resources:
        for c in containers(r):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME and ref["key"] in SECRET_KEYS, e
                    refs += 1
                elif SECRET_LOOKING.search(e["name"]) or e["name"].endswith(
                    ("BOOTSTRAP_SERVERS", "REGISTRY_URL")
                ):
                    raise AssertionError(f"{e['name']} must come from the Secret: {e}")
        for key, value in r.get("spec", {}).get("flinkConfiguration", {}).items():
            assert not re.search(r"password|secret|access-key|token|sasl|jaas", key, re.I), key
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", str(value)), key  # user:pass@host
    assert refs > 0


def test_secret_keys_are_documented() -> None:
    """docs/deploy.md shows how to create the Secret with every key the manifests read."""
    text = (REPO / "docs" / "deploy.md").read_text()
    assert SECRET_NAME in text
    for key in SECRET_KEYS:
        assert key in text, key


@pytest.mark.parametrize("overlay", [*OVERLAYS, *(f"{o}/schemas" for o in OVERLAYS)])
def test_config_map_references_resolve(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Every configMapRef names a ConfigMap of the same render (kustomize renamed both with
    the content hash), and the ConfigMap sets only variables tipoff reads."""
    resources = rendered[overlay]
    maps = {m["metadata"]["name"]: m for m in of_kind(resources, "ConfigMap")}
    known = {*Topics().env(), "TIPOFF_STATE_DIR", "TIPOFF_CACHE_DIR"}
    used = 0
    for r in resources:
        for c in containers(r):
            for source in c.get("envFrom", []):
                name = source["configMapRef"]["name"]
                assert name in maps, (overlay, name, sorted(maps))
                assert set(maps[name]["data"]) <= known, set(maps[name]["data"]) - known
                used += 1
    assert used > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_schema_job_runs_the_gate_then_registers(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """The schema Job runs `tipoff schemas check` first (an init container: an incompatible
    schema stops the Job) and then `tipoff schemas register`; both parse with tipoff's CLI."""
    (job,) = of_kind(rendered[f"{overlay}/schemas"], "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (gate,) = pod["initContainers"]
    (register,) = pod["containers"]
    for c, action in ((gate, "check"), (register, "register")):
        assert c["command"][0] == "tipoff"
        parsed = build_parser().parse_args(c["command"][1:])
        assert (parsed.command, parsed.action) == ("schemas", action)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_account_for_the_jobmanagers(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """The `flink` service account exists and is bound to a Role that lets the JobManager
    manage TaskManager pods and HA ConfigMaps."""
    resources = rendered[overlay]
    (sa,) = [r for r in of_kind(resources, "ServiceAccount") if r["metadata"]["name"] == "flink"]
    (binding,) = of_kind(resources, "RoleBinding")
    assert {
        "kind": "ServiceAccount",
        "name": "flink",
        "namespace": sa["metadata"]["namespace"],
    } in binding["subjects"]
    (role,) = [
        r for r in of_kind(resources, "Role") if r["metadata"]["name"] == binding["roleRef"]["name"]
    ]
    granted = {
        (res, v) for rule in role["rules"] for res in rule["resources"] for v in rule["verbs"]
    }
    for need in ("pods", "configmaps"):
        for verb in ("create", "delete", "watch", "update"):
            assert (need, verb) in granted, (need, verb)


def test_deployments_are_generated_from_the_job_table_and_the_job_settings() -> None:
    """k8s/base/<job>.yaml is what k8s/base/generate.py renders (one template, every job of
    udfs/jobs.py), and its flinkConfiguration holds flink_settings() of the job's deployed
    options: the settings the job applies in code have one source."""
    from flink_jobs.pipeline import flink_settings
    from udfs.jobs import JOBS

    path = K8S_BASE / "deployments.py"
    spec = importlib.util.spec_from_file_location("k8s_base_deployments", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    files = gen.rendered()
    assert sorted(f.name for f in files) == sorted(f"{j.name}.yaml" for j in JOBS)
    for f, text in files.items():
        assert f.read_text() == text, f"{f} is stale: run `make deployments`"
    for job in JOBS:
        (d,) = docs((K8S_BASE / f"{job.name}.yaml").read_text())
        conf = d["spec"]["flinkConfiguration"]
        for key, value in flink_settings(gen.config(job)).items():
            assert conf[key] == value, (job.name, key)
