"""Entry module of the game feature family's job (its name, topics and family: udfs.jobs).

Run locally with `tipoff run JOB`; on a cluster with `tipoff submit JOB`, or
`flink run -pym flink_jobs.game_features -- <job options>`.
"""

from __future__ import annotations

from flink_jobs.jobmain import main

if __name__ == "__main__":
    main(__spec__.name)
