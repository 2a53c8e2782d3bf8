"""Q4 step 1 (Python): old state rows -> bootstrap rows for the new operator.

Reads ReadFeatures' JSON lines (the four old states and the timers of each key), unpickles them
with the release's classes, builds the new layout (here: one MapState<STRING, BYTES> per key
with sub-states clock / feature / pending / dedup, each a plain pickle.dumps) and the key's live
timers (the KeyClock agenda; the other registered timers are stale no-ops).

usage: q4_prepare.py <source root> <old rows.jsonl> <bootstrap.jsonl>
"""
import base64
import json
import pickle
import sys

sys.path.insert(0, sys.argv[1])
from udfs.features.v2.runtime import live  # noqa: E402  (<= last_tick: applied)
from udfs.flink.state import _unpack  # noqa: E402  (tuples: release 2)

n = 0
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[2]):
        r = json.loads(line)
        clock = pickle.loads(base64.b64decode(r["key_clock"])) if r["key_clock"] else None
        feature = pickle.loads(base64.b64decode(r["feature_state"])) if r["feature_state"] else None
        stored = [pickle.loads(base64.b64decode(b)) for b in r["pending_events"]]
        pending = live(_unpack(stored), clock.last_tick) if clock else _unpack(stored)
        # ... here the real migration converts to the v2 classes ...
        new = {
            "clock": clock,
            "feature": feature,
            "pending": pending,
            "dedup": dict(r["dedup_ids"]),
        }
        state = {k: base64.b64encode(pickle.dumps(v)).decode() for k, v in new.items() if v is not None}
        timers = sorted(clock.agenda) if clock else []
        out.write(json.dumps({"key": r["key"], "state": state, "timers": timers}) + "\n")
        n += 1
print(f"{n} bootstrap rows -> {sys.argv[3]}")
