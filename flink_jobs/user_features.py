"""The user-features job (see docs/features.md).

Run locally with `tipoff run user-features`; on a cluster with `tipoff submit`, or
`flink run -pym flink_jobs.user_features -- <job options>`.
"""

from __future__ import annotations

from flink_jobs.jobmain import main

if __name__ == "__main__":
    main(["user-features"])
