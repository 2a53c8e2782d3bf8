"""What tipoff's operator commands print with: the progress-line callback type, stderr
lines, and byte sizes."""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]  # where a long step reports its progress, one line a call


def err(msg: str) -> None:
    """A line on stderr, at once (progress and errors; stdout stays for results)."""
    print(msg, file=sys.stderr, flush=True)


def fmt_bytes(n: float) -> str:
    """512 B, 6.2 MB: powers of 1024 with short unit names (`tipoff jobs`, savepoints).
    (`tipoff savepoint inspect` writes KiB/MiB: cluster.statesize.human.)"""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
