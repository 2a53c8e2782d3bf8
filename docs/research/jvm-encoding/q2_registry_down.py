"""Does the JVM encoder need the registry at task (re)start? Register the contract, stop the
registry (by pid, our own stack), run the upsert-kafka avro-confluent job: the format's
serializer calls SchemaRegistryClient.register(subject, schema) on the first record of each
task (in-memory cache only), so a task that (re)starts while the registry is down fails.

usage: python q2_registry_down.py TOPIC REGISTRY_PID
"""
import os, signal, sys, time
import common as C

topic, pid = sys.argv[1], int(sys.argv[2])
C.create_topic(topic)
print("registered id", C.register(f"{topic}-value", C.SCHEMA_TEXT))
os.kill(pid, signal.SIGTERM)
time.sleep(5)
env, t = C.env()
t.get_config().set("table.exec.sink.upsert-materialize", "NONE")
t.execute_sql(C.upsert_avro_sink_ddl("s", topic, f"r2-rd-{int(time.time())}"))
ds = C.sequence(env, 50).map(C.to_typed_row, output_type=C.typed_row_type())
t.create_temporary_view("v", t.from_changelog_stream(ds))
t0 = time.time()
try:
    t.execute_sql(f"INSERT INTO s {C.select_for_avro_sink('v')}").wait()
    print("job succeeded without the registry")
except Exception as e:  # noqa: BLE001
    causes = sorted({ln.strip()[:250] for ln in str(e).splitlines() if "Caused by" in ln})
    print(f"job failed after {time.time() - t0:.1f}s:", *causes, sep="\n  ")
