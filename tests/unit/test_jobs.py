"""The job table (udfs.jobs): consistent with itself and with what derives from it, and a toy
third job picked up by the CLI, submit, the state-size report and monitoring with no other
edit."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flink_jobs.settings import Topics
from udfs import jobs
from udfs.features.families import BY_JOB, FAMILIES
from udfs.serde.jobcodecs import INPUT_KIND, OUTPUT_SCHEMA

REPO = Path(__file__).resolve().parents[2]


def test_topic_roles_are_the_settings_fields() -> None:
    assert [f.name for f in dataclasses.fields(Topics)] == [t.role for t in jobs.TOPICS]
    assert Topics().schema_of() == {t.default: t.schema for t in jobs.TOPICS}


def test_renaming_a_topic_by_role() -> None:
    t = Topics.from_env({"TIPOFF_TOPIC_USER_INTERACTIONS": "x.ui"})
    assert t.name("user_interactions") == t.user_interactions == "x.ui"
    assert t.schema_of()["x.ui"] == "events/UserInteraction.avsc"


@pytest.mark.parametrize("job", jobs.JOBS, ids=lambda j: j.name)
def test_each_job_is_wired_from_the_table(job: jobs.JobSpec) -> None:
    for role in job.inputs:
        assert jobs.TOPIC[role].kind is not None, f"{role} is not an input topic"
    assert jobs.TOPIC[job.output].compacted
    assert job.family in FAMILIES and BY_JOB[job.name] is FAMILIES[job.family]
    assert OUTPUT_SCHEMA[job.name] == jobs.TOPIC[job.output].schema
    assert jobs.job_of_module(job.module) == (job.name,)
    assert (REPO / (job.module.replace(".", "/") + ".py")).is_file()
    # The FlinkDeployment of the job carries its name, and runs its entry module.
    manifest = yaml.safe_load((REPO / "k8s" / "base" / f"{job.name}.yaml").read_text())
    assert manifest["metadata"]["name"] == job.name
    assert job.module in json.dumps(manifest["spec"]["job"])


def test_input_kinds_cover_every_input_topic() -> None:
    assert set(INPUT_KIND.values()) == {t.kind for t in jobs.TOPICS if t.kind}


def test_expand_and_names() -> None:
    assert jobs.expand(jobs.ALL) == jobs.JOB_NAMES
    assert jobs.job_of_module(jobs.ALL_MODULE) == jobs.JOB_NAMES
    with pytest.raises(KeyError, match="unknown job 'nope'"):
        jobs.expand("nope")
    assert jobs.combined_name(["a", "b"]) == "tipoff a+b"


# A third job, added to the table only: everything below must pick it up.
TOY = """
import json, sys
from udfs import jobs
toy = jobs.JobSpec("toy-features", "user", ("user_interactions",), "user_features",
                   "flink_jobs.toy_features")
jobs.JOBS = (*jobs.JOBS, toy)
jobs.JOB = {j.name: j for j in jobs.JOBS}
jobs.JOB_NAMES = tuple(jobs.JOB)
sys.path.insert(0, sys.argv[1])
from flink_jobs import cli, submit
from flink_jobs.cluster import statesize
from flink_jobs.config import JobConfig
from flink_jobs.pipeline import uid
from flink_jobs.settings import Topics
from udfs.features.families import BY_JOB
import generate
parser = cli.build_parser()
out = {
    "run": parser.parse_args(["run", "toy-features"]).job,
    "submit": parser.parse_args(["submit", "toy-features"]).job,
    "restore": parser.parse_args(["savepoint", "restore", "p", "--job", "toy-features"]).job,
    "check": parser.parse_args(["savepoint", "check", "p", "--job", "toy-features"]).job,
    "dlq": parser.parse_args(["dlq", "inspect", "--job", "toy-features"]).job,
    "module": submit.MODULES["toy-features"],
    "entity": statesize.ENTITIES.get(uid("toy-features", "features")),
    "family": BY_JOB["toy-features"].name,
    "inputs": JobConfig(("toy-features",), "b", "r", Topics()).input_topics("toy-features"),
    "all": jobs.expand("all"),
    "monitored": "toy-features" in generate.rendered()[generate.RULES_FILE],
}
print(json.dumps(out))
"""


def test_a_new_job_needs_only_its_table_entry() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", TOY, str(REPO / "k8s" / "monitoring")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "run": "toy-features",
        "submit": "toy-features",
        "restore": "toy-features",
        "check": "toy-features",
        "dlq": "toy-features",
        "module": "flink_jobs.toy_features",
        "entity": "user",
        "family": "user",
        "inputs": ["sports.user_interactions"],
        "all": ["user-features", "game-features", "toy-features"],
        "monitored": True,
    }
