"""What the Flink functions (udfs.flink.decode, udfs.flink.features) share: the job's codecs
from the schema registry, the wall clock, and dead-letter rows for the side output."""

from __future__ import annotations

import logging
import time

from pyflink.common import Row
from pyflink.datastream import RuntimeContext

from udfs.serde.inputs import DeadLetter
from udfs.serde.jobcodecs import JobCodecs, JobSchemas

log = logging.getLogger("tipoff")


def connect(job: str, schemas: JobSchemas, ctx: RuntimeContext) -> JobCodecs:
    """The job's codecs; unknown schema ids met while the registry is down retry with
    backoff, logged and counted in the `schema_lookup_retries` metric."""
    retries = ctx.get_metrics_group().add_group("tipoff").counter("schema_lookup_retries")

    def on_retry(what: str, delay_s: float) -> None:
        retries.inc()
        log.warning("schema registry unreachable (%s); retrying in %.1fs", what, delay_s)

    return JobCodecs.connect(job, schemas, sleep=time.sleep, on_retry=on_retry)


def now_ms() -> int:
    return int(time.time() * 1000)


def dead_letter_row(codecs: JobCodecs, dl: DeadLetter) -> Row:
    return Row(dl["key"], codecs.dead_letter_value(dl), None)
