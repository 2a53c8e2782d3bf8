"""The handle integration tests get on the shared real stack (see integration/conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from flink_jobs.settings import Settings
from flink_jobs.stack.services import LocalStack


@dataclass(frozen=True)
class RealStack:
    settings: Settings
    stack: LocalStack | None  # None when the services are external
    env: dict[str, str]  # environment for a `tipoff` subprocess talking to this stack

    def fresh(self) -> Settings:
        """Settings with topic names no other test uses, so record counts are exact."""
        prefix = f"t{uuid.uuid4().hex[:8]}."
        return replace(self.settings, topics=self.settings.topics.prefixed(prefix))
