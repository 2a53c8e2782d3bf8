"""Find (or build once) a kustomize that renders k8s/ overlays, for the manifest tests.

In order: $TIPOFF_KUSTOMIZE (a kustomize binary), `kustomize` on PATH, a kustomize this
module built before, `kubectl kustomize` (kubectl embeds kustomize), and last a build of
kustomize from the Go module proxy with the installed Go (`go install`, about a minute on
2 cores, once: the binary is kept in the cache folder). Debian has no kustomize package
(only a kubectl 1.20 whose embedded kustomize is years old) and PyPI and npm have no
maintained kustomize binary, so the Go module is the fetch that works everywhere Go is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.1"  # needs Go >= 1.24
ENV_KUSTOMIZE = "TIPOFF_KUSTOMIZE"

Progress = Callable[[str], None]


class KustomizeNotFound(RuntimeError):
    pass


def _works(cmd: list[str]) -> bool:
    try:
        proc = subprocess.run(
            [*cmd, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def cached_binary(cache: Path) -> Path:
    return cache / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


def build(cache: Path, log: Progress) -> Path:
    """`go install` the pinned kustomize into the cache folder; the binary's path."""
    target = cached_binary(cache)
    if target.is_file():
        return target
    go = shutil.which("go")
    if go is None:
        raise KustomizeNotFound(
            "no kustomize renderer: none of $TIPOFF_KUSTOMIZE, `kustomize`, `kubectl` is "
            "available and Go is not installed to build one. Install one of them, e.g. "
            f"`go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}` (Go >= 1.24) and put it on "
            f"PATH, or point {ENV_KUSTOMIZE} at a kustomize binary."
        )
    log(f"building kustomize {KUSTOMIZE_VERSION} with {go} into {target.parent} (once)")
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as tmp:
        env = dict(os.environ, GOBIN=tmp, CGO_ENABLED="0")
        proc = subprocess.run(
            [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        built = Path(tmp) / "kustomize"
        if proc.returncode != 0 or not built.is_file():
            raise KustomizeNotFound(
                f"`go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}` failed "
                f"(exit {proc.returncode}):\n{proc.stderr.strip()[-1500:]}\n"
                f"Install kustomize or kubectl, or point {ENV_KUSTOMIZE} at a kustomize binary."
            )
        target.parent.mkdir(exist_ok=True)
        built.rename(target)
    return target


def command(env: Mapping[str, str], cache: Path, log: Progress) -> list[str]:
    """The argv prefix that renders a kustomization: append the directory."""
    explicit = env.get(ENV_KUSTOMIZE)
    if explicit:
        if not _works([explicit]):
            raise KustomizeNotFound(f"{ENV_KUSTOMIZE}={explicit} does not run")
        return [explicit, "build"]
    on_path = shutil.which("kustomize")
    if on_path and _works([on_path]):
        return [on_path, "build"]
    if cached_binary(cache).is_file():
        return [str(cached_binary(cache)), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl and _works([kubectl, "kustomize"]):
        return [kubectl, "kustomize"]
    return [str(build(cache, log)), "build"]


def render(cmd: list[str], directory: Path) -> str:
    """The rendered YAML stream of one kustomization directory."""
    proc = subprocess.run([*cmd, str(directory)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)} {directory}` failed:\n{proc.stderr.strip()}")
    return proc.stdout
