"""`tipoff bench`: throughput and freshness of tipoff against JVM-only Flink SQL jobs on the
same machine, the same cluster and the same preloaded topic, in one invocation.

preload.py          simulated events into fresh bench topics
jvm_jobs.py         the Flink SQL jobs (I/O ceiling, tumbling-window reference, OVER windows)
measure.py          rates from the Kafka sources' offsets, CPU and RSS of the Flink processes
freshness.py        live simulator + read_committed consumer: receive time - feature_time
report.py           the table, the JSON result and the PNG chart
cluster.py          the cluster a bench runs on: started if need be, slots and sizes checked
watch.py            jobs until running, their state, cancelling; a throughput row
jvm_phase.py        the JVM jobs, one after another, over the preloaded interactions
tipoff_phase.py     tipoff over the preloaded input until consumed
state_phase.py      tipoff's keyed state from a canonical savepoint
freshness_phase.py  tipoff on live input, at-least-once then exactly-once
runner.py           the order of things
"""
