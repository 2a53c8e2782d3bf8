"""The state measurement after the tipoff phase: the keyed state of a canonical savepoint,
in total (per active user) and per key.
"""

from __future__ import annotations

import time
from typing import Any

from flink_jobs.bench import preload, report
from flink_jobs.bench.cluster import Cluster
from flink_jobs.bench.options import Options
from flink_jobs.cluster.rest import FlinkRestError
from flink_jobs.output import Log


def state_size(
    cluster: Cluster, job_id: str, feed: preload.Feed, opts: Options, log: Log
) -> dict[str, Any]:
    """The keyed state of both features operators from a canonical savepoint: total (so
    the mean per active user) and per key (median, p10/p90/p99, max, state shares; see
    flink_jobs/cluster/keysizes.py for what a key's bytes include)."""
    from flink_jobs.cluster import keysizes, savepoints, statesize

    result = cluster.rest.trigger(job_id, cluster.savepoints.resolve().as_uri(), timeout_s=600)
    info = savepoints.inspect(result.path)
    size = statesize.measure(info, users=feed.users, games=feed.games)
    per = {op.entity: op for op in size.operators if op.entity}
    user, game = per.get("user"), per.get("game")
    out: dict[str, Any] = {
        "savepoint": result.path,
        "savepoint_bytes": size.total,
        "users": feed.users,
        "games": feed.games,
        "user_keyed_bytes": user.keyed_bytes if user else None,
        "bytes_per_active_user": user.keyed_per_entity if user else None,
        "game_keyed_bytes": game.keyed_bytes if game else None,
        "bytes_per_game": game.keyed_per_entity if game else None,
        "kind": "keyed state bytes in a canonical savepoint "
        f"({opts.state_backend} backend): bytes_per_* = keyed bytes / active entities (a "
        "mean); *_median_bytes etc. = per key, each key's serialized entries",
    }
    t0 = time.monotonic()
    try:
        by_uid = keysizes.measure_keys(result.path, list(statesize.ENTITIES))
    except savepoints.SavepointCheckError as e:
        log(f"note: no per-key state sizes: {e}")
        out["per_key_error"] = str(e)[:500]
        by_uid = {}
    for op_uid, sizes in by_uid.items():
        out.update(sizes.summary(statesize.ENTITIES[op_uid]))
    if by_uid:
        median = out.get("user_median_bytes")
        log(
            f"bench: per-key state read in {time.monotonic() - t0:.1f}s: median "
            f"{report._num(median)} B per user ({report._num(out.get('user_keys'))} keys), "
            f"mean {report._num(out.get('bytes_per_active_user'))} B per active user"
        )
    try:
        cluster.rest.dispose(result.path)
    except FlinkRestError as e:
        log(f"note: savepoint {result.path} not disposed: {e}")
    return out
