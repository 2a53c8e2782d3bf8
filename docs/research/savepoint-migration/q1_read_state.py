"""Q1: read tipoff.<job>.features keyed state with the SQL `savepoint` connector from PyFlink (batch)."""
import sys
from pathlib import Path

from pyflink.table import EnvironmentSettings, TableEnvironment

HERE = Path(__file__).resolve().parent
job = sys.argv[1] if len(sys.argv) > 1 else "user-features"
release = sys.argv[2] if len(sys.argv) > 2 else "release-1"
key_mode = sys.argv[3] if len(sys.argv) > 3 else "factory"
sp = HERE / "golden" / release / job

t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
conf = t_env.get_config()
# The jars must be on the gateway JVM's classpath (FLINK_LIB_DIR=flink-lib, see run.sh):
# with pipeline.jars the connector is found but its value-type-factory class is not
# (TypeUtils.getInstance uses Class.forName from flink-core's class loader).
conf.set("parallelism.default", "1")

key_opt = ""
if key_mode == "factory":
    key_opt = "'fields.k.value-type-factory' = 'tipoff.research.RowOfStringKey',"

ddl = f"""
CREATE TABLE features_state (
  k STRING,
  key_clock BYTES,
  feature_state BYTES,
  pending_events ARRAY<BYTES>,
  dedup_ids MAP<STRING, BIGINT>,
  PRIMARY KEY (k) NOT ENFORCED
) WITH (
  'connector' = 'savepoint',
  'state.backend.type' = 'hashmap',
  'state.path' = '{sp.as_uri()}',
  'operator.uid' = 'tipoff.{job}.features',
  {key_opt}
  'fields.key_clock.state-name' = 'key-clock',
  'fields.feature_state.state-name' = 'feature-state',
  'fields.pending_events.state-name' = 'pending-events',
  'fields.pending_events.state-type' = 'list',
  'fields.dedup_ids.state-name' = 'dedup-ids',
  'fields.dedup_ids.state-type' = 'map',
  'fields.dedup_ids.key-type-factory' = 'tipoff.research.StringType'
)"""
print(ddl)
t_env.execute_sql(ddl)
q = """
SELECT SUBSTRING(k FROM 4 FOR CHAR_LENGTH(k) - 4) AS entity_key, k AS raw_key,
       key_clock, feature_state, pending_events, dedup_ids
FROM features_state"""
rows = list(t_env.execute_sql(q).collect())
print(len(rows), "keys")
def n(x):
    return None if x is None else len(x)
for r in sorted(rows, key=lambda r: r[0])[:10]:
    print(repr(r[0]), repr(r[1]), "clock", n(r[2]), "feature", n(r[3]), "pending", n(r[4]),
          "dedup", n(r[5]), "clock[:12]", None if r[2] is None else bytes(r[2][:12]))
print("keys with clock:", sum(r[2] is not None for r in rows), " with feature-state:",
      sum(r[3] is not None for r in rows), " with pending:", sum(bool(r[4]) for r in rows),
      " with dedup:", sum(bool(r[5]) for r in rows))
import pickle
out = HERE / f"state_{release}_{job}.pickle"
out.write_bytes(pickle.dumps([tuple(r) for r in rows]))
print("raw rows ->", out)
