"""The JVM's own cost with no Python in the job: datagen sequence -> SQL expressions building
UserFeatures-like columns -> (avro) upsert-kafka avro-confluent | (raw) kafka raw k/v of a
constant 115-byte value | (bh) blackhole. avro - raw = Avro encoding (RowData -> GenericRecord
-> bytes, register() cache lookup).

usage: python jvm_only.py avro|raw|bh N
"""
import json
import sys
import time

import common as C

V, N = sys.argv[1], int(sys.argv[2])
stamp = int(time.time())
topic = f"r2.jvmonly.{V}.{stamp}"
if V != "bh":
    C.create_topic(topic)
    C.register(f"{topic}-value", C.SCHEMA_TEXT)
env, t = C.env()
t.get_config().set("table.exec.sink.upsert-materialize", "NONE")
t.execute_sql(f"CREATE TEMPORARY TABLE gen (i BIGINT) WITH ('connector'='datagen', "
              f"'number-of-rows'='{N}', 'fields.i.kind'='sequence', 'fields.i.start'='0', "
              f"'fields.i.end'='{N - 1}')")
t.execute_sql(f"""CREATE TEMPORARY VIEW feat AS SELECT
  CONCAT('user-', CAST(MOD(i, 97) AS STRING)) AS user_id,
  CAST(MOD(i, 13) AS INT) AS interactions_1m, CAST(MOD(i * 7, 101) AS INT) AS interactions_5m,
  CAST(MOD(i * 31, 2000000) AS INT) AS interactions_1h, CAST(i AS INT) AS interactions_24h,
  CAST(MOD(i, 5) AS INT) AS video_starts_1h, CAST(MOD(i, 9) AS INT) AS distinct_games_1h,
  CASE WHEN MOD(i, 2) = 0 THEN ARRAY['t-bos', 't-lal'] ELSE ARRAY['t-nyk'] END AS followed_teams,
  ARRAY['t-gsw', 't-mia', 't-chi'] AS top_teams,
  CONCAT('user-', CAST(MOD(i, 97) AS STRING), ':', CAST({C.BASE_MS} + i * 997 AS STRING)) AS session_id,
  CAST(MOD(i * 5, 300) AS INT) AS session_events, MOD(i * 13, 86400) AS session_duration_s,
  CASE WHEN MOD(i, 3) = 0 THEN CAST(NULL AS STRING) ELSE CONCAT('g-', CAST(MOD(i, 24) AS STRING)) END AS watching_game_id,
  {C.BASE_MS} + i * 1000 - 10 AS last_active_at, {C.BASE_MS} + i * 1000 AS feature_time,
  {C.BASE_MS} + i * 1000 + 123 AS computed_at, CAST(MOD(i, 4) AS INT) AS alerts_opened_1h
FROM gen""")
prefix = f"r2-jo-{V}-{stamp}"
if V == "avro":
    t.execute_sql(C.upsert_avro_sink_ddl("snk", topic, prefix))
    insert = f"INSERT INTO snk {C.select_for_avro_sink('feat')}"
elif V == "raw":
    t.execute_sql(C.raw_sink_ddl("snk", topic, prefix))
    insert = ("INSERT INTO snk SELECT CAST(user_id AS BYTES), CAST(CONCAT(session_id, REPEAT('x', 90)) AS BYTES), "
              "MAP['feature_time', CAST(CAST(feature_time AS STRING) AS BYTES)] FROM feat")
else:
    t.execute_sql(f"CREATE TEMPORARY TABLE snk ({C.columns_ddl()}, h MAP<STRING, BYTES>) "
                  "WITH ('connector' = 'blackhole')")
    insert = f"INSERT INTO snk {C.select_for_avro_sink('feat')}"
jvm = C.gateway_jvm_pid()
s = C.ThreadSampler(jvm)
s.start()
c0, t0 = C.proc_cpu(jvm), time.time()
t.execute_sql(insert).wait()
wall, c1 = time.time() - t0, C.proc_cpu(jvm)
th = s.stop()
task = sum(v for k, v in th.items()
           if k.startswith(("Source", "Legacy Source", "snk", "Sink", "Calc", "ConstraintEnf")))
prod = sum(v for k, v in th.items() if k.startswith("kafka-producer"))
print("RESULT " + json.dumps({"variant": f"jvmonly_{V}", "n": N, "wall_s": round(wall, 1),
      "jvm_cpu_s": round(c1 - c0, 2), "task_us": round(task / N * 1e6, 2),
      "producer_us": round(prod / N * 1e6, 2), "threads_cpu_s": th}))
