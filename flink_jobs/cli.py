"""The `tipoff` command: local stack, schemas, simulator, tail and the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flink_jobs.config import add_job_options
from flink_jobs.settings import Settings
from udfs.jobs import ALL, JOB_NAMES

# A JOB argument: one job of the table (udfs.jobs) or all of them in one Flink job.
JOB_CHOICES = [*JOB_NAMES, ALL]
_JOBS_TEXT = f"{', '.join(JOB_NAMES)} or {ALL} (every job in one Flink job)"

EPILOG = """\
environment:
  KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL  use existing services; `stack up` then starts
                                                only what is not given
  TIPOFF_CACHE_DIR   downloads (default ~/.cache/tipoff)
  TIPOFF_STATE_DIR   local stack data, logs and pids (default ~/.local/state/tipoff)
  TIPOFF_KAFKA_PORT, TIPOFF_CONTROLLER_PORT, TIPOFF_REGISTRY_PORT   loopback ports
  TIPOFF_FLINK_REST_PORT, TIPOFF_FLINK_RPC_PORT   the local Flink cluster's ports (8081, 6123)
  TIPOFF_TOPIC_GAME_EVENTS, ..._USER_INTERACTIONS, ..._USER_FEATURES, ..._GAME_FEATURES,
  ..._DEAD_LETTERS   topic names
