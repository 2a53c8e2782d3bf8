"""Schema registry access over the Confluent-compatible REST API (standard library only,
so it also runs inside Flink's Python workers without extra clients).

A schema id never changes meaning, so writer schemas are cached three ways: a snapshot of
every version registered when the job was built (shipped inside the job graph, so a
restarted job needs no registry for them), a directory on local disk, and memory. Only an
id none of them knows goes to the registry; if the registry is unreachable then, the
lookup retries with backoff for a bounded time and raises RegistryOutage, which fails the
task so Flink restarts it from the last checkpoint (its restart strategy backs off too).
Dead-lettering the record instead would lose a good event; waiting without bound would
block checkpoint barriers behind it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from udfs.serde.wire import parse


def subject(topic: str) -> str:
    """The registry subject of a topic's values (the TopicNameStrategy)."""
    return f"{topic}-value"


CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(RuntimeError):
    """The registry did not answer (as opposed to answering "not found")."""


class RegistryOutage(RuntimeError):
    """An unknown schema id met an unreachable registry for longer than the retry budget."""


class Registry:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise RegistryUnavailable(f"{self.url}{path}: HTTP {e.code} {e.reason}") from e
        except (OSError, ValueError) as e:
            raise RegistryUnavailable(f"{self.url}{path}: {e}") from e

    def schema(self, schema_id: int) -> str | None:
        found = self._call(f"/schemas/ids/{schema_id}")
        return None if found is None else str(found["schema"])

    def subjects_of(self, schema_id: int) -> set[str]:
        found = self._call(f"/schemas/ids/{schema_id}/versions") or []
        return {str(v["subject"]) for v in found}

    def id_of(self, subject: str, schema_json: str) -> int | None:
        """The id `schema_json` has under `subject`, or None if it is not registered there."""
        quoted = urllib.parse.quote(subject, safe="")
        found = self._call(f"/subjects/{quoted}", {"schema": schema_json})
        return None if found is None else int(found["id"])

    def versions(self, subject: str) -> dict[int, str]:
        """id -> schema text of every version registered under `subject` (empty if none)."""
        quoted = urllib.parse.quote(subject, safe="")
        out: dict[int, str] = {}
        for v in self._call(f"/subjects/{quoted}/versions") or []:
            found = self._call(f"/subjects/{quoted}/versions/{v}")
            if found is not None:
                out[int(found["id"])] = str(found["schema"])
        return out


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff for registry calls that found it unreachable."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0
    budget_s: float = 30.0  # well under a checkpoint timeout: barriers wait behind us

    def delays(self) -> list[float]:
        out: list[float] = []
        d = self.first_s
        while sum(out) + d <= self.budget_s:
            out.append(d)
            d = min(d * self.factor, self.max_s)
        return out


class DiskCache:
    """Writer schemas by id in one directory per registry; survives process restarts."""

    def __init__(self, root: str, registry_url: str) -> None:
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", registry_url)

    def get(self, schema_id: int) -> tuple[str, list[str]] | None:
        try:
            entry = json.loads((self.dir / f"{schema_id}.json").read_text())
            return str(entry["schema"]), [str(s) for s in entry["subjects"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or unreadable: the registry is asked instead

    def put(self, schema_id: int, schema: str, subjects: list[str]) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump({"schema": schema, "subjects": subjects}, f)
            os.replace(tmp, self.dir / f"{schema_id}.json")  # readers never see half a file
        except OSError:
            pass  # a cache: losing a write costs one registry call later


Sleep = Callable[[float], None]
OnRetry = Callable[[str, float], None]  # (what failed, seconds until the next attempt)


@dataclass
class WriterSchemas:
    """schema id -> parsed writer schema, for one subject; unknown ids raise KeyError.

    `known` is the snapshot (id -> schema text) taken when the job was built.
    """

    registry: Registry
    subject: str
    known: Mapping[int, str] = field(default_factory=dict)
    disk: DiskCache | None = None
    retry: Retry = field(default_factory=Retry)
    sleep: Sleep | None = None
    on_retry: OnRetry | None = None
    cache: dict[int, Any] = field(default_factory=dict)

    def __call__(self, schema_id: int) -> Any:
        hit = self.cache.get(schema_id)
        if hit is not None:
            return hit
        text = self.known.get(schema_id)
        if text is None:
            text = self._fetch(schema_id)
        parsed = parse(json.loads(text))
        self.cache[schema_id] = parsed
        return parsed

    def _fetch(self, schema_id: int) -> str:
        found = self.disk.get(schema_id) if self.disk else None
        if found is None:
            found = self._ask(schema_id)
            if self.disk is not None:
                self.disk.put(schema_id, *found)
        text, subjects = found
        if subjects and self.subject not in subjects:
            raise KeyError(
                f"schema id {schema_id} belongs to {sorted(subjects)}, not to {self.subject}"
            )
        return text

    def _ask(self, schema_id: int) -> tuple[str, list[str]]:
        delays = self.retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                text = self.registry.schema(schema_id)
                if text is None:
                    raise KeyError(f"schema id {schema_id} is not in the registry")
                return text, sorted(self.registry.subjects_of(schema_id))
            except RegistryUnavailable as e:
                if attempt == len(delays):
                    raise RegistryOutage(
                        f"schema id {schema_id} (subject {self.subject}) is not cached and the "
                        f"registry stayed unreachable for {sum(delays):.0f}s: {e}. Failing the "
                        "task so Flink restarts it from the last checkpoint and tries again."
                    ) from e
                if self.on_retry is not None:
                    self.on_retry(f"schema id {schema_id}: {e}", delays[attempt])
                if self.sleep is not None:
                    self.sleep(delays[attempt])
        raise AssertionError("unreachable")
