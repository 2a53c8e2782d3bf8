"""Q3: cost of Python-side vs JVM-side encoding, and of handing typed rows to Java.

usage: python bench.py VARIANT N [--checkpoint-ms MS]
variants:
  py_encode   seq -> Python: record dict -> tipoff Codec.encode -> Row(k, v, ts) -> raw kafka
              sink + header (today's way)
  jvm_encode  seq -> Python: record dict -> typed 17-field Row (DELETE kind for tombstones)
              -> from_changelog_stream -> upsert-kafka avro-confluent sink + header
  gen_only    seq -> Python: record dict -> Row(LONG) -> blackhole (generation baseline)
  kv_only     seq -> Python: record dict -> Row(k, v=constant bytes, ts) -> blackhole
  typed_only  seq -> Python: record dict -> typed 17-field Row -> blackhole
  py_enc_bh   like py_encode but into blackhole (encoding without Kafka)
  jvm_enc_bh  typed rows -> JVM avro-confluent encoding into 'blackhole'? (not possible:
              a format needs a Kafka table) -> omitted
Prints one JSON line: variant, n, wall_s, jvm_cpu_s, kafka_cpu_s, records written.
"""

from __future__ import annotations

import argparse
import json
import time

import common as C

ap = argparse.ArgumentParser()
ap.add_argument("variant")
ap.add_argument("n", type=int)
ap.add_argument("--checkpoint-ms", type=int, default=5000)
args = ap.parse_args()
V, N = args.variant, args.n

stamp = int(time.time())
topic = f"r2.bench.{V}.{stamp}"
schema_id = None
if V in ("py_encode", "jvm_encode", "py_enc_bh"):
    C.create_topic(topic)
    schema_id = C.register(f"{topic}-value", C.SCHEMA_TEXT)

from pyflink.common import Row, Types  # noqa: E402

env, t = C.env(checkpoint_ms=args.checkpoint_ms)
t.get_config().set("table.exec.sink.upsert-materialize", "NONE")
BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
KAFKA_ROW = Types.ROW_NAMED(["k", "v", "ts"], [BYTES, BYTES, Types.LONG()])
seq = C.sequence(env, N)
prefix = f"r2-{V}-{stamp}"


class PyEncode:
    """Picklable map function: tipoff's Codec, built lazily on the worker."""

    def __init__(self, schema_id: int):
        self.schema_id = schema_id
        self.codec = None

    def __call__(self, i):
        if self.codec is None:
            from udfs.serde.wire import Codec, parse

            self.codec = Codec(parse(C.SCHEMA), self.schema_id, lambda sid: None)
        r = C.record(i)
        ft = C.feature_time(i)
        if r is None:
            return Row(C.key_of(i).encode(), None, ft)
        return Row(r["user_id"].encode(), self.codec.encode(r), ft)


HEADER_SQL = ("CASE WHEN ts IS NULL THEN CAST(NULL AS MAP<STRING, BYTES>) "
              "ELSE MAP['feature_time', CAST(CAST(ts AS STRING) AS BYTES)] END")

if V in ("py_encode", "py_enc_bh"):
    ds = seq.map(PyEncode(schema_id), output_type=KAFKA_ROW)
    if V == "py_encode":
        t.execute_sql(C.raw_sink_ddl("snk", topic, prefix))
    else:
        t.execute_sql("CREATE TEMPORARY TABLE snk (k BYTES, v BYTES, h MAP<STRING, BYTES>) "
                      "WITH ('connector' = 'blackhole')")
    t.create_temporary_view("rows_v", t.from_data_stream(ds))
    insert = f"INSERT INTO snk SELECT k, v, {HEADER_SQL} FROM rows_v"
elif V in ("jvm_encode", "typed_only"):
    ds = seq.map(C.to_typed_row, output_type=C.typed_row_type())
    t.create_temporary_view("rows_v", t.from_changelog_stream(ds))
    if V == "jvm_encode":
        t.execute_sql(C.upsert_avro_sink_ddl("snk", topic, prefix))
    else:
        t.execute_sql(f"CREATE TEMPORARY TABLE snk ({C.columns_ddl()}, h MAP<STRING, BYTES>) "
                      "WITH ('connector' = 'blackhole')")
    insert = f"INSERT INTO snk {C.select_for_avro_sink('rows_v')}"
elif V == "kv_only":
    CONST = b"\x00\x00\x00\x00\x06" + b"x" * 110

    def kv(i):
        r = C.record(i)
        return Row(C.key_of(i).encode(), None if r is None else CONST, C.feature_time(i))

    ds = seq.map(kv, output_type=KAFKA_ROW)
    t.execute_sql("CREATE TEMPORARY TABLE snk (k BYTES, v BYTES, h MAP<STRING, BYTES>) "
                  "WITH ('connector' = 'blackhole')")
    t.create_temporary_view("rows_v", t.from_data_stream(ds))
    insert = f"INSERT INTO snk SELECT k, v, {HEADER_SQL} FROM rows_v"
elif V == "gen_only":
    def gen(i):
        r = C.record(i)
        return Row(0 if r is None else len(r))

    ds = seq.map(gen, output_type=Types.ROW_NAMED(["x"], [Types.LONG()]))
    t.execute_sql("CREATE TEMPORARY TABLE snk (x BIGINT) WITH ('connector' = 'blackhole')")
    t.create_temporary_view("rows_v", t.from_data_stream(ds))
    insert = "INSERT INTO snk SELECT x FROM rows_v"
else:
    raise SystemExit(f"unknown variant {V}")

jvm = C.gateway_jvm_pid()
kpid = C.kafka_pid()
sampler = C.ThreadSampler(jvm)
sampler.start()
c0, k0, t0 = C.proc_cpu(jvm), C.proc_cpu(kpid) if kpid else 0.0, time.time()
t.execute_sql(insert).wait()
wall = time.time() - t0
c1, k1 = C.proc_cpu(jvm), C.proc_cpu(kpid) if kpid else 0.0
threads = sampler.stop()
written = None
if V in ("py_encode", "jvm_encode"):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": C.BOOTSTRAP, "group.id": "r2-count"})
    written = 0
    for p in range(4):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        written += hi - lo  # includes transaction markers
    c.close()
print("RESULT " + json.dumps({
    "variant": V, "n": N, "wall_s": round(wall, 2), "jvm_cpu_s": round(c1 - c0, 2),
    "kafka_cpu_s": round(k1 - k0, 2), "rec_per_s": round(N / wall),
    "jvm_cpu_us_per_rec": round((c1 - c0) / N * 1e6, 2),
    "kafka_cpu_us_per_rec": round((k1 - k0) / N * 1e6, 2),
    "offsets_incl_markers": written, "topic": topic, "threads_cpu_s": threads}))
