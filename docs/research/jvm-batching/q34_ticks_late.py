"""Q3 (right-closed ticks) + Q4 (late records routed, not dropped), unbounded, 1 partition.

usage: q34_ticks_late.py VARIANT   VARIANT: none | wm (rt > CURRENT_WATERMARK) | pane (pane-aware)
"""
import json, os, sys, threading, time
import common

variant = sys.argv[1]
topic = f"r1.q34.{variant}"
common.recreate_topic(topic, 1)
e, t = common.env()
t.execute_sql(common.kafka_src_ddl("src", topic, rowtime="rt", group=f"q34-{time.time()}"))
WM = "CURRENT_WATERMARK(rt)"
if variant == "none":
    on_time, late = "TRUE", "FALSE"
elif variant == "wm":   # record behind the watermark -> late stream
    on_time = f"({WM} IS NULL OR rt > {WM})"
    late = f"({WM} IS NOT NULL AND rt <= {WM})"
else:                   # pane-aware: late only if the record's pane [floor, floor+1s) has fired
    pane_max = "(FLOOR(rt TO SECOND) + INTERVAL '0.999' SECOND)"
    on_time = f"({WM} IS NULL OR {pane_max} > {WM})"
    late = f"({WM} IS NOT NULL AND {pane_max} <= {WM})"
t.execute_sql(f"CREATE TEMPORARY VIEW ontime AS SELECT * FROM src WHERE {on_time}")
q = f"""
SELECT 'pane' AS kind, CAST(window_end AS STRING) AS tick, COUNT(*) AS n,
       LISTAGG(CAST(v AS STRING), ',') AS ids, CAST(MAX(CURRENT_WATERMARK(rt)) AS STRING) AS wm
FROM TABLE(TUMBLE(TABLE ontime, DESCRIPTOR(rt), INTERVAL '1' SECOND))
GROUP BY window_start, window_end
UNION ALL
SELECT 'late', CAST(rt AS STRING), 1, CAST(v AS STRING), CAST({WM} AS STRING)
FROM src WHERE {late}
"""
plan = t.explain_sql(q)
opt = plan.split("== Optimized Execution Plan ==")[1]
print(opt)
B = (int(time.time()) - 3600) * 1000  # an hour ago, multiple of 1000
out = []
started = threading.Event()
def consume():
    res = t.execute_sql(q)
    started.set()
    with res.collect() as it:
        for r in it:
            out.append(list(r)); print("  OUT", list(r), flush=True)
threading.Thread(target=consume, daemon=True).start()
started.wait(120); time.sleep(12)
p = common.producer()
sent = {}
def send(name, ts):
    sent[name] = ts
    p.produce(topic, key=b"k", value=name.encode(), partition=0, timestamp=B + ts)
# phase 1: in order; exact multiples of 1000, +-1 ms around them, some in between
for j in range(1, 11):
    for d in (-1, 0, 1, 400):
        send(f"p1_{j}s{d:+d}", j * 1000 + d)
send("p1_last", 10500)
p.flush(); time.sleep(2.0)  # watermark(rt) -> 10499 - 2000 = 8499
send("late_dead_3000", 3000)       # pane (2000,3000] fired long ago
send("late_dead_5500", 5500)       # pane (5000,6000] fired
send("border_8200", 8200)          # rt 8199 <= wm 8499, but pane (8000,9000] not fired yet
send("border_8500", 8500)          # rt 8499 == wm
send("ontime_8600", 8600)          # rt 8599 > wm
p.flush(); time.sleep(2.0)
send("flush_30000", 30000)         # moves the watermark to 27999; its own pane stays open
p.flush(); time.sleep(8.0)
# accounting
seen = {}
ticks = {}
for kind, tick, n, ids, wm in out:
    for i in ids.split(","):
        seen.setdefault(i, []).append(kind)
        if kind == "pane":
            ticks[i] = tick
res = {"variant": variant, "B": B, "rows": out, "sent": len(sent)}
missing = [n for n in sent if n not in seen and n != "flush_30000"]
dup = [n for n, k in seen.items() if len(k) > 1]
late = [n for n, k in seen.items() if k == ["late"]]
# tick check: expected tick = ceil(ts/1000)*1000 ; tick string is window_end (UTC)
import datetime as dt
bad_tick = []
for name, ts in sent.items():
    if name in ticks:
        end = dt.datetime.fromisoformat(ticks[name]).replace(tzinfo=dt.timezone.utc).timestamp() * 1000
        exp = -(-ts // 1000) * 1000
        if int(end - B) != exp:
            bad_tick.append((name, ts, int(end - B)))
res.update(missing=missing, duplicated=dup, late=late, bad_tick=bad_tick,
           panes=sum(1 for r in out if r[0] == "pane"))
print("SUMMARY", json.dumps({k: v for k, v in res.items() if k != "rows"}))
json.dump(res, open(f"q34_{variant}.json", "w"), indent=1)
os._exit(0)
