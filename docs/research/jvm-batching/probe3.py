"""Is ARRAY_AGG(ROW(...)) wrong in the JVM already, or only after conversion to Python?"""
import common, time
e, t = common.env()
t.execute_sql(common.kafka_src_ddl("src", "r1.small", rowtime="rt", bounded=True, group=f"p-{time.time()}"))
t.execute_sql("CREATE TEMPORARY VIEW src_b AS SELECT *, COALESCE(ABS(MOD(HASH_CODE(CAST(k AS STRING)), 64)), 0) AS bucket FROM src")
q = """
SELECT bucket, CARDINALITY(recs) AS n, recs[1].o AS o1, recs[2].o AS o2, recs[CARDINALITY(recs)].o AS olast,
       offs[1] AS s1, offs[2] AS s2, offs[CARDINALITY(offs)] AS slast
FROM (
SELECT bucket, window_start, window_end,
       ARRAY_AGG(CAST(ROW(k, v, `partition`, `offset`) AS ROW<k BYTES, v BYTES, p INT, o BIGINT>)) AS recs,
       ARRAY_AGG(`offset`) AS offs
FROM TABLE(TUMBLE(TABLE src_b, DESCRIPTOR(rt), INTERVAL '1' SECOND))
GROUP BY bucket, window_start, window_end)
"""
with t.execute_sql(q).collect() as it:
    rows = list(it)
print(len(rows), rows[:5])
print("rows where row-array elements all equal but scalar offsets differ:",
      sum(1 for r in rows if r[1] > 1 and r[2] == r[3] == r[4] and r[5] != r[6]))
