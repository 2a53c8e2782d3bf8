"""Session fixtures for the k8s/ checks: a kustomize, the operator's CRDs, promtool.

Each is found or fetched once into the download cache (~/.cache/tipoff or
$TIPOFF_CACHE_DIR) from a reachable registry: kustomize from PATH, kubectl or the Go
module proxy; the CRDs from Maven Central; promtool from Debian. When none can be had the
fixture fails with what to install: a manifest check that silently skipped would pass
broken manifests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flink_jobs.settings import Settings
from tests.support import debian, kustomize
from tests.support.crds import operator_crds
from tests.unit.k8s.k8s_manifests import (
    KUSTOMIZATIONS,
    CrdSchemas,
    Doc,
    docs,
    operator_flink_version,
    pinned_flink,
)


def _log(msg: str) -> None:
    print(msg, flush=True)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Settings.load().stack.cache_dir


@pytest.fixture(scope="session")
def rendered(cache_dir: Path) -> dict[str, list[Doc]]:
    """Every kustomization of k8s/, rendered: name -> its resources."""
    cmd = kustomize.command(os.environ, cache_dir, _log)
    return {name: docs(kustomize.render(cmd, path)) for name, path in KUSTOMIZATIONS.items()}


@pytest.fixture(scope="session")
def crds(cache_dir: Path) -> CrdSchemas:
    # The newest operator API on the reachable Maven Central (1.10.0) predates Flink 2.x in
    # its FlinkVersion enum; the pinned Flink's value is accepted on top of the real
    # schema (docs/deploy.md, "What the tests check"). Everything else is the real schema.
    folder = operator_crds(cache_dir, _log)
    return CrdSchemas.load(folder, also_accept_flink_version=operator_flink_version(pinned_flink()))


@pytest.fixture(scope="session")
def promtool(cache_dir: Path) -> Path:
    return debian.prometheus(cache_dir, _log).promtool
