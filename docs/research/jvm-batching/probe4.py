import common, time
e, t = common.env()
t.execute_sql(common.kafka_src_ddl("src", "r1.small", rowtime="rt", bounded=True, group=f"p-{time.time()}"))
for q in ["SELECT CAST(ts AS BIGINT), TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), ts), `offset` FROM src WHERE `offset` = 5",
          "SELECT UNIX_TIMESTAMP(CAST(ts AS STRING)) FROM src WHERE `offset` = 5",
          "SELECT CAST(EXTRACT(EPOCH FROM ts) AS BIGINT) * 1000 + EXTRACT(MILLISECOND FROM ts), `offset` FROM src WHERE `offset` = 5",
          "SELECT COUNT(*), SUM(CARDINALITY(a)), SUM(CARDINALITY(b)) FROM (SELECT `partition`, ARRAY_AGG(v) AS a, ARRAY_AGG(`offset`) AS b FROM src GROUP BY `partition`)"]:
    try:
        with t.execute_sql(q).collect() as it:
            print(q, "->", list(it)[-3:], flush=True)
    except Exception as ex:
        print(q, "FAILED", [l for l in str(ex).splitlines() if 'Exception' in l][:2])
