import sys, time, collections
from flink_jobs.bench import engine
from udfs.features.v2 import runtime, user, driver
n = int(sys.argv[1])
events = engine.feed(n, 20000, 24, 1000.0, 42)
C = collections.Counter()
orig_tick, orig_ev = runtime.on_tick, user.evaluate
def on_tick(*a, **k):
    C["on_tick"] += 1
    st = orig_tick(*a, **k)
    if st.changed: C["evaluated"] += 1
    return st
runtime.on_tick = on_tick
orig_rank = user.ranking
def ranking(s, tick):
    if s.top_cache is None: C["rank_compute"] += 1
    C["teams"] += len(s.affinity)
    return orig_rank(s, tick)
user.ranking = ranking
bounds = {n * (i + 1) // 10 for i in range(10)}
def stream():
    last = collections.Counter(); t0 = time.process_time()
    for i, ev in enumerate(events, 1):
        yield ev
        if i in bounds:
            d = C - last; last = C.copy(); t1 = time.process_time()
            print(f"{i:>8} us/ev {1e6*(t1-t0)/(n/10):6.1f} ticks/ev {d['on_tick']/(n/10):.2f} eval/ev {d['evaluated']/(n/10):.2f} rank/ev {d['rank_compute']/(n/10):.2f} teams/eval {d['teams']/max(1,d['evaluated']):.1f} t={ev.time}")
            t0 = time.process_time()
import gc; gc.disable()
driver.run("user", stream(), out_of_orderness_ms=2000, store="none")
