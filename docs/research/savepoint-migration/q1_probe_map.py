"""Probe: which declaration of dedup-ids (MapState<String, Long>) does the connector accept?"""
import sys
from pathlib import Path
from pyflink.table import EnvironmentSettings, TableEnvironment
HERE = Path(__file__).resolve().parent
extra = sys.argv[1]
sp = HERE / "golden" / "release-1" / "user-features"
t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t_env.get_config().set("parallelism.default", "1")
t_env.execute_sql(f"""
CREATE TABLE s (k STRING, dedup_ids MAP<STRING, BIGINT>, PRIMARY KEY (k) NOT ENFORCED) WITH (
  'connector' = 'savepoint', 'state.backend.type' = 'hashmap', 'state.path' = '{sp.as_uri()}',
  'operator.uid' = 'tipoff.user-features.features',
  'fields.k.value-type-factory' = 'tipoff.research.RowOfStringKey',
  'fields.dedup_ids.state-name' = 'dedup-ids', 'fields.dedup_ids.state-type' = 'map' {extra})""")
rows = list(t_env.execute_sql("SELECT * FROM s").collect())
print(len(rows), rows[:2])
