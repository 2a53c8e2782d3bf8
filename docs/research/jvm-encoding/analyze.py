"""Summarize bench_run*.log: per-variant CPU per record, marginal between N=500k and N=50k."""
import json, sys, glob, statistics
from collections import defaultdict

rows = []
for f in sorted(glob.glob("bench_run*.log")):
    for line in open(f):
        if line.startswith("RESULT "):
            r = json.loads(line[7:]); r["run"] = f; rows.append(r)

def task(r):  # the chained task thread (source -> python map -> calc -> sink writer)
    return sum(v for k, v in r.get("threads_cpu_s", {}).items() if k.startswith("Source"))
def prod(r):
    return sum(v for k, v in r.get("threads_cpu_s", {}).items() if k.startswith("kafka-producer"))
def jit(r):
    return sum(v for k, v in r.get("threads_cpu_s", {}).items() if "Compiler" in k)

by = defaultdict(list)
for r in rows:
    by[(r["variant"], r["n"])].append(r)
order = ["gen_only", "kv_only", "typed_only", "py_enc_bh", "py_encode", "jvm_encode"]
print(f"{'variant':11s} {'N':>7s} runs | {'wall rec/s':>10s} | µs/rec: {'JVM proc':>8s} {'task thr':>8s} {'producer':>8s} {'JIT':>6s} {'broker':>6s}")
for v in order:
    for n in (500000, 50000):
        rs = [r for r in by.get((v, n), []) if r.get("threads_cpu_s")]
        if not rs: continue
        med = lambda f: statistics.median(f(r) for r in rs)
        print(f"{v:11s} {n:7d} {len(rs):4d} | {med(lambda r: r['n']/r['wall_s']):10.0f} | "
              f"{med(lambda r: r['jvm_cpu_s'])/n*1e6:8.1f} {med(task)/n*1e6 if rs[0].get('threads_cpu_s') else float('nan'):8.1f} "
              f"{med(prod)/n*1e6 if rs[0].get('threads_cpu_s') else float('nan'):8.1f} {med(jit)/n*1e6 if rs[0].get('threads_cpu_s') else float('nan'):6.1f} {med(lambda r: r['kafka_cpu_s'])/n*1e6:6.1f}")
print("\nmarginal µs/record between N=50k and N=500k (fixed start-up cost removed), pairs by run:")
for v in order:
    for f in sorted({r["run"] for r in rows}):
        a = [r for r in by.get((v, 500000), []) if r["run"] == f]
        b = [r for r in by.get((v, 50000), []) if r["run"] == f]
        if a and b and a[0].get("threads_cpu_s"):
            a, b = a[0], b[0]
            d = 450000
            print(f"  {v:11s} {f}: JVM proc {(a['jvm_cpu_s']-b['jvm_cpu_s'])/d*1e6:6.1f}  task {(task(a)-task(b))/d*1e6:6.1f}  "
                  f"producer {(prod(a)-prod(b))/d*1e6:5.1f}  task+producer {(task(a)+prod(a)-task(b)-prod(b))/d*1e6:6.1f}  broker {(a['kafka_cpu_s']-b['kafka_cpu_s'])/d*1e6:5.1f}")

print("\nN=500k, per run, task thread + producer µs/rec, and differences to kv_only:")
for f in sorted({r["run"] for r in rows}):
    a = {r["variant"]: r for r in rows if r["run"] == f and r["n"] == 500000 and r.get("threads_cpu_s")}
    if "kv_only" not in a: continue
    base = (task(a["kv_only"]) + prod(a["kv_only"])) / 5e5 * 1e6
    print("  " + f + ": " + ", ".join(f"{v} {(task(a[v]) + prod(a[v])) / 5e5 * 1e6:.1f} ({(task(a[v]) + prod(a[v])) / 5e5 * 1e6 - base:+.1f})" for v in order if v in a))

print("\nN=500k, per run, task-thread-only µs/rec (producer I/O thread excluded) and JIT µs/rec:")
for f in sorted({r["run"] for r in rows}):
    rs = [r for r in rows if r["run"] == f and r["n"] == 500000 and r.get("threads_cpu_s")]
    if rs:
        print("  " + f + ": " + ", ".join(f"{r['variant']} task {task(r)/5e5*1e6:.1f} jit {jit(r)/5e5*1e6:.1f} prod {prod(r)/5e5*1e6:.1f}" for r in rs))
