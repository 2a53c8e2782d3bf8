"""Tools from Debian packages, unpacked into the cache folder instead of installed.

`apt-get download` fetches the .deb of this machine's candidate version and `dpkg -x`
unpacks it under `<cache>/debian/<package>_<version>/`: nothing is installed system-wide,
no maintainer script runs, no service starts. Only when apt has no package lists yet
(a fresh machine) does it run `apt-get update`, which needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flink_jobs.stack.artifacts import FetchError, fetch_once

Progress = Callable[[str], None]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def candidate_version(package: str) -> str | None:
    """The version `apt-get install PACKAGE` would install, from apt's package lists."""
    proc = _run(["apt-cache", "show", "--no-all-versions", package])
    for line in proc.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise FetchError(
            f"`{tool}` is needed to fetch the Debian package {package} but is not on PATH: "
            "this works on Debian and Ubuntu machines only. Install the package's tools "
            "another way and put them on PATH."
        )


def unpacked(package: str, cache: Path, log: Progress) -> Path:
    """The root of `package`'s files (its usr/, etc/, ...), fetched and unpacked once."""
    for tool in ("apt-cache", "apt-get", "dpkg"):
        _require(tool, package)
    version = candidate_version(package)
    if version is None and os.geteuid() == 0:
        log(f"apt knows no package {package}; running `apt-get update` once")
        _run(["apt-get", "update", "-q"])
        version = candidate_version(package)
    if version is None:
        raise FetchError(
            f"apt knows no package {package} (are the package lists missing? run "
            f"`apt-get update` as root), so it cannot be fetched from Debian"
        )
    target = cache / "debian" / f"{package}_{version.replace(':', '%')}"

    def fill(work: Path, out: Path) -> None:
        got = _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=work)
        debs = sorted(work.glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise FetchError(
                f"`apt-get download {package}={version}` failed (exit {got.returncode}):\n"
                f"{(got.stdout + got.stderr).strip()[-800:]}"
            )
        out.rmdir()  # dpkg -x creates it
        x = _run(["dpkg", "-x", str(debs[0]), str(out)])
        if x.returncode != 0:
            raise FetchError(f"`dpkg -x {debs[0].name}` failed:\n{x.stderr.strip()[-800:]}")

    return fetch_once(target, f"package {package} {version}", fill, log, source="Debian")


@dataclass(frozen=True)
class PrometheusTools:
    """Debian's `prometheus` package, unpacked: the server and `promtool`."""

    root: Path
    prometheus: Path
    promtool: Path


def prometheus(cache: Path, log: Progress) -> PrometheusTools:
    """Prometheus and promtool from Debian's `prometheus` package (unpacked, not installed).

    The server binary is there for tests that scrape real Flink pods' reporters; it needs
    `--storage.tsdb.path` and `--web.listen-address` on loopback (the package's defaults
    point at /var/lib and 0.0.0.0)."""
    root = unpacked("prometheus", cache, log)
    tools = PrometheusTools(
        root=root,
        prometheus=root / "usr" / "bin" / "prometheus",
        promtool=root / "usr" / "bin" / "promtool",
    )
    for binary in (tools.prometheus, tools.promtool):
        if not binary.is_file():
            raise FetchError(f"Debian's prometheus package has no {binary.relative_to(root)}")
    return tools
