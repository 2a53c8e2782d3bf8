"""Debian packages unpacked into the cache: Prometheus's tools run from there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flink_jobs.settings import Settings
from flink_jobs.stack.artifacts import FetchError
from tests.support import debian


def test_prometheus_tools_run_from_the_cache() -> None:
    """promtool and the prometheus server from Debian's package run, unpacked, not installed."""
    cache = Settings.load().stack.cache_dir
    tools = debian.prometheus(cache, print)
    assert cache in tools.root.parents
    for binary in (tools.promtool, tools.prometheus):
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
        assert out.returncode == 0 and "version 2." in out.stdout + out.stderr, binary


def test_unknown_package_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A package apt does not know fails with the reason (and no apt-get update as non-root)."""
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(FetchError, match="apt knows no package"):
        debian.unpacked("tipoff-no-such-package", tmp_path, print)
