"""Schema registry access over the Confluent-compatible REST API (standard library only,
so it also runs inside Flink's Python workers without extra clients).

Known schemas are cached for the life of the process: a schema id never changes meaning.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from udfs.serde.wire import parse

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(RuntimeError):
    """The registry did not answer (as opposed to answering "not found")."""


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


class WriterSchemas:
    """schema id -> parsed writer schema, for one subject; unknown ids raise KeyError."""

    def __init__(self, registry: Registry, subject: str) -> None:
        self.registry = registry
        self.subject = subject
        self.cache: dict[int, Any] = {}

    def __call__(self, schema_id: int) -> Any:
        hit = self.cache.get(schema_id)
        if hit is not None:
            return hit
        text = self.registry.schema(schema_id)
        if text is None:
            raise KeyError(f"schema id {schema_id} is not in the registry")
        subjects = self.registry.subjects_of(schema_id)
        if subjects and self.subject not in subjects:
            raise KeyError(
                f"schema id {schema_id} belongs to {sorted(subjects)}, not to {self.subject}"
            )
        parsed = parse(json.loads(text))
        self.cache[schema_id] = parsed
        return parsed
