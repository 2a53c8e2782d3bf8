"""Everything under tests/integration/ is marked `integration` (needs the real stack).

PyFlink's thread mode embeds the Python found first on PATH into the JVM it launches; a
test that starts the gateway in this process (savepoint reads, the MiniCluster jobs of
the savepoint tests) must find this interpreter there, whichever test starts it first and
however pytest was started (`make test` runs .venv/bin/pytest without activating the venv).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).parent / "integration"

_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