"""


def _stack_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("local stack")
    g.add_argument("--kafka-port", type=int, help="Kafka broker port (default 9092)")
    g.add_argument("--controller-port", type=int, help="KRaft controller port (default 9093)")
    g.add_argument("--registry-port", type=int, help="schema registry port (default 8085)")
    g.add_argument("--state-dir", type=Path, help="stack data folder")
    g.add_argument("--cache-dir", type=Path, help="download cache folder")


def _settings(a: argparse.Namespace) -> Settings:
    return Settings.load(
        kafka_port=getattr(a, "kafka_port", None),
        controller_port=getattr(a, "controller_port", None),
        registry_port=getattr(a, "registry_port", None),
        state_dir=getattr(a, "state_dir", None),
        cache_dir=getattr(a, "cache_dir", None),
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tipoff",
        description="Real-time sports features on PyFlink, Kafka (Avro) and a schema registry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    st = sub.add_parser("stack", help="start/stop/inspect the local Kafka + schema registry")
    st.add_argument("action", choices=["up", "down", "status"])
    _stack_options(st)

    from flink_jobs.tools.schemas import DESCRIPTION as SCHEMAS_DESCRIPTION
    from udfs.serde.compat import LEVELS

    sc = sub.add_parser(
        "schemas",
        help="create topics and register / check Avro schemas",
        description=SCHEMAS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sc.add_argument("action", choices=["register", "check"])
    sc.add_argument("--partitions", type=int, default=4, help="partitions of new topics (4)")
    sc.add_argument("--schemas-dir", type=Path, help="use .avsc files from this avro_schemas dir")
    sc.add_argument(
        "--level",
        type=str.upper,
        choices=LEVELS,
        metavar="LEVEL",
        help="check: apply this level (see above) to every subject instead of the per-role "
        "defaults",
    )
    sc.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="check offline, without a registry: compare with the releases/<n>/ and current "
        "files of DIR, another checkout's avro_schemas directory",
    )
    _stack_options(sc)

    sim = sub.add_parser(
        "simulate",
        help="write a simulated live-sports feed to the input topics",
        description="Concurrent games across leagues plus fans' interactions, deterministic "
        "for a seed. --rate N: live mode, event_time = wall clock, N events/s. --rate 0: as "
        "fast as possible, the timeline laid in the past so it ends when the run starts. Each "
        "record's Kafka timestamp is its event_time. Live mode prints the send rate achieved "
        "and warns when it falls behind.",
    )
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as possible")
    sim.add_argument("--duration", type=float, help="timeline length in seconds (default 60)")
    sim.add_argument("--events", type=int, help="number of original events (before duplicates)")
    sim.add_argument("--games", type=int, default=12)
    sim.add_argument("--users", type=int, default=2000)
    sim.add_argument("--out-of-order-ms", type=int, default=1500, help="max emission delay")
    sim.add_argument("--late-share", type=float, default=0.002, help="share sent 30-120 s late")
    sim.add_argument("--duplicate-share", type=float, default=0.005, help="share sent twice")
    sim.add_argument("--correction-share", type=float, default=0.03, help="scores corrected")
    sim.add_argument(
        "--schema-version",
        choices=["1", "2", "mixed"],
        default="2",
        help="write every record with version 1 (release 1) or 2 (current, the default) of "
        "its schema, or mixed: each at the version its producer writes (old apps and some "
        "games' feeds still write version 1)",
    )
    sim.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="producer processes (1). Each sends the records of whole partitions, so every "
        "partition gets the same records in the same order as with one; at most the input "
        "topics' partition count. Use more when live mode warns that it fell behind",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress line")
    _stack_options(sim)

    tl = sub.add_parser("tail", help="print a topic's records as JSON lines (via the registry)")
    tl.add_argument("topic")
    tl.add_argument("--from-beginning", action="store_true")
    tl.add_argument("--max", type=int, help="stop after N records")
    tl.add_argument("--timeout", type=float, help="stop after S seconds without a record")
    _stack_options(tl)

    rn = sub.add_parser(
        "run",
        help="run feature jobs on an embedded Flink MiniCluster",
        description=f"Run JOB ({_JOBS_TEXT}) in this process, against the configured "
        "Kafka and registry (default: the local stack).",
    )
    rn.add_argument("job", metavar="JOB", choices=JOB_CHOICES, help=_JOBS_TEXT)
    add_job_options(rn)
    _stack_options(rn)

    sb = sub.add_parser(
        "submit",
        help="submit a feature job to an existing Flink cluster; prints the job id",
        description="Package tipoff, then `flink run --detached -pym flink_jobs.<job>` against "
        "the JobManager's REST endpoint. The cluster's Python needs apache-flink, fastavro and "
        "confluent-kafka; tipoff itself is shipped with the job.",
    )
    sb.add_argument("job", metavar="JOB", choices=JOB_CHOICES, help=_JOBS_TEXT)
    _jobmanager_option(sb)
    sb.add_argument("--cluster-python", help="python executable on the TaskManagers")
    add_job_options(sb)
    _stack_options(sb)

    dq = sub.add_parser(
        "dlq",
        help="summarize dead letters, or replay them to their source topics after a fix",
        description="inspect: counts by job, reason and topic with example errors. "
        "replay: re-publish the selected records' original key and value bytes to the topic "
        "they came from (once per record, even if both jobs rejected it).",
    )
    dq.add_argument("action", choices=["inspect", "replay"])
    dq.add_argument("--job", choices=JOB_NAMES, help="only dead letters of this job")
    dq.add_argument("--reason", help="DECODE_ERROR, UNKNOWN_SCHEMA, INVALID, DUPLICATE or LATE")
    dq.add_argument("--topic", help="only records that came from this topic")
    dq.add_argument("--samples", type=int, default=2, help="example errors per group (2)")
    dq.add_argument("--dry-run", action="store_true", help="replay: count, send nothing")
    _stack_options(dq)

    dm = sub.add_parser(
        "demo",
        help="everything live: stack, schemas, both jobs, simulator, a refreshing feature view",
    )
    dm.add_argument("--duration", type=float, default=90.0, help="seconds to run (90)")
    dm.add_argument("--rate", type=float, default=200.0, help="simulated events/s (200)")
    _stack_options(dm)

    _cluster_parsers(sub)
    _bench_parser(sub)
    return p


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from flink_jobs.bench.options import PHASES, Options

    d = Options()
    bn = sub.add_parser(
        "bench",
        help="throughput and freshness of tipoff against JVM-only Flink SQL jobs",
        description="In one invocation, on the local standalone cluster (started if it is not "
        "running) and the configured Kafka + registry: preload N simulated events into fresh "
        "bench topics; measure a JVM copy job (I/O ceiling), the JVM reference (Flink SQL "
        "per-user 1 s tumbling counts) and JVM OVER-window counts, then tipoff's full pipeline "
        "(both jobs, exactly-once), each from the earliest offset; the state per active user "
        "from a savepoint; then freshness with the simulator live at a fixed rate, "
        "at-least-once and exactly-once. Prints a table, writes a JSON result and a PNG chart "
        "under --results. See BENCHMARKS.md.",
    )
    bn.add_argument(
        "--quick",
        action="store_true",
        help="a short version (100,000 events, 30 s freshness runs): a smoke test, not a "
        "measurement",
    )
    bn.add_argument("--events", type=int, help=f"simulated events to preload ({d.events:,})")
    bn.add_argument("--users", type=int, help=f"simulated users ({d.users:,})")
    bn.add_argument("--games", type=int, help=f"simulated games ({d.games})")
    bn.add_argument(
        "--event-rate",
        type=float,
        help=f"preload: events per second of event time ({d.event_rate:,.0f})",
    )
    bn.add_argument("--seed", type=int, help=f"simulator seed ({d.seed})")
    bn.add_argument(
        "--parallelism", type=int, help="of every job (default: the number of TaskManagers)"
    )
    bn.add_argument(
        "--taskmanagers",
        type=int,
        help=f"TaskManagers when the bench starts the cluster ({d.taskmanagers})",
    )
    bn.add_argument(
        "--taskmanager-memory",
        metavar="SIZE",
        help=f"process size of each TaskManager when the bench starts the cluster "
        f"({d.taskmanager_memory}; --quick: {Options.quick_defaults()['taskmanager_memory']}): "
        "tipoff's heap state of the full feed fills smaller ones. A running cluster is used as "
        "it is; smaller TaskManagers there are named in the report",
    )
    bn.add_argument(
        "--over-seconds",
        type=float,
        metavar="S",
        help=f"measure the OVER job (context only, slow) for at most S seconds, then cancel it "
        f"({d.over_max_s:.0f}; --quick: to the end of its input)",
    )
    bn.add_argument(
        "--checkpoint-interval",
        type=int,
        metavar="MS",
        help=f"of every job: the exactly-once commit interval ({d.checkpoint_interval_ms})",
    )
    bn.add_argument(
        "--state-backend",
        choices=["hashmap", "rocksdb"],
        help=f"tipoff's state backend ({d.state_backend}; rocksdb checkpoints incrementally)",
    )
    bn.add_argument(
        "--rate",
        type=float,
        help="freshness: simulated events/s (default: half of tipoff's measured rate)",
    )
    bn.add_argument(
        "--freshness-duration",
        type=float,
        metavar="S",
        help=f"seconds of live input per delivery guarantee ({d.freshness_duration_s:.0f})",
    )
    bn.add_argument(
        "--freshness-warmup",
        type=float,
        metavar="S",
        help=f"seconds of ticks not counted at the start ({d.freshness_warmup_s:.0f})",
    )
    bn.add_argument("--results", type=Path, help=f"folder for the JSON and PNG ({d.results_dir})")
    bn.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=PHASES,
        metavar="PHASE",
        help=f"leave out phases: {', '.join(PHASES)}",
    )
    bn.add_argument(
        "--keep-topics", action="store_true", help="keep the bench topics (default: deleted)"
    )
    bn.add_argument("--no-chart", action="store_true", help="no PNG (no matplotlib needed)")
    bn.add_argument("--rest-port", type=int, help="the local cluster's REST port (8081)")
    bn.add_argument("--rpc-port", type=int, help="the local cluster's RPC port (6123)")
    _stack_options(bn)


def _jobmanager_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobmanager",
        metavar="HOST:PORT",
        help="Flink REST address, e.g. of `tipoff run --rest-port` (default: tipoff's local "
        "cluster)",
    )


def _cluster_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`cluster`, `jobs` and `savepoint` (flink_jobs/cluster/commands.py,
    savepoint_commands.py and restore.py)."""
    cl = sub.add_parser(
        "cluster",
        help="start/stop/inspect a local standalone Flink session cluster",
        description="A JobManager and N TaskManagers (one slot each) as local processes, "
        "from the Flink distribution inside apache-flink, on 127.0.0.1. Data, logs and pids "
        "under <state dir>/flink-cluster. up: start what is not running, wait until every "
        "TaskManager is registered, print the REST/web URL. add-taskmanager: one more.",
    )
    cl.add_argument("action", choices=["up", "down", "status", "add-taskmanager"])
    cl.add_argument(
        "--taskmanagers", type=int, metavar="N", help="up: TaskManagers to run (default 2)"
    )
    cl.add_argument(
        "--rest-port", type=int, help="REST API and web UI port on 127.0.0.1 (default 8081)"
    )
    cl.add_argument("--rpc-port", type=int, help="JobManager RPC port (default 6123)")
    cl.add_argument(
        "--jobmanager-memory", metavar="SIZE", help="JobManager process size (default 1024m)"
    )
    cl.add_argument(
        "--taskmanager-memory",
        metavar="SIZE",
        help="process size of each TaskManager (default 1536m)",
    )
    cl.add_argument(
        "--heartbeat-timeout",
        type=float,
        metavar="S",
        help="seconds before a silent TaskManager is dropped and its jobs fail over (10)",
    )
    cl.add_argument(
        "--prometheus-ports",
        metavar="FROM-TO",
        help="expose every process's metrics (tipoff's and Flink's) for Prometheus on the "
        "first free port of this range, e.g. 9249-9259; Flink's reporter listens on all "
        "interfaces (default: off; or TIPOFF_FLINK_PROMETHEUS_PORTS)",
    )
    cl.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for registration (180)"
    )
    _stack_options(cl)

    jb = sub.add_parser(
        "jobs",
        help="list a Flink cluster's jobs with their last checkpoint",
        description="Jobs over the REST API (running first): id, state, name, start, "
        "duration, and the last completed checkpoint (path, size, duration).",
    )
    jb.add_argument("--running", action="store_true", help="only jobs that are not finished")
    _jobmanager_option(jb)
    _stack_options(jb)

    sp = sub.add_parser(
        "savepoint",
        help="trigger, stop with, list, restore and dispose of savepoints",
        description=f"JOB is a job id, an id prefix or a name ({', '.join(JOB_NAMES)}, {ALL}). "
        "Savepoints go "
        "to <state dir>/flink-cluster/savepoints unless --dir is given.",
    )
    spsub = sp.add_subparsers(dest="savepoint_action", required=True, metavar="ACTION")
    for action, text in (
        ("trigger", "take a savepoint; the job keeps running"),
        ("stop", "take a savepoint and stop the job (resume it with `savepoint restore`)"),
    ):
        p = spsub.add_parser(action, help=text, description=text)
        p.add_argument(
            "job",
            metavar="JOB",
            help=f"a job id, an id prefix (4+ characters) or a name: {_JOBS_TEXT}",
        )
        if action == "stop":
            p.add_argument(
                "--drain",
                action="store_true",
                help="advance event time to the end first: every pending tick fires (only "
                "when the job will not be resumed)",
            )
        p.add_argument("--dir", help="savepoint folder (default: the cluster's)")
        p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for it (300)")
        _jobmanager_option(p)
        _stack_options(p)
    ls = spsub.add_parser("list", help="savepoints in the savepoint folder, newest first")
    ls.add_argument("--dir", help="savepoint folder (default: the cluster's)")
    _stack_options(ls)
    rs = spsub.add_parser(
        "restore",
        help="submit a job that starts from a savepoint (this build, any parallelism)",
        description="Submit the job with `tipoff submit`'s path, restoring PATH, and wait "
        "until all its tasks run; a failed restore is reported with its cause and cancelled.",
    )
    rs.add_argument("path", metavar="PATH", help="savepoint folder or URI")
    rs.add_argument("--job", required=True, metavar="JOB", choices=JOB_CHOICES, help=_JOBS_TEXT)
    rs.add_argument(
        "--allow-non-restored-state",
        action="store_true",
        help="drop savepoint state no operator of this build claims instead of failing",
    )
    rs.add_argument(
        "--wait", type=float, default=180.0, help="seconds to wait for the tasks to run (180)"
    )
    _jobmanager_option(rs)
    add_job_options(rs)
    _stack_options(rs)
    dp = spsub.add_parser("dispose", help="delete a savepoint through the JobManager")
    dp.add_argument("path", metavar="PATH", help="savepoint folder or URI")
    dp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (120)")
    _jobmanager_option(dp)
    _stack_options(dp)
    ck = spsub.add_parser(
        "check",
        help="can this build restore PATH? (uids, state names; exit 1 if state would be lost)",
        description="Before a deploy: reads the savepoint's metadata and keyed-state headers, "
        "plans this build's job graph offline (no cluster, registry or Kafka) and compares "
        "operator by operator. FAIL: savepoint state no operator of this build claims (a "
        "renamed or removed uid; restoring would need --allow-non-restored-state and lose "
        "it), a changed key type or max parallelism. WARN: state this build no longer "
        "declares (carried along, unused). NOTE: new state (starts empty). Exit 0 ok, 1 FAIL "
        "(or WARN with --strict), 2 unreadable savepoint.",
    )
    ck.add_argument("path", metavar="PATH", help="savepoint (or retained checkpoint) folder")
    ck.add_argument(
        "--job",
        metavar="JOB",
        choices=JOB_CHOICES,
        help=f"the job the savepoint is restored into: {_JOBS_TEXT} (default: the jobs whose "
        "uids it holds)",
    )
    ck.add_argument("--parallelism", type=int, default=1, help="parallelism to restore at (1)")
    ck.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    _stack_options(ck)
    ins = spsub.add_parser(
        "inspect",
        help="state size per operator, and keyed state per user / game",
        description="Reads the savepoint's (or retained checkpoint's) metadata: the state "
        "bytes of every operator with state; with --users / --games, the features "
        "operators' keyed state divided by that many active users / games (a mean). With "
        "--per-key, reads the features operators' keyed state itself and attributes each "
        "entry to its user / game: keys, median, p10, p90, p99, max and mean bytes per key, "
        "and each state's share. Exit 2 if the savepoint cannot be read (or, with "
        "--per-key, is not an uncompressed canonical savepoint).",
    )
    ins.add_argument("path", metavar="PATH", help="savepoint (or retained checkpoint) folder")
    ins.add_argument("--users", type=int, metavar="N", help="active users in the input")
    ins.add_argument("--games", type=int, metavar="N", help="active games in the input")
    ins.add_argument(
        "--per-key",
        action="store_true",
        help="bytes per user / game: the distribution over keys (median, p90, ...) and the "
        "share of each state; needs a canonical savepoint (the default format); a key's "
        "bytes are its entries as serialized in the savepoint (key, namespace, value and "
        "length prefixes), without the stream's header and markers",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flink_jobs.tools import commands

    try:
        return commands.dispatch(args, _settings(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except commands.UserError as e:
        print(f"tipoff: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
