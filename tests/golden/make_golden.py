"""Make the golden savepoints of a previous release: run that release's own build on a
standalone cluster over a fixed, deterministic input and stop it with a savepoint.

    .venv/bin/python -m tests.golden.make_golden release-1

(from the repository root; `tests` is a package and this imports its helpers by their
path, `tests.support.e2e`; `.venv/bin/python tests/golden/make_golden.py release-1` works
too)

checks out the git tag into a temporary worktree, starts a private Kafka + registry and a
standalone cluster (current tooling: they only host the old build), registers the old
schemas, writes the first half of the input (tests/golden/plan.py), submits the old
`flink_jobs.user_features` and `flink_jobs.game_features` with the old `tipoff submit`,
waits until both consumed everything, stops each with a savepoint and stores, under
tests/golden/<tag>/: the savepoints, the feature records and the dead letters the old
build wrote (the test needs them: they are the first half of the expected output).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Run as a file, Python puts tests/golden/ first on the path, not the checkout: put the
# checkout first so `tests.support` and this checkout's packages are what is imported.
sys.path.insert(0, str(ROOT))

from flink_jobs.cluster.home import ClusterSettings  # noqa: E402
from flink_jobs.cluster.rest import FlinkRest  # noqa: E402
from flink_jobs.cluster.standalone import StandaloneCluster  # noqa: E402
from flink_jobs.settings import Settings, StackSettings  # noqa: E402
from flink_jobs.stack.processes import free_port  # noqa: E402
from flink_jobs.stack.services import LocalStack  # noqa: E402
from flink_jobs.tools import schemas, simulate  # noqa: E402
from tests.golden.plan import PARTITIONS, PREFIX, keep_forever, plan  # noqa: E402
from tests.support.e2e import wait_consumed  # noqa: E402
from tests.support.kafka_io import Values, consume_all  # noqa: E402
from udfs.serde import avsc  # noqa: E402

JOBS = ("user-features", "game-features")


def main(tag: str) -> None:
    out = ROOT / "tests" / "golden" / tag
    work = Path(tempfile.mkdtemp(prefix=f"golden-{tag}-"))
    old = work / "build"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), tag], check=True
    )
    stack_settings = replace(
        StackSettings.from_env({}, state_dir=work / "state"),
        kafka_port=free_port(),
        controller_port=free_port(),
        registry_port=free_port(),
    )
    stack = LocalStack(stack_settings, log=print)
    cluster = StandaloneCluster(
        ClusterSettings.from_env(
            {}, stack_settings, rest_port=free_port(), rpc_port=free_port(), taskmanagers=2
        ),
        log=print,
    )
    try:
        stack.up({})
        cluster.up()
        s = Settings.load(
            {},
            state_dir=stack_settings.state_dir,
            kafka_port=stack_settings.kafka_port,
            controller_port=stack_settings.controller_port,
            registry_port=stack_settings.registry_port,
        )
        s = replace(s, topics=s.topics.prefixed(PREFIX))
        # The old release's contracts only: what its producers and jobs knew.
        # Every release up to this one, oldest first: each adds its versions to the subjects.
        for shipped in avsc.releases()[: int(tag.split("-")[1])]:
            schemas.register(s, PARTITIONS, shipped, log=print)
        keep_forever(
            s.endpoints.bootstrap_servers, [s.topics.game_events, s.topics.user_interactions]
        )
        cfg, first, _ = plan()
        simulate.run(s, cfg, live=False, log=print, progress=False, schema_version="1", only=first)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")},
            **s.topics.env(),
            "KAFKA_BOOTSTRAP_SERVERS": s.endpoints.bootstrap_servers,
            "SCHEMA_REGISTRY_URL": s.endpoints.registry_url,
            "PYTHONPATH": str(old),
            "TIPOFF_STATE_DIR": str(work / "old-state"),
        }
        rest = FlinkRest(cluster.url, timeout_s=30)
        ids = {}
        for job in JOBS:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flink_jobs.cli",
                    "submit",
                    job,
                    "--jobmanager",
                    cluster.url.removeprefix("http://"),
                    "--checkpoint-interval",
                    "2000",
                ],
                cwd=old,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            ids[job] = proc.stdout.strip().splitlines()[-1]
            rest.wait_for_state(ids[job], {"RUNNING"}, 120)
            print(f"{tag} {job}: job {ids[job]}")

        def alive() -> None:
            for job_id in ids.values():
                assert rest.job(job_id)["state"] == "RUNNING", rest.exceptions(job_id)

        wait_consumed(s, alive)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for job, job_id in ids.items():
            result = rest.stop(job_id, (work / "savepoints").as_uri(), drain=False)
            src = Path(result.path.removeprefix("file:"))
            shutil.copytree(src, out / job)
            print(f"{tag} {job}: savepoint {result.path} -> {out / job}")
        _dump(s, out)
        (out / "MADE.txt").write_text(
            f"made by python -m tests.golden.make_golden {tag} from {_rev(tag)} on "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        )
    finally:
        cluster.down()
        stack.down()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
        )
        shutil.rmtree(work, ignore_errors=True)


def _dump(s: Settings, out: Path) -> None:
    """What the old build wrote, decoded (schema ids differ between registries): feature
    records with their feature_time header, and where each dead letter came from."""
    boot = s.endpoints.bootstrap_servers
    values = Values(s.endpoints.registry_url)
    features = {
        job: [
            [m.key.decode(), int(dict(m.headers)["feature_time"]), values(m.value)]
            for m in consume_all(boot, topic)
        ]
        for job, topic in (
            ("user-features", s.topics.user_features),
            ("game-features", s.topics.game_features),
        )
    }
    dead = [
        {k: d[k] for k in ("job", "reason", "topic", "partition", "offset")}
        for m in consume_all(boot, s.topics.dead_letters)
        if (d := values(m.value)) is not None
    ]
    with gzip.open(out / "outputs.json.gz", "wt") as f:
        json.dump({"features": features, "dead_letters": dead}, f)
    print({job: len(v) for job, v in features.items()}, f"dead letters {len(dead)}")


def _rev(tag: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{tag}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "release-1")
