"""What each `tipoff` subcommand does; the parser lives in flink_jobs.cli."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs.cluster.home import ClusterError
from flink_jobs.cluster.rest import FlinkRestError
from flink_jobs.config import JobSetupError
from flink_jobs.output import err
from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig
from flink_jobs.stack.artifacts import FetchError
from flink_jobs.stack.java import JavaNotFound
from flink_jobs.stack.processes import PortInUse
from flink_jobs.stack.services import LocalStack, StackError
from flink_jobs.submit import SubmitError
from flink_jobs.tools import progress, schemas, simreport, simulate, tail
from udfs.jobs import expand
from udfs.serde.jobcodecs import SchemaNotRegistered
from udfs.serde.registry import RegistryUnavailable


class UserError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


def dispatch(a: argparse.Namespace, s: Settings) -> int:
    try:
        handler = {
            "stack": stack,
            "schemas": schemas_cmd,
            "simulate": simulate_cmd,
            "tail": tail_cmd,
            "demo": demo,
            "run": run_cmd,
            "submit": submit_cmd,
            "dlq": dlq_cmd,
            "cluster": cluster_cmd,
            "jobs": jobs_cmd,
            "savepoint": savepoint_cmd,
            "bench": bench_cmd,
        }[a.command]
        return handler(a, s)
    except (
        PortInUse,
        StackError,
        FetchError,
        JavaNotFound,
        simreport.SimulateError,
        SubmitError,
        JobSetupError,
        SchemaNotRegistered,
        FlinkRestError,
        ClusterError,
    ) as e:
        raise UserError(str(e)) from e
    except RegistryUnavailable as e:
        raise UserError(
            f"schema registry unreachable ({e}); is it up (`tipoff stack status`)?"
        ) from e
    except SchemaRegistryError as e:
        raise UserError(
            f"schema registry at {s.endpoints.registry_url}: {e.error_message} "
            f"(HTTP {e.http_status_code})"
        ) from e
    except KafkaException as e:
        raise UserError(f"Kafka at {s.endpoints.bootstrap_servers}: {e}") from e


def stack(a: argparse.Namespace, s: Settings) -> int:
    local = LocalStack(s.stack, log=err)
    if a.action == "up":
        if s.endpoints.external:
            err("KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL are set: starting nothing")
        res = local.up()
        for name in res.already_running:
            err(f"{name} is already running (state in {s.stack.state_dir})")
        print(f"KAFKA_BOOTSTRAP_SERVERS={res.endpoints.bootstrap_servers}")
        print(f"SCHEMA_REGISTRY_URL={res.endpoints.registry_url}")
        return 0
    if a.action == "down":
        stopped = local.down()
        err(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    rows = local.status()
    for r in rows:
        managed = "started by tipoff" if r["managed"] else "external"
        print(
            f"{r['service']:<9} pid {r['pid'] or '-':<8} {r['address']:<45} "
            f"version {r['version']:<9} {managed:<18} {r['health']}"
        )
    return 0 if all(str(r["health"]).startswith("UP") for r in rows) else 1


def schemas_cmd(a: argparse.Namespace, s: Settings) -> int:
    if a.action == "register":
        if a.against is not None or a.level is not None:
            raise UserError("--against and --level apply to `tipoff schemas check` only")
        schemas.register(s, a.partitions, a.schemas_dir, log=print)
        return 0
    try:
        if a.against is not None:
            reports = schemas.check_against(s, a.schemas_dir, a.against, a.level)
        else:
            reports = schemas.check_all(s, a.schemas_dir, a.level)
    except (schemas.CheckError, FileNotFoundError, ValueError) as e:
        # FileNotFoundError / ValueError: a local .avsc missing, not JSON or not a valid schema
        raise UserError(str(e)) from e
    for line in schemas.render(reports):
        print(line)
    bad = [r.subject for r in reports if not r.ok]
    if bad:
        err(f"incompatible: {', '.join(bad)}")
        return 1
    new = [r.subject for r in reports if r.versions == 0]
    err(f"compatible: {len(reports) - len(new)} subject(s)" + (f", {len(new)} new" if new else ""))
    return 0


def simulate_cmd(a: argparse.Namespace, s: Settings) -> int:
    try:
        cfg = SimConfig(
            seed=a.seed,
            start_ms=int(time.time() * 1000),
            games=a.games,
            users=a.users,
            out_of_order_ms=a.out_of_order_ms,
            late_share=a.late_share,
            duplicate_share=a.duplicate_share,
            correction_share=a.correction_share,
        )
    except ValueError as e:
        raise UserError(f"simulate: {e}") from e
    cfg = simulate.plan(cfg, a.rate, int(time.time() * 1000), a.duration, a.events)
    mode = f"live at {a.rate:g} events/s" if a.rate > 0 else "as fast as possible"
    err(
        f"simulate: {cfg.total_events:,} events over {cfg.duration_ms / 1000:,.0f}s of event "
        f"time, {mode}, seed {cfg.seed}, schema version {a.schema_version}"
        + (f", {a.processes} producer processes" if a.processes > 1 else "")
    )
    report = simulate.run(
        s,
        cfg,
        live=a.rate > 0,
        log=err,
        progress=not a.quiet,
        schema_version=a.schema_version,
        processes=a.processes,
        target_rate=a.rate,
    )
    for line in report.lines():
        print(line)
    warning = report.warning()
    if warning:
        err(warning)
    return 1 if report.failed else 0


def tail_cmd(a: argparse.Namespace, s: Settings) -> int:
    for rec in tail.records(s.endpoints, a.topic, a.from_beginning, a.max, a.timeout):
        print(rec.to_json(), flush=True)
    return 0


def run_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.config import from_args, resolve
    from flink_jobs.pipeline import execute

    cfg = from_args(a, expand(a.job), s)
    plan = resolve(cfg)  # Kafka and the registry, before anything starts
    # The local cluster's log (the JVM PyFlink launches reads FLINK_LOG_DIR); without it
    # Flink writes into the pyflink package, where every run overwrites the last.
    log_dir = Path(
        os.environ.setdefault("FLINK_LOG_DIR", str(s.stack.state_dir / "logs" / "flink"))
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    mode = "bounded: to the end offsets present now" if cfg.bounded else "unbounded (Ctrl-C stops)"
    err(f"run: {', '.join(cfg.jobs)} on a MiniCluster, parallelism {cfg.parallelism}, {mode}")
    err(f"     Kafka {cfg.bootstrap_servers}, registry {cfg.registry_url}")
    err(f"     Flink log {log_dir}")
    if cfg.rest_port is not None:
        err(f"     REST API http://127.0.0.1:{cfg.rest_port} (e.g. tipoff savepoint stop)")
    t0 = time.monotonic()
    outputs = sorted({cfg.output_topic(j) for j in cfg.jobs} | {cfg.topics.dead_letters})
    with progress.Heartbeat(cfg.bootstrap_servers, outputs, err):
        result = execute(plan)
    job_id = result.get_job_id() if hasattr(result, "get_job_id") else "?"
    err(f"run: job {job_id} finished in {time.monotonic() - t0:.1f}s")
    return 0


def submit_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.cluster import common as cluster
    from flink_jobs.cluster.standalone import StandaloneCluster
    from flink_jobs.config import from_args
    from flink_jobs.submit import submit

    local = StandaloneCluster(cluster.cluster_settings(a, s), log=err)
    if not a.jobmanager and not a.checkpoint_dir:
        # tipoff's own cluster: checkpoints beside its savepoints
        a.checkpoint_dir = cluster.checkpoints_uri(local)
    cfg = from_args(a, expand(a.job), s)
    jobmanager = cluster.host_port(cluster.rest_url(a.jobmanager, local))
    job_id = submit(cfg, a.job, jobmanager, a.cluster_python, log=err)
    print(job_id)
    return 0


def cluster_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.cluster import commands as cluster

    return cluster.cluster_cmd(a, s)


def jobs_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.cluster import commands as cluster

    return cluster.jobs_cmd(a, s)


def savepoint_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.cluster import savepoint_commands as cluster

    return cluster.savepoint_cmd(a, s)


def bench_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.bench import runner
    from flink_jobs.bench.jvm_jobs import JvmJobError
    from flink_jobs.bench.options import BenchError
    from flink_jobs.cluster import common as cluster
    from flink_jobs.cluster.standalone import StandaloneCluster

    local = StandaloneCluster(cluster.cluster_settings(a, s), log=err)
    try:
        return runner.main(a, s, local, log=err)
    except (BenchError, JvmJobError) as e:
        raise UserError(f"bench: {e}") from e


def dlq_cmd(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.tools import dlq

    select = dlq.Selection(a.job, a.reason, a.topic)
    if a.action == "inspect":
        dlq.inspect(s, select, a.samples, log=print)
    else:
        dlq.replay(s, select, a.dry_run, log=print)
    return 0


def demo(a: argparse.Namespace, s: Settings) -> int:
    from flink_jobs.tools import demo as live

    return live.run(s, a.duration, a.rate, log=err)
