import io, json, sys
import fastavro
from confluent_kafka import Consumer, TopicPartition
schema = fastavro.parse_schema(json.load(open('/work/main/avro_schemas/features/UserFeatures.avsc')))
def read(topic):
    c = Consumer({'bootstrap.servers': '127.0.0.1:9092', 'group.id': 'cmp', 'enable.auto.commit': False})
    md = c.list_topics(topic).topics[topic]
    tps = []
    ends = {}
    for p in md.partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p))
        tps.append(TopicPartition(topic, p, lo)); ends[p] = hi
    c.assign(tps)
    recs = []
    done = {p for p in ends if ends[p] == 0}
    while len(done) < len(ends):
        for m in c.consume(10000, timeout=2):
            if m.error(): continue
            v = m.value()
            ft = dict(m.headers() or []).get('feature_time')
            if v is None:
                recs.append((m.key(), int(ft), None))
            else:
                r = fastavro.schemaless_reader(io.BytesIO(v[5:]), schema)
                r.pop('computed_at')
                recs.append((m.key(), r['feature_time'], json.dumps(r, sort_keys=True, default=str)))
            if m.offset() + 1 >= ends[m.partition()]: done.add(m.partition())
    return recs
a = read(sys.argv[1]); b = read(sys.argv[2])
print(sys.argv[1], len(a), len(set(a)), sys.argv[2], len(b), len(set(b)))
sa, sb = set(a), set(b)
print('only in first', len(sa - sb), 'only in second', len(sb - sa))
for x in list(sb - sa)[:3]: print('B', x)
for x in list(sa - sb)[:3]: print('A', x)
