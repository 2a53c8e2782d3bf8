"""Pure-Python microbenchmarks (no Flink): per-record cost of the pieces inside the map."""
import json, time, sys
import common as C
from pyflink.common import Row
from udfs.serde.wire import Codec, parse

codec = Codec(parse(C.SCHEMA), 6, lambda s: None)
N = 200_000
recs = [C.record(i) for i in range(N)]

def bench(name, fn):
    t0 = time.process_time()
    for i in range(N):
        fn(i)
    dt = time.process_time() - t0
    print(f"{name:28s} {dt / N * 1e6:6.2f} us/record")

bench("record(i) (generation)", C.record)
bench("Codec.encode", lambda i: recs[i] is not None and codec.encode(recs[i]))
bench("Row(k, v, ts) from bytes", lambda i: Row(b"user-1", b"xxxx", i))
bench("typed Row (17 fields)", lambda i: recs[i] is not None and Row(*[recs[i][f] for f in C.FIELDS]))
bench("to_typed_row(i) (gen+Row)", C.to_typed_row)
