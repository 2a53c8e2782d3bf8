"""`tipoff submit` ships only what runs in Flink: the archive holds the modules the entry
modules import and the schemas, no operator tooling, and it is enough on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from flink_jobs import submit

TOOLING = (
    "flink_jobs/cli.py",
    "flink_jobs/submit.py",
    "flink_jobs/bench/",
    "flink_jobs/cluster/",
    "flink_jobs/stack/",
    "flink_jobs/tools/",
    "flink_jobs/sim/",
)


def _names(tmp_path: Path) -> list[str]:
    with zipfile.ZipFile(submit.package(tmp_path / "tipoff.zip")) as z:
        return z.namelist()


def test_the_archive_holds_the_job_and_the_schemas_only(tmp_path: Path) -> None:
    names = _names(tmp_path)
    for module in submit.MODULES.values():
        assert module.replace(".", "/") + ".py" in names
    needed_files = (
        "udfs/flink/decode.py",
        "udfs/flink/features.py",
        "udfs/flink/state.py",
        "udfs/jobs.py",
        "flink_jobs/pipeline.py",
    )
    for needed in needed_files:
        assert needed in names
    assert "avro_schemas/events/UserInteraction.avsc" in names
    shipped_tooling = [n for n in names if n.startswith(TOOLING)]
    assert shipped_tooling == []
    assert not [n for n in names if "__pycache__" in n]


# Import every entry module and the functions Flink unpickles from the archive alone:
# tipoff's editable install and the checkout are taken off the path first.
ALONE = """
import importlib, json, sys
bundle = sys.argv[1]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [bundle] + [p for p in sys.path if p and p.rstrip("/") != sys.argv[2]]
for name in sys.argv[3:]:
    importlib.import_module(name)
mods = {n: getattr(m, "__file__", None) for n, m in sys.modules.items()
        if n.split(".")[0] in ("udfs", "flink_jobs", "avro_schemas")}
print(json.dumps(mods))
"""


def test_the_archive_is_enough_on_its_own(tmp_path: Path) -> None:
    bundle = submit.package(tmp_path / "tipoff.zip")
    modules = [*submit.MODULES.values(), "udfs.flink.decode", "udfs.flink.features"]
    proc = subprocess.run(
        [sys.executable, "-c", ALONE, str(bundle), str(submit.ROOT), *modules],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(modules) <= set(loaded)
    outside = {n: f for n, f in loaded.items() if f and not f.startswith(str(bundle))}
    assert outside == {}
