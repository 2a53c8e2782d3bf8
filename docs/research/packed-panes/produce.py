"""N records shaped like the bench feed: 20,000 user keys, ~90-byte binary values (zero
bytes included), Kafka timestamps at 1,000 records per second of event time, 4 partitions."""

import random
import sys
import time

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jvm-batching"))
import common  # noqa: E402  (set R1_BOOTSTRAP=127.0.0.1:9092 for tipoff's default stack)

topic, n = sys.argv[1], int(sys.argv[2])
common.recreate_topic(topic, 4)
p = common.producer()
rnd = random.Random(7)
start = int(time.time() * 1000) - n - 60_000
for i in range(n):
    user = f"u{rnd.randrange(20000):06d}".encode()
    value = b"\x00\x00\x00\x00\x07" + bytes(rnd.randrange(256) for _ in range(85))
    ts = start + i + rnd.randrange(-1500, 1)
    while True:
        try:
            p.produce(topic, key=user, value=value, timestamp=ts, partition=hash(user) % 4)
            break
        except BufferError:
            p.poll(0.1)
    if i % 10000 == 0:
        p.poll(0)
p.flush()
print("produced", n)
