"""`tipoff bench`: throughput and freshness of tipoff against JVM-only Flink SQL jobs on the
same machine, the same cluster and the same preloaded topic, in one invocation.

preload.py    simulated events into fresh bench topics
jvm_jobs.py   the Flink SQL jobs (I/O ceiling, tumbling-window reference, OVER windows)
measure.py    rates from the Kafka sources' offsets, CPU and RSS of the Flink processes
freshness.py  live simulator + read_committed consumer: receive time - feature_time
report.py     the table, the JSON result and the PNG chart
runner.py     the order of things
"""
