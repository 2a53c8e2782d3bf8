"""The `tipoff` command: local stack, schemas, simulator, tail and the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flink_jobs.bench import options as bench_options
from flink_jobs.cliopts import (
    JOB_CHOICES,
    JOBS_TEXT,
    jobmanager_option,
    settings_of,
    stack_options,
)
from flink_jobs.cluster import commands as cluster_commands
from flink_jobs.cluster import savepoint_commands
from flink_jobs.config import add_job_options
from udfs.jobs import JOB_NAMES

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
    stack_options(st)

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
    stack_options(sc)

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
    stack_options(sim)

    tl = sub.add_parser("tail", help="print a topic's records as JSON lines (via the registry)")
    tl.add_argument("topic")
    tl.add_argument("--from-beginning", action="store_true")
    tl.add_argument("--max", type=int, help="stop after N records")
    tl.add_argument("--timeout", type=float, help="stop after S seconds without a record")
    stack_options(tl)

    rn = sub.add_parser(
        "run",
        help="run feature jobs on an embedded Flink MiniCluster",
        description=f"Run JOB ({JOBS_TEXT}) in this process, against the configured "
        "Kafka and registry (default: the local stack).",
    )
    rn.add_argument("job", metavar="JOB", choices=JOB_CHOICES, help=JOBS_TEXT)
    add_job_options(rn)
    stack_options(rn)

    sb = sub.add_parser(
        "submit",
        help="submit a feature job to an existing Flink cluster; prints the job id",
        description="Package tipoff, then `flink run --detached -pym flink_jobs.<job>` against "
        "the JobManager's REST endpoint. The cluster's Python needs apache-flink, fastavro and "
        "confluent-kafka; tipoff itself is shipped with the job.",
    )
    sb.add_argument("job", metavar="JOB", choices=JOB_CHOICES, help=JOBS_TEXT)
    jobmanager_option(sb)
    sb.add_argument("--cluster-python", help="python executable on the TaskManagers")
    add_job_options(sb)
    stack_options(sb)

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
    stack_options(dq)

    dm = sub.add_parser(
        "demo",
        help="everything live: stack, schemas, both jobs, simulator, a refreshing feature view",
    )
    dm.add_argument("--duration", type=float, default=90.0, help="seconds to run (90)")
    dm.add_argument("--rate", type=float, default=200.0, help="simulated events/s (200)")
    stack_options(dm)

    cluster_commands.add_parsers(sub)
    savepoint_commands.add_parser(sub)
    bench_options.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flink_jobs.tools import commands

    try:
        return commands.dispatch(args, settings_of(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except commands.UserError as e:
        print(f"tipoff: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
