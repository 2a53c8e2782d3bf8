"""Pre-produce N records: 20,000 user ids, 1,000 records per second of event time,
Kafka timestamp = event time, key = user id, ~100-byte value, every 1000th value NULL."""
import sys, time, random
import common
topic = sys.argv[1]; n = int(sys.argv[2]); parts = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BASE = 1_700_000_000_000
common.recreate_topic(topic, parts)
p = common.producer()
rnd = random.Random(42)
pad = b"p" * 60
t0 = time.time()
for i in range(n):
    uid = b"user-%05d" % rnd.randrange(20000)
    v = None if i % 1000 == 999 else b'{"i":%d,"u":"%s",%s}' % (i, uid, pad)
    while True:
        try:
            p.produce(topic, key=uid, value=v, timestamp=BASE + i)  # 1 ms apart = 1000/s
            break
        except BufferError:
            p.poll(0.05)
    if i % 10000 == 0:
        p.poll(0)
p.flush()
print(f"produced {n} to {topic} in {time.time()-t0:.1f}s; nulls={n//1000}")
