"""The Flink Kubernetes Operator's CRDs, for the manifest tests (tests/unit/k8s): fetched
from Maven Central as flink-kubernetes-operator-api and unpacked once into the cache."""

from __future__ import annotations

from pathlib import Path

from flink_jobs.stack.artifacts import DEPENDENCY_PLUGIN, FetchError, Progress, fetch_once, mvn

# The Flink Kubernetes Operator's CRDs with their OpenAPI schemas live in this jar's
# META-INF/fabric8/. 1.10.0 is the newest version the Maven Central reachable here serves
# (its metadata lists 1.3.0, 1.7.0 and 1.10.0; 1.11.0 to 1.13.0 answer 404), and its
# FlinkVersion enum ends at v1_20: docs/deploy.md says how the tests bridge that gap.
OPERATOR_API_VERSION = "1.10.0"


def operator_crds(cache: Path, log: Progress) -> Path:
    """The folder of the operator's CRD files (`<plural>.flink.apache.org-v1.yml`), unpacked
    from `flink-kubernetes-operator-api`: the same schemas the operator installs."""
    what = f"Flink Kubernetes Operator API {OPERATOR_API_VERSION} (CRDs)"

    def fill(work: Path, out: Path) -> None:
        mvn(
            [
                f"{DEPENDENCY_PLUGIN}:unpack",
                f"-Dartifact=org.apache.flink:flink-kubernetes-operator-api:{OPERATOR_API_VERSION}",
                "-Dmdep.unpack.includes=META-INF/fabric8/*.yml",
                f"-DoutputDirectory={out}",
            ],
            work,
            what,
        )
        if not list((out / "META-INF" / "fabric8").glob("*.yml")):
            raise FetchError(f"{what}: the jar has no META-INF/fabric8/*.yml")

    target = cache / f"flink-kubernetes-operator-api-{OPERATOR_API_VERSION}"
    return fetch_once(target, what, fill, log) / "META-INF" / "fabric8"
