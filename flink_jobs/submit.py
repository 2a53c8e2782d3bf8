"""`tipoff submit`: hand a feature job to an existing Flink cluster with the `flink` CLI
that ships inside apache-flink."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from flink_jobs.config import JobConfig

PACKAGES = ("udfs", "flink_jobs", "avro_schemas")
MODULES = {
    "user-features": "flink_jobs.user_features",
    "game-features": "flink_jobs.game_features",
    "all": "flink_jobs.all_features",
}


class SubmitError(RuntimeError):
    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  # set when the cluster accepted the job, then it failed


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
    allow_non_restored_state: bool = False,
) -> str:
    """`flink run --detached`; the job id. `cfg.from_savepoint` restores state (Flink's
    `--fromSavepoint`); `allow_non_restored_state` drops savepoint state no operator of this
    build claims instead of failing the restore."""
    spec = importlib.util.find_spec("pyflink")  # the bundled Flink distribution
    if spec is None or spec.origin is None:
        raise SubmitError("apache-flink is not installed in this Python environment")
    flink = Path(spec.origin).parent / "bin" / "flink"
    module = MODULES[job]
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
            if allow_non_restored_state:
                cmd.append("--allowNonRestoredState")
        log(f"submit: {module} to {jobmanager}")
        proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    found = re.search(r"JobID ([0-9a-f]{32})", out)
    if proc.returncode != 0 or not found:
        raise SubmitError(
            f"`flink run` failed (exit {proc.returncode}):\n{out.strip()[-3000:]}",
            found.group(1) if found else None,
        )
    return found.group(1)
