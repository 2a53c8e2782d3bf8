"""Copy the connector jars the image needs into k8s/image/jars/ (`make image-jars`).

They are the jars `tipoff` itself loads (flink_jobs/stack/artifacts.py FLINK_JARS),
fetched from Maven Central with the same mechanism and cache, so the image and local
runs use the same connector and format versions.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from flink_jobs.settings import Settings
from flink_jobs.stack.artifacts import flink_jars

TARGET = Path(__file__).resolve().parent / "jars"


def main() -> int:
    cached = flink_jars(Settings.load().stack.flink_jars_dir, log=print)
    TARGET.mkdir(exist_ok=True)
    for stale in TARGET.glob("*.jar"):
        stale.unlink()
    for jar in cached:
        shutil.copy2(jar, TARGET / jar.name)
        print(f"{TARGET / jar.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
