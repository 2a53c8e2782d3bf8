"""Load the Avro contracts in avro_schemas/ (the package ships them as data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import avro_schemas

SCHEMAS_DIR = Path(avro_schemas.__file__).parent


def load(relative: str, base: Path | None = None) -> dict[str, Any]:
    """Parsed JSON of `relative` (e.g. "events/GameEvent.avsc") under `base` or avro_schemas/."""
    path = (base or SCHEMAS_DIR) / relative
    try:
        schema: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Avro schema file {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    return schema


def canonical(schema: dict[str, Any]) -> str:
    """Compact JSON text, as registered: stable across formatting changes of the file."""
    return json.dumps(schema, separators=(",", ":"))


def releases(base: Path | None = None) -> list[Path]:
    """Snapshots of avro_schemas/ as shipped by earlier releases (releases/<n>/, the same
    tree), oldest first. A registry is seeded with them before the current files, so its
    subjects hold the versions producers and consumers in the field may still use."""
    root = (base or SCHEMAS_DIR) / "releases"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def history(relative: str, base: Path | None = None) -> list[dict[str, Any]]:
    """Every distinct version of `relative`, oldest first, ending with the current file."""
    out: list[dict[str, Any]] = []
    for d in [*releases(base), base or SCHEMAS_DIR]:
        if (d / relative).is_file():
            schema = load(relative, d)
            if not out or canonical(out[-1]) != canonical(schema):
                out.append(schema)
    return out
