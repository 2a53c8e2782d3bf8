"""Compare feature records from tipoff with the oracle's, as the acceptance tests require:
record by record on (key, feature_time), every field but computed_at, doubles within 1e-9,
tombstones included."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Row = tuple[str, int, dict[str, Any] | None]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return bool(a == b)


def differences(got: Iterable[Row], expected: Iterable[Row], limit: int = 20) -> list[str]:
    """Human-readable differences, at most `limit` (empty: identical)."""
    g = {(k, t): v for k, t, v in got}
    e = {(k, t): v for k, t, v in expected}
    out: list[str] = []
    for key in sorted(set(g) | set(e)):
        if key not in g:
            out.append(f"missing {key}: expected {e[key]}")
        elif key not in e:
            out.append(f"unexpected {key}: {g[key]}")
        else:
            a, b = g[key], e[key]
            if (a is None) != (b is None):
                out.append(f"{key}: got {a}, expected {b}")
            elif a is not None and b is not None:
                fields = set(a) | set(b)
                fields.discard("computed_at")
                bad = [f for f in sorted(fields) if not _same(a.get(f), b.get(f))]
                if bad:
                    out.append(
                        f"{key}: " + ", ".join(f"{f} {a.get(f)!r} != {b.get(f)!r}" for f in bad)
                    )
        if len(out) >= limit:
            out.append("...")
            break
    return out
