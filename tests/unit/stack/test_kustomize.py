"""Which kustomize the manifest checks use, and the loud failure when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import kustomize


def _no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kustomize.shutil, "which", lambda name: None)


def test_explicit_binary_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TIPOFF_KUSTOMIZE is used as `<it> build` when it runs, whatever else is installed."""
    monkeypatch.setattr(kustomize, "_works", lambda cmd: cmd == ["/opt/kustomize"])
    env = {kustomize.ENV_KUSTOMIZE: "/opt/kustomize"}
    assert kustomize.command(env, tmp_path, print) == ["/opt/kustomize", "build"]


def test_explicit_binary_that_does_not_run_fails(tmp_path: Path) -> None:
    """A TIPOFF_KUSTOMIZE that does not run is an error, not a silent fallback."""
    env = {kustomize.ENV_KUSTOMIZE: str(tmp_path / "missing")}
    with pytest.raises(kustomize.KustomizeNotFound, match="does not run"):
        kustomize.command(env, tmp_path, print)


def test_cached_build_before_kubectl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A kustomize built earlier (pinned version) is preferred to kubectl's embedded one."""
    binary = kustomize.cached_binary(tmp_path)
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    _no_tools(monkeypatch)
    assert kustomize.command({}, tmp_path, print) == [str(binary), "build"]


def test_nothing_to_render_with_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No kustomize, no kubectl, no Go: the error names the ways to get one."""
    _no_tools(monkeypatch)
    with pytest.raises(kustomize.KustomizeNotFound) as e:
        kustomize.command({}, tmp_path, print)
    assert "go install sigs.k8s.io/kustomize/kustomize/v5@" in str(e.value)
    assert kustomize.ENV_KUSTOMIZE in str(e.value)
