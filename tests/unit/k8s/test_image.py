"""k8s/image/Dockerfile: no Docker here to build it, so its key facts are checked against
the project: the Flink and Python versions, the jars, the plugins, no secrets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from flink_jobs.stack.artifacts import FLINK_JARS
from tests.unit.k8s.k8s_manifests import REPO, Doc, deployments, of_kind, pinned_flink

DOCKERFILE = REPO / "k8s" / "image" / "Dockerfile"
IGNORE = REPO / "k8s" / "image" / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def args() -> dict[str, str]:
    return dict(a.split("=", 1) for kind, a in instructions() if kind == "ARG" and "=" in a)


def runs() -> str:
    return "\n".join(a for kind, a in instructions() if kind == "RUN")


def test_base_image_is_the_official_flink_of_the_pinned_version() -> None:
    """FROM flink:<pinned apache-flink>-java17: the JVM side matches PyFlink exactly."""
    froms = [a for kind, a in instructions() if kind == "FROM"]
    assert froms == ["flink:${FLINK_VERSION}-java${JAVA_VERSION}"]
    assert args()["FLINK_VERSION"] == pinned_flink()
    assert args()["JAVA_VERSION"] == "17"


def test_python_is_the_projects() -> None:
    """The image builds the CPython minor version pyproject.toml requires, with a shared
    libpython (thread mode embeds it), and the manifests run that interpreter."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*(\d+\.\d+)", requires)
    assert low is not None
    minor = low.group(1)
    assert args()["PYTHON_VERSION"].startswith(minor + ".")
    assert "--enable-shared" in runs()
    assert f"/usr/local/bin/python{minor}" in runs()


def test_python_executable_in_the_manifests_is_the_images(rendered: dict[str, list[Doc]]) -> None:
    """flinkConfiguration's Python paths name the interpreter the image installs."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.search(r">=\s*(\d+\.\d+)", requires)
    assert minor is not None
    for overlay in ("dev", "prod"):
        for d in deployments(rendered, overlay).values():
            conf = d["spec"]["flinkConfiguration"]
            for key in ("python.executable", "python.client.executable"):
                assert conf[key] == f"/usr/local/bin/python{minor.group(1)}", (overlay, key)


def test_project_is_pip_installed_from_its_sources() -> None:
    """The package (and so apache-flink==pinned) is installed with pip from the copied
    sources: every package directory setuptools includes is copied."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    copies = " ".join(a for kind, a in instructions() if kind == "COPY")
    for pkg in packages:
        assert re.search(rf"\b{pkg} /tmp/tipoff/{pkg}\b", copies), pkg
    assert "pyproject.toml" in copies and "README.md" in copies
    assert "pip install --no-cache-dir /tmp/tipoff" in runs()
    assert "pyflink.version" in runs(), "the build checks the installed PyFlink version"


@pytest.mark.parametrize("coordinate", FLINK_JARS)
def test_connector_jars_are_the_ones_tipoff_uses(coordinate: str) -> None:
    """Each jar tipoff loads locally (artifacts.FLINK_JARS) is required in /opt/flink/lib."""
    _, artifact, version = coordinate.split(":")
    assert f"test -f /opt/flink/lib/{artifact}-{version}.jar" in runs()
    assert any(kind == "COPY" and "k8s/image/jars/" in a for kind, a in instructions())


def test_plugins_and_python_driver_jar() -> None:
    """S3 is enabled as a plugin (copied from opt/), the Prometheus reporter plugin the
    distribution ships is checked, and flink-python sits in lib/ too. The pinned
    distribution (inside apache-flink) really has the reporter and the driver jar."""
    import pyflink

    version = pinned_flink()
    r = runs()
    assert re.search(
        r"cp \"/opt/flink/opt/flink-s3-fs-(hadoop|presto)-\$\{FLINK_VERSION\}\.jar\" "
        r"/opt/flink/plugins/s3-fs-(hadoop|presto)/",
        r,
    )
    reporter = "plugins/metrics-prometheus/flink-metrics-prometheus-${FLINK_VERSION}.jar"
    assert f"/opt/flink/{reporter}" in r
    dist = Path(pyflink.__path__[0])
    assert (dist / reporter.replace("${FLINK_VERSION}", version)).is_file()
    assert (dist / "opt" / f"flink-python-{version}.jar").is_file()
    assert 'cp "/opt/flink/opt/flink-python-${FLINK_VERSION}.jar" /opt/flink/lib/' in r


def test_no_secrets_in_the_image() -> None:
    """No ENV or ARG carries a secret, the context holds only the package sources and
    the jars, and the image runs as the unprivileged flink user."""
    for kind, a in instructions():
        if kind in {"ENV", "ARG"}:
            name = a.split("=", 1)[0]
            assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|SASL", name, re.I), a
    ignore = [ln for ln in IGNORE.read_text().splitlines() if ln and not ln.startswith("#")]
    assert ignore[0] == "*", "the build context is an allow-list"
    assert not any(kind == "COPY" and a.startswith(". ") for kind, a in instructions())
    users = [a for kind, a in instructions() if kind == "USER"]
    assert users[-1] == "flink"


def test_schema_job_image_has_the_cli(rendered: dict[str, list[Doc]]) -> None:
    """The schema Job runs `tipoff` from the same image: the console script pip installs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "tipoff" in project["project"]["scripts"]
    (job,) = of_kind(rendered["prod/schemas"], "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][0] == "tipoff"
