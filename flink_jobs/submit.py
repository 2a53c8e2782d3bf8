"""`tipoff submit`: hand a feature job to an existing Flink cluster with the `flink` CLI
that ships inside apache-flink."""

from __future__ import annotations

import importlib.util
import modulefinder
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from flink_jobs.config import JobConfig, resolve
from udfs import jobs

MODULES = {**{j.name: j.module for j in jobs.JOBS}, jobs.ALL: jobs.ALL_MODULE}
# tipoff's packages that hold code; of these only what the entry modules import is shipped.
CODE_PACKAGES = ("udfs", "flink_jobs")
DATA = ("avro_schemas",)  # shipped whole: the contracts
ROOT = Path(__file__).resolve().parent.parent
# Top-level modules the finder need not walk into (not tipoff's).
THIRD_PARTY = ("pyflink", "confluent_kafka", "fastavro", "pemja", "py4j", "numpy", "pandas")


class SubmitError(RuntimeError):
    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  # set when the cluster accepted the job, then it failed


def runtime_files() -> list[Path]:
    """The source files of what runs in Flink: every module of tipoff's packages that an
    entry module imports, directly or not (found statically, imports inside functions
    included), with its packages' __init__ files. The operator tooling (CLI, cluster,
    savepoint, stack, bench and simulator code) is not among them."""
    finder = modulefinder.ModuleFinder(path=[str(ROOT)], excludes=list(THIRD_PARTY))
    for module in MODULES.values():
        finder.import_hook(module)
    files = set()
    for name, mod in finder.modules.items():
        # typeshed's modulefinder.Module (undocumented) declares none of its attributes
        path: str | None = mod.__file__  # type: ignore[attr-defined]
        if name.split(".")[0] in CODE_PACKAGES and path:
            files.add(Path(path).resolve())
    return sorted(files)


def package(target: Path) -> Path:
    """What runs in Flink as one zip for the cluster's Python path (-pyfs): the modules the
    entry modules import (runtime_files) and the schemas."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in runtime_files():
            z.write(f, f.relative_to(ROOT))
        for pkg in DATA:
            for f in sorted((ROOT / pkg).rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    z.write(f, f.relative_to(ROOT))
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
    # Fail here, with tipoff's message, on a missing input topic or an unreachable registry,
    # not inside `flink run`'s output (the job module resolves again when it builds).
    resolve(cfg)
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
