import common, time, sys
e, t = common.env()
t.execute_sql(common.kafka_src_ddl("src", "r1.small", rowtime="rt", bounded=True, group=f"p-{time.time()}"))
for q in ["SELECT COUNT(*) FROM src", "SELECT MIN(ts), MAX(ts), MIN(rt) FROM src",
          "SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(rt), INTERVAL '1' SECOND))",
          "SELECT window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(rt), INTERVAL '1' SECOND)) GROUP BY window_start, window_end"]:
    with t.execute_sql(q).collect() as it:
        print(q, "->", list(it)[-3:], flush=True)
