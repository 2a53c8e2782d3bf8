"""Q2 side checks.

usage: python q2_checks.py plain-kafka      # kafka connector + avro-confluent + DELETE rows
       python q2_checks.py null-delete TOPIC # upsert-kafka, DELETE rows with NULLs in NOT NULL cols
       python q2_checks.py plan-p2           # upsert-kafka plan at parallelism 2
"""

from __future__ import annotations

import sys
import time

import common as C

what = sys.argv[1]
env, t = C.env(parallelism=2 if what == "plan-p2" else 1)
t.get_config().set("table.exec.sink.upsert-materialize", "NONE")


def null_delete(i):
    from pyflink.common import Row, RowKind

    if C.record(i) is None:
        # arrays: [] (pemja cannot convert None to a BASIC_ARRAY: TypeError in Python)
        r = Row(*[C.key_of(i) if f == "user_id" else (C.feature_time(i) if f == "feature_time"
                  else ([] if f.endswith("_teams") else None)) for f in C.FIELDS])
        r.set_row_kind(RowKind.DELETE)
        return r
    return C.to_typed_row(i)


if what == "plain-kafka":
    opts = ["'connector' = 'kafka'", *C.kafka_common("r2.plain", "r2-plain"),
            "'key.format' = 'raw'", "'key.fields' = 'user_id'",
            "'value.format' = 'avro-confluent'", f"'value.avro-confluent.url' = {C.q(C.REGISTRY)}",
            f"'value.avro-confluent.schema' = {C.q(C.SCHEMA_TEXT)}"]
    t.execute_sql(f"CREATE TEMPORARY TABLE s ({C.columns_ddl()}, headers MAP<STRING, BYTES> "
                  f"METADATA) WITH ({', '.join(opts)})")
    ds = C.sequence(env, 100).map(C.to_typed_row, output_type=C.typed_row_type())
    t.create_temporary_view("v", t.from_changelog_stream(ds))
    try:
        print(t.explain_sql(f"INSERT INTO s {C.select_for_avro_sink('v')}"))
    except Exception as e:  # noqa: BLE001
        print("REFUSED:", str(e).splitlines()[0][:400])
        for line in str(e).splitlines():
            if "doesn't support" in line or "does not support" in line:
                print("  ", line.strip()[:300])
elif what == "null-delete":
    topic = sys.argv[2]
    C.create_topic(topic)
    C.register(f"{topic}-value", C.SCHEMA_TEXT)
    t.execute_sql(C.upsert_avro_sink_ddl("s", topic, f"r2-nd-{int(time.time())}"))
    ds = C.sequence(env, 100).map(null_delete, output_type=C.typed_row_type())
    t.create_temporary_view("v", t.from_changelog_stream(ds))
    try:
        t.execute_sql(f"INSERT INTO s {C.select_for_avro_sink('v')}").wait()
        recs = C.consume_all(topic)
        print("OK: records", len(recs), "tombstones", sum(r["value"] is None for r in recs))
    except Exception as e:  # noqa: BLE001
        causes = [ln.strip() for ln in str(e).splitlines() if "Caused by" in ln]
        print("FAILED:", *sorted(set(c[:300] for c in causes)), sep="\n  ")
elif what == "plan-p2":
    t.execute_sql(C.upsert_avro_sink_ddl("s", "features.user", "r2-p2"))
    ds = C.sequence(env, 100).map(C.to_typed_row, output_type=C.typed_row_type())
    t.create_temporary_view("v", t.from_changelog_stream(ds))
    plan = t.explain_sql(f"INSERT INTO s {C.select_for_avro_sink('v')}")
    print(plan[plan.find("== Optimized Execution Plan"):][:2000])
