import sys
from confluent_kafka import Consumer, TopicPartition
topic = sys.argv[1]
c = Consumer({"bootstrap.servers": "127.0.0.1:19092", "group.id": "truth", "enable.auto.commit": False})
ends = {p: c.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(3)}
c.assign([TopicPartition(topic, p, 0) for p in range(3)])
n = 0; nulls = []
while n < sum(ends.values()):
    for m in c.consume(10000, timeout=2):
        n += 1
        if m.value() is None:
            nulls.append((m.partition(), m.offset()))
print(n, len(nulls), sorted(nulls)[:20])
