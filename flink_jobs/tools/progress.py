"""A heartbeat for long runs: every few seconds, how many records the outputs hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from flink_jobs.tools.tail import end_offsets


class Heartbeat:
    """Context manager printing committed output counts every `every_s` seconds."""

    def __init__(
        self, bootstrap: str, topics: list[str], log: Callable[[str], None], every_s: float = 10.0
    ) -> None:
        self.bootstrap, self.topics, self.log, self.every_s = bootstrap, topics, log, every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tipoff-heartbeat", daemon=True)
        self.t0 = time.monotonic()

    def _counts(self) -> str:
        parts = []
        for t in self.topics:
            try:
                parts.append(f"{t} {sum(end_offsets(self.bootstrap, t).values()):,}")
            except Exception:  # progress output must never break the run
                parts.append(f"{t} ?")
        return ", ".join(parts)

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            elapsed = time.monotonic() - self.t0
            self.log(f"run: {elapsed:4.0f}s  offsets (committed + in flight): {self._counts()}")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
