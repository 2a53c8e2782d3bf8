"""Q1: per-partition watermarks from the Kafka timestamp + idleness, unbounded.

usage: q1_watermarks.py SCENARIO IDLE
  SCENARIO equal: p0 and p1 get the same event clock (10 rec/s each, 10 s wall), p2 nothing
           lag:   p0 runs 5 s of event time ahead of p1, p2 nothing
  IDLE     none | table (scan.watermark.idle-timeout) | config (table.exec.source.idle-timeout)
"""
import sys, threading, time, json
import common

scenario, idle = sys.argv[1], sys.argv[2]
topic = f"r1.q1.{scenario}.{idle}"
common.recreate_topic(topic, 3)
extra = {}
opts = []
if idle == "table":
    opts.append("'scan.watermark.idle-timeout' = '2 s'")
elif idle == "config":
    extra["table.exec.source.idle-timeout"] = "2 s"
e, t = common.env(extra=extra)
t.execute_sql(common.kafka_src_ddl("src", topic, extra_opts=opts, group=f"q1-{time.time()}"))
q = """
SELECT window_start, window_end, COUNT(*) AS n,
       SUM(CASE WHEN `partition` = 0 THEN 1 ELSE 0 END) AS n0,
       SUM(CASE WHEN `partition` = 1 THEN 1 ELSE 0 END) AS n1
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end
"""
print(t.explain_sql(q).split("== Optimized Physical Plan ==")[1].split("== Optimized Execution Plan")[0])
BASE = 1_700_000_000_000  # multiple of 1000
T0 = None
results = []

def consume():
    res = t.execute_sql(q)
    with res.collect() as it:
        for r in it:
            rel = (r[1].timestamp() * 1000 - BASE) / 1000 if hasattr(r[1], "timestamp") else r[1]
            results.append((round(time.time() - T0, 1), str(r[0]), str(r[1]), r[2], r[3], r[4]))
            print(f"  +{time.time() - T0:5.1f}s wall  window {r[0]} .. {r[1]}  n={r[2]} (p0={r[3]}, p1={r[4]})", flush=True)

T0 = time.time()
th = threading.Thread(target=consume, daemon=True)
th.start()
time.sleep(8)  # job start
p = common.producer()
sent = {0: [], 1: []}
print(f"+{time.time()-T0:.1f}s producing", flush=True)
for i in range(100):  # 10 s wall, 100 ms per step
    ts0 = BASE + i * 100 + (5000 if scenario == "lag" else 0)
    ts1 = BASE + i * 100
    p.produce(topic, key=b"u%d" % i, value=b"x", partition=0, timestamp=ts0)
    p.produce(topic, key=b"u%d" % i, value=b"x", partition=1, timestamp=ts1)
    sent[0].append(ts0); sent[1].append(ts1)
    p.flush()
    time.sleep(0.1)
print(f"+{time.time()-T0:.1f}s producer STOPPED; max ts p0=+{(max(sent[0])-BASE)/1000}s p1=+{(max(sent[1])-BASE)/1000}s (rel. to BASE)", flush=True)
time.sleep(15)
print(f"+{time.time()-T0:.1f}s done")
summary = {"scenario": scenario, "idle": idle, "windows": results,
           "sent_p0": len(sent[0]), "sent_p1": len(sent[1]),
           "counted_p0": sum(r[4] for r in results), "counted_p1": sum(r[5] for r in results)}
print("SUMMARY", json.dumps({k: v for k, v in summary.items() if k != "windows"}))
json.dump(summary, open(f"q1_{scenario}_{idle}.json", "w"), indent=1)
import os; os._exit(0)
