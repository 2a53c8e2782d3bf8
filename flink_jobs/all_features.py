"""Every job of udfs.jobs in one Flink job (they share slots: parallelism N needs N slots).

`tipoff run all`, `tipoff submit all`, or `flink run -pym flink_jobs.all_features`.
"""

from __future__ import annotations

from flink_jobs.jobmain import main

if __name__ == "__main__":
    main(__spec__.name)
