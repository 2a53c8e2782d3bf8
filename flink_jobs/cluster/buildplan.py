"""What this build submits: its job graph, planned offline, and the keyed state declared.

`expected_operators(...)` generates the job graph `tipoff run` would submit without running
it, in a fresh process (the planner numbers its nodes per JVM, so a second plan in the same
JVM would get other uids): `python -m flink_jobs.cluster.buildplan --plan OUT ...` builds
the real pipeline from an offline plan and writes the Build as JSON. The keyed state each
stateful function declares is recorded by calling its real `declare_state()` (the part of
`open()` that declares state) against a recording runtime context.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.cluster.savepoints import (
    SavepointCheckError,
    gateway_jvm,
    natural_key,
    snapshot_bytes,
)


@dataclass(frozen=True)
class BuildOperator:
    operator_id: str  # 32 hex digits: murmur3_128(uid), or a graph hash without a uid
    uid: str | None
    name: str
    parallelism: int  # -1: the environment's default
    max_parallelism: int  # -1: not set (Flink adopts the savepoint's)
    # Keyed state the operator's function declares in open(): name -> kind; empty when it
    # declares none or the function is not one of the recorded ones.
    keyed_states: Mapping[str, str] = field(default_factory=dict)
    key_serializer: bytes | None = None  # versioned snapshot of the key serializer
    extra_ids: tuple[str, ...] = ()  # user-defined operator ids (setUidHash), if any


@dataclass(frozen=True)
class Build:
    description: str
    operators: tuple[BuildOperator, ...]

    def to_json(self) -> str:
        def encode(op: BuildOperator) -> dict[str, Any]:
            d = asdict(op)
            d["keyed_states"] = dict(op.keyed_states)
            d["key_serializer"] = (
                base64.b64encode(op.key_serializer).decode() if op.key_serializer else None
            )
            return d

        return json.dumps(
            {"description": self.description, "operators": [encode(o) for o in self.operators]}
        )

    @classmethod
    def from_json(cls, text: str) -> Build:
        data = json.loads(text)
        ops = []
        for d in data["operators"]:
            raw = d.pop("key_serializer")
            d["extra_ids"] = tuple(d["extra_ids"])
            ops.append(BuildOperator(**d, key_serializer=base64.b64decode(raw) if raw else None))
        return cls(data["description"], tuple(ops))


def describe(env: Any, keyed_states: Mapping[str, Mapping[str, str]], description: str) -> Build:
    """The job graph `env` (a PyFlink StreamExecutionEnvironment with its pipeline built,
    not executed) would submit: every operator's id, uid, name and parallelism, and the
    key serializer of keyed operators. `keyed_states`: uid -> the keyed state its
    function declares (see `declared_keyed_state`)."""
    jvm = gateway_jvm()
    # What env.execute() / get_execution_plan() do first (Python operator chaining etc.).
    stream_graph = env._generate_stream_graph(clear_transformations=False)
    key_serializers: dict[str, bytes] = {}
    for node in stream_graph.getStreamNodes().toArray():
        serializer, uid = node.getStateKeySerializer(), node.getTransformationUID()
        if serializer is not None and uid is not None:
            key_serializers[str(uid)] = snapshot_bytes(jvm, serializer.snapshotConfiguration())
    ops = []
    for vertex in stream_graph.getJobGraph().getVerticesAsArray():
        for pair in vertex.getOperatorIDs():
            uid = pair.getUserDefinedOperatorUid()
            uid = None if uid is None else str(uid)
            user_id = pair.getUserDefinedOperatorID()
            ops.append(
                BuildOperator(
                    operator_id=str(pair.getGeneratedOperatorID().toHexString()),
                    uid=uid,
                    name=str(pair.getUserDefinedOperatorName() or vertex.getName()),
                    parallelism=int(vertex.getParallelism()),
                    max_parallelism=int(vertex.getMaxParallelism()),
                    keyed_states=dict(keyed_states.get(uid or "", {})),
                    key_serializer=key_serializers.get(uid or ""),
                    extra_ids=(str(user_id.get().toHexString()),) if user_id.isPresent() else (),
                )
            )
    unknown = set(keyed_states) - {op.uid for op in ops}
    if unknown:
        raise SavepointCheckError(
            f"keyed state is declared for uid(s) {', '.join(sorted(unknown))} that the job "
            "graph does not have"
        )
    return Build(description, tuple(sorted(ops, key=lambda o: natural_key(o.uid or "~" + o.name))))


class _Stub:
    """Answers anything: what a recorded open() does besides declaring state."""

    def __getattr__(self, name: str) -> Callable[..., _Stub]:
        return lambda *args, **kwargs: _Stub()

    def __iter__(self) -> Iterator[Any]:
        return iter(())


# RuntimeContext methods that declare keyed state, and the kind Flink records for each.
_DECLARES = {
    "get_state": "VALUE",
    "get_list_state": "LIST",
    "get_map_state": "MAP",
    "get_reducing_state": "REDUCING",
    "get_aggregating_state": "AGGREGATING",
}


class _RecordingContext(_Stub):
    def __init__(self) -> None:
        self.declared: dict[str, str] = {}

    def __getattr__(self, name: str) -> Callable[..., _Stub]:
        kind = _DECLARES.get(name)
        if kind is None:
            return super().__getattr__(name)

        def declare(descriptor: Any, *args: Any) -> _Stub:
            self.declared[str(descriptor.get_name())] = kind
            return _Stub()

        return declare


def declared_keyed_state(function: Any) -> dict[str, str]:
    """Run `function.declare_state()` (the part of open() that declares keyed state, without
    connecting to anything) against a context that records what it declares: name -> VALUE
    / LIST / MAP / ...."""
    ctx = _RecordingContext()
    function.declare_state(ctx)
    return ctx.declared


def tipoff_keyed_state(jobs: Sequence[str], tick_ms: int = 1_000) -> dict[str, dict[str, str]]:
    """uid -> keyed state, for tipoff's stateful operators: the `features` operator of each
    job runs udfs.flink.features.Features (see flink_jobs.pipeline.build_pipeline)."""
    from flink_jobs.pipeline import uid
    from udfs.flink.features import Features

    declared = {}
    for job in jobs:
        fn = Features(job, _offline_schemas(), tick_ms)
        declared[uid(job, "features")] = declared_keyed_state(fn)
    return declared


def _offline_schemas() -> Any:
    from udfs.serde.jobcodecs import JobSchemas

    return JobSchemas("offline://", {}, {}, {}, {}, None)


def default_jars() -> list[str]:
    """The jars `tipoff run` uses by default (the Kafka connector: the planner needs its
    table factory to plan the sources and sinks)."""
    from flink_jobs.settings import Settings

    return sorted(str(p) for p in Path(Settings.load().stack.flink_jars_dir).glob("*.jar"))


def expected_operators(
    jobs: Sequence[str] | None = None,
    parallelism: int = 1,
    jars: Sequence[str] | None = None,
    timeout_s: float = 300.0,
) -> Build:
    """The operators (ids, uids, declared keyed state) of this build's job for `jobs` (as
    `tipoff run`: one job of udfs.jobs or all of them), planned in a fresh Python + JVM
    process the way `tipoff run` / `flink run` plan it: without Kafka or a registry."""
    from flink_jobs.config import JOBS

    jobs = tuple(jobs or JOBS)
    jars = list(default_jars() if jars is None else jars)
    with tempfile.TemporaryDirectory(prefix="tipoff-plan-") as tmp:
        out = Path(tmp) / "build.json"
        cmd = [sys.executable, "-m", "flink_jobs.cluster.buildplan", "--plan", str(out)]
        cmd += ["--jobs", ",".join(jobs), "--parallelism", str(parallelism)]
        for jar in jars:
            cmd += ["--jar", jar]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            hint = ""
            if "kafka" in tail and "factory" in tail.lower():
                hint = (
                    "\nthe Kafka connector jar is missing: `tipoff stack up` downloads it, or "
                    "pass it with --jar"
                )
            raise SavepointCheckError(f"could not plan this build's job graph:\n{tail}{hint}")
        return Build.from_json(out.read_text())


def _plan(jobs: Sequence[str], parallelism: int, jars: Sequence[str]) -> Build:
    """In the planning process: build the real pipeline (flink_jobs.pipeline.build) from an
    offline plan — no Kafka, no registry: the schemas only travel in the pickled functions,
    which are not opened — and describe the job graph it would submit."""
    from flink_jobs import pipeline
    from flink_jobs.config import JobConfig, Layout, Plan

    cfg = JobConfig(
        jobs=tuple(jobs),
        bootstrap_servers="plan-only:9092",
        registry_url="offline://",
        jars=tuple(jars),
        parallelism=parallelism,
    )
    env, t_env = pipeline.environment(cfg)
    pipeline.build(t_env, Plan(cfg, Layout(), {job: _offline_schemas() for job in jobs}))
    return describe(
        env,
        tipoff_keyed_state(jobs, cfg.tick_ms),
        f"{' + '.join(jobs)}, parallelism {parallelism}",
    )


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="plan this build's job graph (internal)")
    p.add_argument("--plan", required=True, type=Path, help="write the Build as JSON here")
    p.add_argument("--jobs", required=True)
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--jar", action="append", default=[])
    a = p.parse_args(argv)
    build = _plan(a.jobs.split(","), a.parallelism, a.jar)
    a.plan.write_text(build.to_json())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(_main())
