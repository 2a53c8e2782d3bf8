"""Q2: decode PICKLED_BYTE_ARRAY state values with plain pickle.loads.

usage: q2_decode.py <rows.jsonl from ReadFeatures> <source root with udfs/ (e.g. /work/main)>
"""
import base64
import json
import pickle
import pickletools
import sys
from collections import Counter

rows_path, src = sys.argv[1], sys.argv[2]
sys.path.insert(0, src)

rows = [json.loads(line) for line in open(rows_path)]
print(f"{len(rows)} keys from {rows_path}; classes from {src}")

first = base64.b64decode(rows[0]["key_clock"])
print("first clock bytes[:16]:", first[:16], " len", len(first))
print("pickle protocol opcodes (head):")
ops = list(pickletools.genops(first))
for op, arg, pos in ops[:6]:
    print("  ", pos, op.name, repr(arg)[:80])

fails, types, roundtrip_same = Counter(), Counter(), Counter()
decoded = {}
for r in rows:
    out = {}
    for col in ("key_clock", "feature_state"):
        if r[col] is None:
            continue
        raw = base64.b64decode(r[col])
        try:
            obj = pickle.loads(raw)
        except Exception as e:  # noqa: BLE001
            fails[(col, f"{type(e).__name__}: {e}")] += 1
            continue
        types[(col, f"{type(obj).__module__}.{type(obj).__qualname__}")] += 1
        roundtrip_same[(col, pickle.dumps(obj) == raw)] += 1
        out[col] = obj
    pend = []
    for b in r["pending_events"]:
        raw = base64.b64decode(b)
        try:
            obj = pickle.loads(raw)
            types[("pending-events", type(obj).__qualname__)] += 1
            pend.append(obj)
        except Exception as e:  # noqa: BLE001
            fails[("pending-events", f"{type(e).__name__}: {e}")] += 1
    out["pending"] = pend
    decoded[r["key"]] = out

print("decoded types:", dict(types))
print("pickle.dumps(pickle.loads(b)) == b:", dict(roundtrip_same))
print("failures:", dict(fails) or "none")
print("keys with event timers:", sum(bool(r["event_timers"]) for r in rows),
      "processing timers:", sum(bool(r["processing_timers"]) for r in rows))

k = rows[0]["key"]
print(f"\n== key {k!r} ==")
print("event timers:", rows[0]["event_timers"])
print("dedup-ids:", dict(list(rows[0]["dedup_ids"].items())[:3]), "...")
clock = decoded[k].get("key_clock")
print("KeyClock:", repr(clock)[:1500])
print("\nfeature state:", repr(decoded[k].get("feature_state"))[:1500])
withp = next((r for r in rows if r["pending_events"]), None)
if withp:
    print(f"\npending-events of {withp['key']!r}:", repr(decoded[withp['key']]['pending'])[:800])
