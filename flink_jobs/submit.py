"""`tipoff submit`: hand a feature job to an existing Flink cluster with the `flink` CLI
that ships inside apache-flink."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from flink_jobs.config import JobConfig

PACKAGES = ("udfs", "flink_jobs", "avro_schemas")


class SubmitError(RuntimeError):
    pass


def package(target: Path) -> Path:
    """tipoff's own packages as one zip for the cluster's Python path (-pyfs)."""
    root = Path(__file__).resolve().parent.parent
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for pkg in PACKAGES:
            for f in sorted((root / pkg).rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    z.write(f, f.relative_to(root))
    return target


def submit(
    cfg: JobConfig,
    job: str,
    jobmanager: str,
    cluster_python: str | None,
    log: Callable[[str], None],
) -> str:
    import pyflink  # the bundled Flink distribution, only needed here

    flink = Path(pyflink.__file__).parent / "bin" / "flink"
    module = f"flink_jobs.{job.replace('-', '_')}"
    with tempfile.TemporaryDirectory() as tmp:
        bundle = package(Path(tmp) / "tipoff.zip")
        cmd = [
            str(flink),
            "run",
            "--detached",
            "-m",
            jobmanager,
            "-pym",
            module,
            "-pyfs",
            str(bundle),
            "-pyclientexec",
            sys.executable,
        ]
        if cluster_python:
            cmd += ["-pyexec", cluster_python]
        argv = cfg.to_argv()
        if cfg.from_savepoint:
            cmd += ["--fromSavepoint", cfg.from_savepoint]
        log(f"submit: {module} to {jobmanager}")
        proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    found = re.search(r"JobID ([0-9a-f]{32})", out)
    if proc.returncode != 0 or not found:
        raise SubmitError(f"`flink run` failed (exit {proc.returncode}):\n{out.strip()[-3000:]}")
    return found.group(1)
